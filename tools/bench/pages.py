"""Page render times of the log explorer and the console, with a small log and a 10^5-entry log, side by side.

    .venv/bin/python -m tools.bench.pages [--entries 100000] [--small 1000] [--requests 60]

For each size a fully signed log is written (not timed): first a console namespace (an operator with 20 agents,
each with its consent, passport, delegation and claim, 10 claims approved and 10 pending), then the mix of
``tools.bench.identity_fold`` (operators, passports, delegations, claims, approvals, revocations) up to the size.
The statements go straight into the sequencer (they are valid by construction; the service folds them all at its
start, as it does every log). Then ``tabellion serve`` and ``tabellion console`` run on it, and each page is
fetched ``--requests`` times one after the other (after 5 unmeasured), the time being the client's, from the
request to the last byte of the page. Console pages need a signed-in session: the benchmark signs the session
cookie with the console's own secret (as only the operator's host can), instead of a passkey ceremony.

The acceptance bar is p95 under 300 ms for every page at 10^5 entries; the ratio to the small log shows how much
of a page's cost grows with the log.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from itsdangerous import TimestampSigner

from issuer import statements as st
from schemas.cose_sign1 import decode_sign1
from schemas.leaf import leaf_data, logged_statement
from tools.bench.identity_fold import SCOPE, generate
from tools.bench.processes import clean_env, free_port, stop
from transparency.client import load_private_key, save_private_key
from transparency.keys import load_or_create_log_key
from transparency.log.sequencer import Sequencer
from transparency.settings import Settings

CONSOLE_AGENTS = 20
BAR_MS = 300.0
START_TIMEOUT_S = 3 * 3600.0  # a 10^5-entry log is folded twice at start (the log's policy, the issuer)


def console_world(now: int) -> tuple[Ed25519PrivateKey, list[bytes], list[str]]:
    key = Ed25519PrivateKey.generate()
    operator = st.Signer(key)
    statements = [st.operator_registration(operator, "console", Ed25519PrivateKey.generate())]
    agents = []
    for i in range(CONSOLE_AGENTS):
        agent = st.Signer(Ed25519PrivateKey.generate())
        agents.append(agent.identity)
        statements.append(st.agent_consent(agent, operator.identity))
        statements.append(st.agent_passport(operator, st.PassportRequest(
            agent.identity, "software", "sha256:" + "ab" * 32, "EU", "sha256:" + "cd" * 32,
            "https://issuer.example/status/console", i), now=now))
        statements.append(st.delegation(operator, agent.identity, SCOPE, not_after=now + 86_400, max_depth=0))
        claim = st.claim_submission(agent, f"c-{i}", "console", "mail", SCOPE)
        statements.append(claim)
        if i % 2 == 0:
            statements.append(st.claim_approval(operator, leaf_data(decode_sign1(claim)).hex(), note="ok"))
    return key, statements, agents


def write_log(data: Path, statements: list[bytes]) -> None:
    settings = Settings(data_dir=data)
    data.mkdir(parents=True, exist_ok=True)
    sequencer = Sequencer(settings.db_path, load_or_create_log_key(settings.key_path), settings.origin,
                          batch_max_entries=256, batch_max_wait_ms=5)
    sequencer.start()
    try:
        for start in range(0, len(statements), 2000):
            futures = []
            for statement in statements[start:start + 2000]:
                message = decode_sign1(statement)
                futures.append(sequencer.submit(leaf_data(message), logged_statement(message)))
            for future in futures:
                future.result(timeout=600)
            print(f"  logged {min(start + 2000, len(statements)):,}/{len(statements):,}", file=sys.stderr, flush=True)
    finally:
        sequencer.stop()


def start(command: list[str], log: Path, ready: str) -> object:
    import subprocess

    from tools.bench.processes import REPO

    with log.open("ab") as out:
        process = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=clean_env())
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{command[3]} exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(ready, timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.kill()
    raise SystemExit(f"{command[3]} did not get ready in {START_TIMEOUT_S:.0f} s")


def session_cookie(data_dir: Path, approver: str) -> str:
    """The console's session cookie for ``approver``, signed as Starlette's SessionMiddleware signs it."""
    secret = (data_dir / "session.key").read_bytes().hex()
    payload = base64.b64encode(json.dumps({"approver": approver, "csrf": "bench"}).encode())
    return TimestampSigner(secret).sign(payload).decode()


def measure(client: httpx.Client, path: str, requests: int) -> list[float]:
    for _ in range(5):
        answer = client.get(path)
        if answer.status_code != 200:
            raise SystemExit(f"GET {path} answered {answer.status_code}: {answer.text[:300]}")
    times = []
    for _ in range(requests):
        t0 = time.perf_counter()
        answer = client.get(path)
        _ = answer.content
        times.append((time.perf_counter() - t0) * 1000)
        if answer.status_code != 200:
            raise SystemExit(f"GET {path} answered {answer.status_code}")
    return times


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def run_size(folder: Path, entries: int, requests: int) -> dict[str, list[float]]:
    made = folder / "made.json"  # a log written by an earlier run (--workdir): reused as it is
    if made.exists():
        saved = json.loads(made.read_text())
        key = load_private_key(folder / "console.key")
        agents, size = saved["agents"], saved["size"]
        print(f"size {size:,}: reusing the log in {folder}", file=sys.stderr, flush=True)
    else:
        now = int(time.time())
        key, statements, agents = console_world(now)
        if entries > len(statements):
            bulk, _ = generate(entries - len(statements), now)
            statements += bulk
        size = len(statements)
        print(f"size {size:,}: writing the log", file=sys.stderr, flush=True)
        write_log(folder / "data", statements)
        save_private_key(key, folder / "console.key", overwrite=True)
        made.write_text(json.dumps({"agents": agents, "size": size}))
    log_port, console_port = free_port(), free_port()
    log_url = f"http://127.0.0.1:{log_port}"
    t0 = time.perf_counter()
    server = start([sys.executable, "-m", "cli.main", "serve", "--data", str(folder / "data"), "--port",
                    str(log_port)], folder / "serve.log", f"{log_url}/readyz")
    with httpx.Client(timeout=600) as http:  # the embedded issuer has folded the log once it answers
        http.get(f"{log_url}/v1/claims", params={"namespace": "console"}).raise_for_status()
    print(f"  the service folded {size:,} entries and answers ({time.perf_counter() - t0:.0f} s)",
          file=sys.stderr, flush=True)
    (folder / "console.toml").write_text(f"""
