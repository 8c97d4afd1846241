"""The gateway's benchmarks (issue 4), with real processes on 127.0.0.1: the transparency service with the issuer
(``tabellion serve``), ``tabellion gateway --config``, and a minimal upstream (asyncio, a fixed 200 answer).

    .venv/bin/python -m tools.bench.gateway latency    [--requests 2000]
    .venv/bin/python -m tools.bench.gateway throughput [--requests 3000 --clients 16 --rounds 4]
    .venv/bin/python -m tools.bench.gateway revocation [--trials 20]
    .venv/bin/python -m tools.bench.gateway all

The identity flow is registered over HTTP first: operator -> A -> B -> C (passports, a three-hop delegation
chain, C's claim on ``mail`` approved). The gateway has two connections to the same upstream, ``plain`` and
``policy`` (a Rego policy: EU passport and GET only); both inject a bearer credential.

- **latency**: one client, keep-alive, requests interleaved in the same loop (the order rotates every
  iteration): the upstream directly, through the gateway (``plain``) and through the gateway with the policy.
  Signed requests are prepared (signed) before each timed round of 500; p50/p99 of each and the gateway's added
  latency (difference of the percentiles).
- **throughput**: ``--clients`` concurrent keep-alive connections (httpx, asyncio) send pre-signed requests
  through ``plain`` and ``policy`` in alternating rounds; the gateway process's CPU time (utime + stime from
  /proc/<pid>/stat, every thread) over the round normalises the rate to verified requests per CPU-second, i.e.
  per core.
- **revocation**: per trial a fresh agent (passport, delegation from the operator, claim, approval) is let
  through once; then the operator revokes it, and from the instant the issuer's 201 (with the receipt) arrives,
  requests (signed in the loop) are sent until the gateway refuses one (403 ``passport-refused``).

Client and servers share the machine's cores: read the figures of one run side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.config import GatewayConfig
from gateway.signatures import Request, sign_request
from issuer.statements import (
    PassportRequest,
    Signer,
    agent_consent,
    agent_passport,
    claim_approval,
    claim_submission,
    delegation,
    multikey_of,
    operator_registration,
    revocation,
)
from schemas.cose_sign1 import decode_sign1
from schemas.leaf import entry_id, leaf_data
from tools.bench.processes import REPO, clean_env, cpu_seconds, free_port, start, stop
from transparency.client import HttpLogClient

NAMESPACE = "acme"
SCOPE = {"services": ["mail"], "actions": ["read", "write"], "resources": ["inbox/*"]}
TOKEN = "bench-upstream-token"
POLICY = """package tabellion

default allow := false

