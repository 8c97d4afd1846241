"""Registrations per second on PostgreSQL and on SQLite, each beside a no-op POST on the same server, same run,
measured from outside with a native load generator (wrk).

    .venv/bin/python -m tools.bench.postgres_registrations [--rounds 3] [--duration 8] [--connections 16]

Two server processes are started as ``tabellion serve`` is (``transparency.server.serve``: Hypercorn, Starlette,
the transparency service with its sequencer and the embedded issuer), one on a SQLite data folder and one with
``--database`` on a PostgreSQL 15 started here (Debian's binaries, ``initdb`` into a temporary folder, durable
settings: ``fsync=on``, ``synchronous_commit=on``). Each has one extra route, ``POST /bench/noop``: it reads
the body and answers 201 with a receipt-sized body, so the ratio isolates what registration costs beyond the
stack (parse, signature check, identity policy, queue, batch commit, receipt).

wrk (one thread, ``--connections`` keep-alive connections, Lua script below) posts pre-signed, distinct
statements (did:key Ed25519, small JSON payload), each at most once per run; the same bodies go to the no-op.
Rounds alternate the order of the kinds and of the backends. Every registration must answer 201; a sample
of receipts is verified offline after the run. The database server runs on the same two cores as the service
and wrk, as the whole stack does.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from schemas.cose_sign1 import decode_sign1
from schemas.leaf import entry_id, leaf_data
from schemas.media_types import COSE
from tests.postgres import postgres_server
from tools.bench.processes import free_port, start, stop
from transparency.client.signing import did_of, sign_statement
from transparency.server import serve
from transparency.settings import load_settings
from verifier.keys import parse_key_set
from verifier.receipts import verify_receipt

NOOP_BODY = bytes(400)

# Each wrk thread reads the bodies (one hex line each) once, then posts the next one per request (wrk asks for
# a first request it does not send: body 0 is never posted); done() prints one JSON line with the rate, the
# latency percentiles and the answers counted by status.
LUA = r"""
local bodies = {}
counter, created, other = 0, 0, 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(os.getenv("BENCH_BODIES")) do
    bodies[#bodies + 1] = (line:gsub("..", function(cc) return string.char(tonumber(cc, 16)) end))
  end
end

function request()
  counter = counter + 1
  local body = bodies[((counter - 1) % #bodies) + 1]
  return wrk.format("POST", nil, {["Content-Type"] = "application/cose"}, body)
end

function response(status, headers, body)
  if status == 201 then created = created + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local sent, ok, bad = 0, 0, 0
  for _, t in ipairs(threads) do
    sent = sent + t:get("counter")
    ok = ok + t:get("created")
    bad = bad + t:get("other")
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.6f, "p50_ms": %.3f, "p99_ms": %.3f, "sent": %d, "created": %d, ' ..
    '"other": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    sent, ok, bad, e.connect + e.read + e.write + e.timeout))
end
"""


async def noop(request: Request) -> Response:
    await request.body()
    return Response(NOOP_BODY, status_code=201, media_type=COSE)


def run_server(data: Path, port: int, database: str | None) -> None:
    settings = load_settings({"data_dir": data, "port": port, "database": database})
    serve(settings, extra_routes=[Route("/bench/noop", noop, methods=["POST"])])


def sign_bodies(n: int, tag: str, path: Path) -> list[bytes]:
    key = Ed25519PrivateKey.generate()
    did = did_of(key)
    bodies = [sign_statement(key, json.dumps({"bench": tag, "n": i, "operator": did}).encode(),
                             subject="did:example:bench", content_type="application/json") for i in range(n)]
    path.write_text("".join(b.hex() + "\n" for b in bodies))
    return bodies


def wrk(url: str, bodies: Path, script: Path, args: argparse.Namespace) -> dict[str, float]:
    done = subprocess.run(
        ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", "--timeout", "30s", "-s", str(script), url],
        capture_output=True, text=True, env={"BENCH_BODIES": str(bodies), "PATH": "/usr/bin:/bin"}, check=True,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    result["rate"] = result["requests"] / result["seconds"]
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)  # internal: run a server on this folder
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        run_server(args.serve, args.port, args.database)
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: run bash scripts/setup.sh (scripts/apt-packages.txt lists it)")
    with tempfile.TemporaryDirectory(prefix="tabellion-bench-") as tmp, postgres_server(durable=True) as pg:
        measure(Path(tmp), pg.create_database(), args)


def measure(tmp: Path, database: str, args: argparse.Namespace) -> None:
    script = tmp / "post.lua"
    script.write_text(LUA)
    servers: dict[str, tuple[str, subprocess.Popen[bytes]]] = {}
    try:
        for backend, db in (("sqlite", None), ("postgresql", database)):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            command = [sys.executable, "-m", "tools.bench.postgres_registrations", "--serve", str(tmp / backend),
                       "--port", str(port), *(["--database", db] if db else [])]
            servers[backend] = (url, start(command, tmp / f"{backend}.log", f"{url}/checkpoint"))
        results: dict[tuple[str, str], list[dict[str, float]]] = {}
        signed: dict[str, list[bytes]] = {}  # statements answered 201
        expected = 1500.0
        for r in range(-1, args.rounds):  # round -1 warms both servers up and is not counted
            backends = ["sqlite", "postgresql"] if r % 2 == 0 else ["postgresql", "sqlite"]
            for backend in backends:
                url = servers[backend][0]
                need = int(max(expected, 200) * args.duration * 2)
                print(f"round {r + 1}/{args.rounds} {backend}: signing {need:,} statements", file=sys.stderr,
                      flush=True)
                bodies_path = tmp / f"{backend}-{r}.hex"
                bodies = sign_bodies(need, f"{backend}-{r}", bodies_path)
                for kind in (("reg", "noop") if r % 2 == 0 else ("noop", "reg")):
                    path = "/entries" if kind == "reg" else "/bench/noop"
                    result = wrk(url + path, bodies_path, script, args)
                    if kind == "reg":
                        if result["sent"] > len(bodies):  # wrk asks each thread for one request it never sends
                            raise SystemExit(f"wrk sent {result['sent']:.0f} of {len(bodies)} statements: some twice")
                        if result["other"] or result["socket_errors"]:
                            raise SystemExit(f"registrations not all answered 201: {result}")
                        expected = max(expected, result["rate"])
                        signed.setdefault(backend, []).extend(bodies[1:int(result["created"])])
                    if r >= 0:
                        results.setdefault((backend, kind), []).append(result)
                    print(f"  {kind:4} {result['rate']:8,.0f}/s  p50 {result['p50_ms']:6.1f} ms  "
                          f"p99 {result['p99_ms']:6.1f} ms", file=sys.stderr, flush=True)
        verified = verify_sample(servers, signed)
    finally:
        for _, process in servers.values():
            stop(process)
    report(results, args, verified)


def verify_sample(servers: dict[str, tuple[str, subprocess.Popen[bytes]]],
                  signed: dict[str, list[bytes]]) -> int:
    """Receipts of a sample of the registered statements, verified offline with the log's key set."""
    count = 0
    for backend, (url, _) in servers.items():
        keys = parse_key_set(httpx.get(f"{url}/.well-known/scitt-keys").content)
        for statement in random.Random(1).sample(signed[backend], min(50, len(signed[backend]))):
            ident = entry_id(leaf_data(decode_sign1(statement)))
            answer = httpx.get(f"{url}/entries/{ident}", timeout=30)
            if answer.status_code != 200:
                raise SystemExit(f"{backend}: no receipt for entry {ident} ({answer.status_code})")
            verify_receipt(answer.content, statement, keys)
            count += 1
    return count


def report(results: dict[tuple[str, str], list[dict[str, float]]], args: argparse.Namespace, verified: int) -> None:
    print(f"wrk: 1 thread, {args.connections} connections, {args.duration} s per run, {args.rounds} rounds; "
          "each statement posted once")
    for backend in ("sqlite", "postgresql"):
        reg, noop_ = results[(backend, "reg")], results[(backend, "noop")]
        ratios = [a["rate"] / b["rate"] for a, b in zip(reg, noop_, strict=True)]
        median = statistics.median
        print(f"{backend:10} registrations {median(r['rate'] for r in reg):7,.0f}/s "
              f"(p50 {median(r['p50_ms'] for r in reg):.1f} ms, p99 {median(r['p99_ms'] for r in reg):.1f} ms)  "
              f"no-op {median(r['rate'] for r in noop_):7,.0f}/s (p50 {median(r['p50_ms'] for r in noop_):.1f} ms)  "
              f"ratio {median(ratios):.2f} (rounds {min(ratios):.2f}..{max(ratios):.2f})")
    print(f"receipts verified offline after the run: {verified}")


if __name__ == "__main__":
    main()