port = {console_port}
issuer = "{log_url}"
namespace = "console"
namespace_key = "console.key"
origin = "http://localhost:{console_port}"
rp_id = "localhost"
data_dir = "console-data"
""")
    console = start([sys.executable, "-m", "cli.main", "console", "--config", str(folder / "console.toml")],
                    folder / "console.log", f"http://127.0.0.1:{console_port}/readyz")
    try:
        agent = agents[0]
        pages = {
            "explorer /": (log_url, "/"),
            "explorer /explorer/entries?before=N/2": (log_url, f"/explorer/entries?before={size // 2}"),
            "explorer entry page (N/2)": (log_url, f"/explorer/entries/{size // 2}"),
            "explorer who authorised (agent)": (log_url, f"/explorer/agents/{agent}"),
            "console /approvals": (f"http://127.0.0.1:{console_port}", "/approvals"),
            "console /agents": (f"http://127.0.0.1:{console_port}", "/agents"),
            "console /agents/{did}": (f"http://127.0.0.1:{console_port}", f"/agents/{agent}"),
            "console /tokens": (f"http://127.0.0.1:{console_port}", "/tokens"),
        }
        cookie = session_cookie(folder / "console-data", "did:web:bench.example:approver")
        results = {}
        for name, (base, path) in pages.items():
            with httpx.Client(base_url=base, timeout=30, cookies={"tabellion_console": cookie}) as client:
                results[name] = measure(client, path, requests)
        return results
    finally:
        stop(console)  # type: ignore[arg-type]
        stop(server)  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--workdir", type=Path, help="keep the logs here, and reuse those an earlier run left")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tabellion-pages-") as tmp:
        work = args.workdir or Path(tmp)
        small = run_size(work / f"small-{args.small}", args.small, args.requests)
        large = run_size(work / f"large-{args.entries}", args.entries, args.requests)
    print(f"\npage render time, ms (client side, {args.requests} sequential requests each)")
    print(f"{'page':42} {'p50 small':>10} {'p95 small':>10} {'p50 large':>10} {'p95 large':>10} {'ratio p95':>10}")
    worst = 0.0
    for name in small:
        s95, l95 = p95(small[name]), p95(large[name])
        worst = max(worst, l95)
        print(f"{name:42} {statistics.median(small[name]):10.1f} {s95:10.1f} {statistics.median(large[name]):10.1f} "
              f"{l95:10.1f} {l95 / s95:10.2f}")
    verdict = "under" if worst < BAR_MS else "OVER"
    print(f"\nworst p95 at {args.entries:,} entries: {worst:.1f} ms, {verdict} the {BAR_MS:.0f} ms bar")


if __name__ == "__main__":
    main()