allow if {
    input.passport.jurisdiction == "EU"
    input.method == "GET"
}
"""
UPSTREAM_BODY = b'{"upstream":true}'
UPSTREAM_ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                   + str(len(UPSTREAM_BODY)).encode() + b"\r\n\r\n" + UPSTREAM_BODY)


# --- the minimal upstream (its own process) ---------------------------------------------------------------


async def _upstream_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            if length:
                await reader.readexactly(length)
            writer.write(UPSTREAM_ANSWER)
            await writer.drain()
    writer.close()


def run_upstream(port: int) -> None:
    async def main() -> None:
        server = await asyncio.start_server(_upstream_connection, "127.0.0.1", port, backlog=512)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# --- the identity flow ------------------------------------------------------------------------------------


def ident(statement: bytes) -> str:
    return entry_id(leaf_data(decode_sign1(statement)))


@dataclasses.dataclass
class World:
    log: str
    operator: Signer
    agent: Signer = dataclasses.field(default_factory=lambda: Signer(Ed25519PrivateKey.generate()))
    passports: dict[str, str] = dataclasses.field(default_factory=dict)
    status_index: int = 0
    horizon: int = dataclasses.field(default_factory=lambda: int(time.time()) + 7200)  # delegations end then

    def post(self, http: httpx.Client, path: str, statement: bytes) -> httpx.Response:
        answer = http.post(path, content=statement, headers={"content-type": "application/cose"})
        if answer.status_code != 201:
            raise SystemExit(f"POST {path} answered {answer.status_code}: {answer.text[:300]}")
        return answer

    def passport(self, http: httpx.Client, agent: Signer) -> None:
        self.post(http, "/registry/consents", agent_consent(agent, self.operator.identity))
        statement = agent_passport(self.operator, PassportRequest(
            agent.identity, "software", "sha256:" + "ab" * 32, "EU", "sha256:" + "cd" * 32,
            "https://issuer.example/status/1", self.status_index), now=int(time.time()) - 60)
        self.status_index += 1
        self.post(http, "/api/agent/issue", statement)
        self.passports[agent.identity] = ident(statement)

    def grant(self, http: httpx.Client, agent: Signer, *, principal: Signer | None = None, parent: str | None = None,
              max_depth: int = 0) -> str:
        """A delegation ending just before ``horizon`` (a sub-delegation may not outlive its parent)."""
        not_after = self.horizon - 2 + max_depth  # max_depth 2, 1, 0 down the chain
        statement = delegation(principal or self.operator, agent.identity, SCOPE, not_after=not_after,
                               max_depth=max_depth, parent=parent)
        self.post(http, "/v1/delegations", statement)
        return ident(statement)

    def approve_claim(self, http: httpx.Client, agent: Signer) -> None:
        claim = claim_submission(agent, f"claim-{uuid.uuid4().hex[:8]}", NAMESPACE, "mail", SCOPE)
        self.post(http, "/v1/claims", claim)
        self.post(http, f"/v1/claims/{ident(claim)}/approve", claim_approval(self.operator, ident(claim)))

    def headers(self, agent: Signer) -> tuple[tuple[str, str], ...]:
        return (("Tabellion-Namespace", NAMESPACE), ("Tabellion-Subject", agent.identity),
                ("Tabellion-Agent-Key", f"{agent.identity}#{multikey_of(agent.key)}"),
                ("Tabellion-Agent-Passport", self.passports[agent.identity]))

    def signed(self, url: str, agent: Signer | None = None) -> Request:
        agent = agent or self.agent
        now = int(time.time())
        return sign_request(Request("GET", url, self.headers(agent), b""), key=agent.key, keyid=agent.identity,
                            created=now, expires=now + 240, nonce=uuid.uuid4().hex)


def register_world(log: str) -> World:
    """operator -> A -> B -> C, passports for all, C's claim on ``mail`` approved; C signs the requests."""
    op0, op1 = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    world = World(log, Signer(op0))
    a, b = Signer(Ed25519PrivateKey.generate()), Signer(Ed25519PrivateKey.generate())
    with httpx.Client(base_url=log, timeout=30) as http:
        world.post(http, "/registry/operators", operator_registration(world.operator, NAMESPACE, op1))
        for agent in (a, b, world.agent):
            world.passport(http, agent)
        root = world.grant(http, a, max_depth=2)
        ab = world.grant(http, b, principal=a, parent=root, max_depth=1)
        world.grant(http, world.agent, principal=b, parent=ab)
        world.approve_claim(http, world.agent)
    return world


# --- the set-up -------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Setup:
    log: str
    upstream: str
    gateway: str
    gateway_pid: int
    world: World


@contextlib.contextmanager
def running(folder: Path, *, action_records: bool | None) -> Iterator[Setup]:
    log_port, upstream_port, gateway_port = free_port(), free_port(), free_port()
    log_url, upstream = f"http://127.0.0.1:{log_port}", f"http://127.0.0.1:{upstream_port}"
    processes = []
    try:
        processes.append(start([sys.executable, "-m", "cli.main", "serve", "--data", str(folder / "log"), "--port",
                                str(log_port)], folder / "log.out", f"{log_url}/checkpoint"))
        processes.append(start([sys.executable, "-m", "tools.bench.gateway", "upstream", "--port",
                                str(upstream_port)], folder / "upstream.out", f"{upstream}/ready"))
        world = register_world(log_url)
        config, env = write_config(folder, log_url, upstream, gateway_port, action_records)
        gateway = start([sys.executable, "-m", "cli.main", "gateway", "--config", str(config)],
                        folder / "gateway.out", f"http://127.0.0.1:{gateway_port}/healthz", env)
        processes.append(gateway)
        yield Setup(log_url, upstream, f"http://127.0.0.1:{gateway_port}", gateway.pid, world)
    finally:
        for process in reversed(processes):
            stop(process)


