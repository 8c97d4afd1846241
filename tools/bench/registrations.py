"""Registrations per second over HTTP with a native load generator (wrk), beside a no-op POST on the same stack.

    .venv/bin/python -m tools.bench.registrations [--connections 16] [--duration 10] [--rounds 3]

One server process is started as ``tabellion serve`` is (``transparency.server.serve``: Hypercorn, Starlette,
the transparency service with its sequencer and identity fold, and the embedded issuer), on 127.0.0.1, with one
extra route, ``POST /bench/noop``: it reads the body and answers 201 with a fixed ``application/cose`` body of a
receipt's size. Nothing else differs, so the ratio isolates what registration costs beyond the stack (parse,
signature check, policy, queue, batch commit with fsync, receipt).

The client is ``wrk`` (C, one thread, ``--connections`` keep-alive connections) with ``post_bodies.lua``: every
request posts a different statement, signed before the run (did:key Ed25519 signers, small JSON payloads), so
every registration is a new entry; a run that used a statement twice, or got any answer but 201, is refused.
Rounds alternate which kind goes first; the figure is the median over rounds of the two rates, and their ratio.
After the run a sample of the registered statements' receipts is fetched and verified offline against the log's
key set. The log and wrk share the machine's two cores; the ratio is the figure to read.

``--profile FILE`` runs py-spy on the server during the registration runs (not the no-op's) and writes its samples
as collapsed stacks; ``--profile-gil`` samples only the thread holding the GIL. ``tools.bench.profile_summary``
reads the file.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from issuer.app import IssuerSettings, hosted
from schemas.leaf import entry_id, statement_leaf_data
from schemas.media_types import COSE
from tools.bench.processes import REPO, clean_env, cpu_seconds, free_port, start, stop
from transparency.client.signing import did_of, sign_statement
from transparency.server import serve
from transparency.settings import load_settings
from verifier.keys import parse_key_set
from verifier.receipts import verify_receipt

NOOP_BODY = bytes(400)
SCRIPT = Path(__file__).with_name("post_bodies.lua")
_RESULT = re.compile(r"RESULT (.*)")


async def noop(request: Request) -> Response:
    await request.body()
    return Response(NOOP_BODY, status_code=201, media_type=COSE)


def run_server(data: Path, port: int) -> None:
    settings = load_settings({"data_dir": data, "port": port})
    serve(settings, extra_routes=[Route("/bench/noop", noop, methods=["POST"])],
          extensions=[hosted(IssuerSettings(settings.data_dir, public_url=settings.service_url))])


def statements(n: int, tag: str, signers: int = 64) -> list[bytes]:
    keys = [Ed25519PrivateKey.generate() for _ in range(signers)]
    return [
        sign_statement(key, json.dumps({"bench": tag, "n": i, "signer": did_of(key)}).encode(),
                       subject="did:example:bench", content_type="application/json")
        for i, key in ((i, keys[i % signers]) for i in range(n))
    ]


def write_bodies(path: Path, bodies: Sequence[bytes]) -> None:
    path.write_bytes(b"".join(len(b).to_bytes(4, "big") + b for b in bodies))


@dataclass(frozen=True)
class WrkRun:
    rate: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float = 0.0  # the server's CPU time (all threads, user + system) per request


def run_wrk(url: str, bodies: Path, connections: int, duration: int, *, distinct: bool = True,
            server: int | None = None) -> WrkRun:
    """One wrk run; ``distinct``: every body must be sent at most once (registrations; a no-op may repeat them);
    ``server``: the pid whose CPU time per request is measured."""
    cpu_before = cpu_seconds(server) if server is not None else 0.0
    command = ["wrk", "-t1", f"-c{connections}", f"-d{round(duration)}s", "--latency", "-s", str(SCRIPT), url, "--",
               str(bodies)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    found = _RESULT.search(out)
    if found is None:
        raise SystemExit(f"wrk printed no result:\n{out}")
    r = {k: int(v) for k, v in (item.split("=") for item in found.group(1).split())}
    if (r["wrapped"] and distinct) or r["not_201"] or r["errors"]:
        raise SystemExit(f"POST {url}: {r['not_201']} answers were not 201, {r['errors']} errors, the statements "
                         f"ran out {r['wrapped']} times (pre-sign more: --per-second)\n{out}")
    cpu = cpu_seconds(server) - cpu_before if server is not None else 0.0
    return WrkRun(r["requests"] / (r["duration_us"] / 1e6), r["p50_us"] / 1000, r["p99_us"] / 1000,
                  1000 * cpu / max(r["requests"], 1))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=int, default=10, help="seconds per round and kind")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-second", type=int, default=1500, help="statements signed per second of a round")
    parser.add_argument("--profile", type=Path,
                        help="py-spy samples of the server over the rounds (collapsed stacks, one line per stack)")
    parser.add_argument("--profile-gil", action="store_true",
                        help="with --profile: sample only the thread holding the GIL (py-spy --gil)")
    parser.add_argument("--against", type=Path,
                        help="another checkout of the repository (git worktree add DIR COMMIT): its server's "
                             "registrations are measured in the same rounds, for a before/after in one run")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)  # internal: run the server on this folder
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        run_server(args.serve, args.port)
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian package wrk; scripts/setup.sh installs it)")

    per_round = int(args.per_second * args.duration)
    with tempfile.TemporaryDirectory(prefix="tabellion-bench-") as tmp:
        folder = Path(tmp)
        print(f"signing {per_round * (args.rounds + 1):,} statements", file=sys.stderr, flush=True)
        rounds = []
        for r in range(args.rounds + 1):  # round 0 warms up
            signed = statements(per_round, f"round-{r}")
            write_bodies(folder / f"round-{r}.bin", signed)
            rounds.append(signed)
        servers = [_Server("this", REPO, folder)]
        if args.against is not None:
            servers.append(_Server("against", args.against.resolve(), folder))
        try:
            for started in servers:
                started.start()
            this = servers[0]
            reg: dict[str, list[WrkRun]] = {s.name: [] for s in servers}
            nop: list[WrkRun] = []
            for warmed in servers:
                run_wrk(f"{warmed.url}/entries", folder / "round-0.bin", args.connections, min(3, args.duration))
            run_wrk(f"{this.url}/bench/noop", folder / "round-0.bin", args.connections, min(3, args.duration),
                    distinct=False)
            for r in range(1, args.rounds + 1):
                runs: list[_Server | None] = [*servers, None]  # None: the no-op (on this checkout's server)
                for server in runs if r % 2 else runs[::-1]:
                    if server is None:
                        nop.append(run_wrk(f"{this.url}/bench/noop", folder / f"round-{r}.bin", args.connections,
                                           args.duration, distinct=False, server=this.pid))
                        continue
                    with profiling(server.pid, args.profile if server is this else None, r, gil=args.profile_gil):
                        reg[server.name].append(run_wrk(f"{server.url}/entries", folder / f"round-{r}.bin",
                                                        args.connections, args.duration, server=server.pid))
                mine = reg["this"][-1]
                line = (f"  round {r}/{args.rounds}: registrations {mine.rate:,.0f}/s (p50 {mine.p50_ms:.1f} ms, "
                        f"server CPU {mine.cpu_ms:.2f} ms each)  no-op {nop[-1].rate:,.0f}/s (p50 "
                        f"{nop[-1].p50_ms:.1f} ms, server CPU {nop[-1].cpu_ms:.2f} ms each)")
                if args.against is not None:
                    other = reg["against"][-1]
                    line += f"  against: registrations {other.rate:,.0f}/s (server CPU {other.cpu_ms:.2f} ms each)"
                print(line, file=sys.stderr, flush=True)
            checked = sum(verify_sample(s.url, [st for signed in rounds[1:] for st in signed[:200:10]])
                          for s in servers)  # surely reached
        finally:
            for stopped in servers:
                stopped.stop()
    ratios = [a.rate / b.rate for a, b in zip(reg["this"], nop, strict=True)]
    print(f"wrk, 1 thread, {args.connections} connections, {args.duration:g} s per round and kind, "
          f"{args.rounds} rounds")
    _print_rates("registrations (POST /entries -> 201 + receipt):", reg["this"])
    _print_rates("no-op POST, same stack:                        ", nop)
    print(f"ratio registrations/no-op: median {statistics.median(ratios):.2f} "
          f"(rounds: {min(ratios):.2f}..{max(ratios):.2f}); aim >= 0.6")
    print(f"server CPU time per request (all threads): registration "
          f"{statistics.median(r.cpu_ms for r in reg['this']):.2f} ms, "
          f"no-op {statistics.median(r.cpu_ms for r in nop):.2f} ms")
    if args.against is not None:
        _print_rates(f"registrations of {args.against}:", reg["against"])
        versus = [a.rate / b.rate for a, b in zip(reg["this"], reg["against"], strict=True)]
        against_nop = [a.rate / b.rate for a, b in zip(reg["against"], nop, strict=True)]
        print(f"  its ratio to the no-op: median {statistics.median(against_nop):.2f}; this checkout's registrations / "
              f"its: median {statistics.median(versus):.2f} (rounds: {min(versus):.2f}..{max(versus):.2f}); server "
              f"CPU per registration {statistics.median(r.cpu_ms for r in reg['against']):.2f} ms")
    print(f"receipts fetched and verified offline after the run: {checked}")


def _print_rates(label: str, runs: list[WrkRun]) -> None:
    print(f"{label} {statistics.median(r.rate for r in runs):8,.0f}/s (median; p50 "
          f"{statistics.median(r.p50_ms for r in runs):.1f} ms, "
          f"p99 {statistics.median(r.p99_ms for r in runs):.1f} ms)")


class _Server:
    """A benchmark server (``--serve``) run from a checkout of the repository, on a port and data folder of its own."""

    def __init__(self, name: str, checkout: Path, folder: Path) -> None:
        self.name = name
        self.checkout = checkout
        self.folder = folder
        self.url = f"http://127.0.0.1:{free_port()}"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        port = self.url.rsplit(":", 1)[1]
        self.process = start(
            [sys.executable, "-m", "tools.bench.registrations", "--serve", str(self.folder / f"data-{self.name}"),
             "--port", port], self.folder / f"server-{self.name}.log", f"{self.url}/checkpoint",
            env=clean_env(PYTHONPATH=str(self.checkout)), cwd=self.checkout)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)


@contextmanager
def profiling(pid: int, out: Path | None, round_: int, *, gil: bool) -> Iterator[None]:
    """py-spy on ``pid`` for the block (nothing if ``out`` is None); its samples are appended to ``out``."""
    if out is None:
        yield
        return
    if round_ == 1:
        out.write_bytes(b"")
    part = out.with_name(f"{out.name}.{round_}")
    profiler = subprocess.Popen(
        [str(REPO / ".venv/bin/py-spy"), "record", "-p", str(pid), "-o", str(part), "--rate", "200", "--threads",
         "--nonblocking", "--format", "raw", *(["--gil"] if gil else [])],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    try:
        yield
    finally:
        profiler.send_signal(signal.SIGINT)
        try:
            profiler.wait(60)
        except subprocess.TimeoutExpired:
            profiler.kill()
    if part.exists():
        with out.open("ab") as whole:
            whole.write(part.read_bytes())
        part.unlink()


def verify_sample(url: str, sample: list[bytes]) -> int:
    """Fetch the receipt of each sampled statement that was registered, and verify it offline."""
    checked = 0
    with httpx.Client(base_url=url, timeout=30) as client:
        keys = parse_key_set(client.get("/.well-known/scitt-keys").content)
        for statement in sample:
            answer = client.get(f"/entries/{entry_id(statement_leaf_data(statement))}")
            if answer.status_code == 404:
                continue  # signed for the round but not reached in its time
            if answer.status_code != 200:
                raise SystemExit(f"GET /entries answered {answer.status_code}")
            verify_receipt(answer.content, statement, keys)
            checked += 1
    return checked


if __name__ == "__main__":
    main()