def write_config(folder: Path, log: str, upstream: str, port: int,
                 action_records: bool | None, *, workers: int = 1) -> tuple[Path, dict[str, str]]:
    with HttpLogClient(log) as client:
        (folder / "log.vkey").write_text(client.vkey() + "\n")
        (folder / "log-keys.cbor").write_bytes(client.key_set())
    (folder / "mail.rego").write_text(POLICY)
    connections = "".join(f"""
[[connections]]
id = "{name}"
upstream = "{upstream}/api"
service = "mail"
credentials = {{ type = "bearer", secret_ref = "MAIL_TOKEN" }}
actions = {{ GET = "read", POST = "write" }}
{extra}
""" for name, extra in (("plain", ""), ("policy", 'policy = { file = "mail.rego", id = "mail-eu", version = "1" }')))
    records = "" if action_records is None else f"\n[action_records]\nenabled = {str(action_records).lower()}\n"
    config = folder / "gateway.toml"
    top = f"workers = {workers}\n" if workers != 1 else ""
    config.write_text(f'port = {port}\ndata_dir = "gw-data"\n{top}\n[log]\nurl = "{log}"\nvkey_file = "log.vkey"\n'
                      f'keys_file = "log-keys.cbor"\n{records}{connections}')
    env = clean_env(TABELLION_GATEWAY_MASTER_KEY=base64.b64encode(secrets.token_bytes(32)).decode())
    stored = subprocess.run([sys.executable, "-m", "cli.main", "gateway", "secret", "set", "--config", str(config),
                             "MAIL_TOKEN"], input=TOKEN, text=True, capture_output=True, cwd=REPO, env=env, check=False)
    if stored.returncode != 0:
        raise SystemExit(f"secret set failed: {stored.stderr}")
    return config, env


# --- latency ----------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def latency(setup: Setup, requests: int) -> None:
    kinds = ("direct", "gateway", "gateway+policy")
    times: dict[str, list[float]] = {k: [] for k in kinds}
    direct_url = f"{setup.upstream}/api/inbox/1?x=1"
    with httpx.Client(timeout=30) as direct, httpx.Client(timeout=30) as through:
        for warm in range(50):
            direct.get(direct_url)
            send(through, setup.world.signed(f"{setup.gateway}/proxy/{('plain', 'policy')[warm % 2]}/inbox/1"))
        done = 0
        while done < requests:
            n = min(500, requests - done)
            plain = [setup.world.signed(f"{setup.gateway}/proxy/plain/inbox/1?x=1") for _ in range(n)]
            policy = [setup.world.signed(f"{setup.gateway}/proxy/policy/inbox/1?x=1") for _ in range(n)]
            for i in range(n):
                order = kinds[i % 3:] + kinds[:i % 3]
                for kind in order:
                    t0 = time.perf_counter()
                    if kind == "direct":
                        answer = direct.get(direct_url)
                    else:
                        answer = send(through, (plain if kind == "gateway" else policy)[i])
                    times[kind].append(time.perf_counter() - t0)
                    if answer.status_code != 200:
                        raise SystemExit(f"{kind}: {answer.status_code} {answer.text[:300]}")
            done += n
    p = {k: (percentile(v, 50) * 1000, percentile(v, 99) * 1000) for k, v in times.items()}
    print(f"latency, one client, {requests} requests of each kind interleaved (signed before each round of 500):")
    for kind in kinds:
        print(f"  {kind:15s} p50 {p[kind][0]:7.3f} ms   p99 {p[kind][1]:7.3f} ms")
    for kind in kinds[1:]:
        print(f"  added by the {kind:15s} p50 +{p[kind][0] - p['direct'][0]:.3f} ms   "
              f"p99 +{p[kind][1] - p['direct'][1]:.3f} ms   (p50 ratio {p[kind][0] / p['direct'][0]:.2f})")


def send(client: httpx.Client, request: Request) -> httpx.Response:
    return client.request(request.method, request.target_uri, headers=list(request.headers))


# --- throughput -------------------------------------------------------------------------------------------


async def _blast(requests: list[Request], clients: int) -> float:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    pending = iter(range(len(requests)))
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        async def worker() -> None:
            for i in pending:
                r = requests[i]
                answer = await client.request(r.method, r.target_uri, headers=list(r.headers))
                if answer.status_code != 200:
                    raise SystemExit(f"{answer.status_code}: {answer.text[:300]}")

        await client.get(requests[0].target_uri.split("/proxy/")[0] + "/healthz")
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return time.perf_counter() - t0


def throughput(setup: Setup, requests: int, clients: int, rounds: int) -> None:
    results: dict[str, list[tuple[float, float]]] = {"plain": [], "policy": []}
    asyncio.run(_blast([setup.world.signed(f"{setup.gateway}/proxy/plain/inbox/1") for _ in range(200)], clients))
    for r in range(rounds):
        for name in (("plain", "policy") if r % 2 == 0 else ("policy", "plain")):
            batch = [setup.world.signed(f"{setup.gateway}/proxy/{name}/inbox/1") for _ in range(requests)]
            cpu0 = cpu_seconds(setup.gateway_pid)
            wall = asyncio.run(_blast(batch, clients))
            cpu = cpu_seconds(setup.gateway_pid) - cpu0
            results[name].append((requests / wall, requests / cpu))
            print(f"  round {r + 1}/{rounds} {name:6s}: {requests / wall:7.0f} req/s wall, gateway CPU {cpu:.2f} s "
                  f"({cpu / wall * 100:.0f}% of a core) -> {requests / cpu:7.0f} req per CPU-second",
                  file=sys.stderr, flush=True)
    print(f"throughput, {clients} concurrent clients, {requests} pre-signed requests per round, {rounds} rounds "
          "(median):")
    for name, rows in results.items():
        print(f"  {name:6s}: {statistics.median(w for w, _ in rows):7.0f} verified req/s wall   "
              f"{statistics.median(c for _, c in rows):7.0f} verified req/s per core (per gateway CPU-second)")


# --- revocation -------------------------------------------------------------------------------------------


def revocation_propagation(setup: Setup, trials: int) -> None:
    world, samples, late = setup.world, [], []
    url = f"{setup.gateway}/proxy/plain/inbox/1"
    with httpx.Client(base_url=setup.log, timeout=30) as log, httpx.Client(timeout=30) as gw:
        for _ in range(trials):
            agent = Signer(Ed25519PrivateKey.generate())
            world.passport(log, agent)
            world.grant(log, agent)
            world.approve_claim(log, agent)
            deadline = time.monotonic() + 10
            while (answer := send(gw, world.signed(url, agent))).status_code != 200:
                if time.monotonic() > deadline:
                    raise SystemExit(f"the new agent was never let through: {answer.text[:300]}")
                time.sleep(0.01)
            world.post(log, "/registry/revoke", revocation(world.operator, agent.identity, "privilegeWithdrawn"))
            receipt_at = time.perf_counter()
            allowed_after = 0
            while (answer := send(gw, world.signed(url, agent))).status_code == 200:
                allowed_after += 1
                if time.perf_counter() - receipt_at > 10:
                    raise SystemExit("the revocation did not reach the gateway in 10 s")
            if answer.status_code != 403 or answer.json().get("reason_code") != "revoked":
                raise SystemExit(f"unexpected refusal: {answer.status_code} {answer.text[:300]}")
            samples.append(time.perf_counter() - receipt_at)
            late.append(allowed_after)
    ms = sorted(s * 1000 for s in samples)
    print(f"revocation propagation, {trials} trials (revocation's 201 + receipt -> first 403 passport-refused):")
    print(f"  median {statistics.median(ms):.1f} ms   p90 {percentile(ms, 90):.1f} ms   max {ms[-1]:.1f} ms   "
          f"min {ms[0]:.1f} ms   (aim < 1000 ms)")
    print(f"  requests still let through after the receipt: {sum(late)} in all, at most {max(late)} in a trial")


# --- main -------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("section", choices=["latency", "throughput", "revocation", "all", "upstream"])
    parser.add_argument("--requests", type=int, default=0, help="latency: 2000 per kind; throughput: 3000 per round")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--action-records", choices=["on", "off"], default=None,
                        help="write [action_records] enabled = ... (default: the gateway's default)")
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)  # the upstream's
    args = parser.parse_args(argv)
    if args.section == "upstream":
        run_upstream(args.port)
        return
    records = None if args.action_records is None else args.action_records == "on"
    fields = {f.name: f for f in dataclasses.fields(GatewayConfig)}
    default_records: Any = fields["action_records"].default if "action_records" in fields else None
    on = records if records is not None else bool(default_records and getattr(default_records, "enabled", False))
    print(f"action records: {'on' if on else 'off'}")
    with tempfile.TemporaryDirectory(prefix="tabellion-gw-bench-") as tmp, running(Path(tmp),
                                                                                    action_records=records) as setup:
        if args.section in ("latency", "all"):
            latency(setup, args.requests or 2000)
        if args.section in ("throughput", "all"):
            throughput(setup, args.requests or 3000, args.clients, args.rounds)
        if args.section in ("revocation", "all"):
            revocation_propagation(setup, args.trials)


if __name__ == "__main__":
    main()
