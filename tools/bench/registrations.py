"""Registrations per second over HTTP, as a ratio to a no-op POST on the same server stack, same run.

    .venv/bin/python -m tools.bench.registrations [--clients 32] [--rounds 8] [--per-round 1000]

One server process is started as ``tabellion serve`` is (``transparency.server.serve``: Hypercorn,
Starlette, the transparency service with its sequencer), on 127.0.0.1, with one extra route,
``POST /bench/noop``: it reads the body and answers 201 with a fixed ``application/cose`` body of a
receipt's size. Nothing else differs, so the ratio isolates what registration costs beyond the stack
(parse, signature check, policy, queue, batch commit with fsync, receipt signing and assembly).

The client runs ``--clients`` concurrent HTTP/1.1 keep-alive connections (httpx, asyncio) in this
process. Statements are signed before timing starts, each one distinct (did:key Ed25519 signer, small
JSON payload). Rounds alternate which kind goes first; every registration must answer 201 with a
receipt, and a sample of receipts is verified offline against the log's key set after the run.

The machine's two cores are shared by client and server, so absolute rates are modest; the ratio is the
figure to read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from schemas.media_types import COSE
from tools.bench.processes import free_port, start, stop
from transparency.client.signing import did_of, sign_statement
from transparency.server import serve
from transparency.settings import load_settings
from verifier.keys import parse_key_set
from verifier.receipts import verify_receipt

NOOP_BODY = bytes(400)


async def noop(request: Request) -> Response:
    await request.body()
    return Response(NOOP_BODY, status_code=201, media_type=COSE)


def run_server(data: Path, port: int) -> None:
    serve(load_settings({"data_dir": data, "port": port}), extra_routes=[Route("/bench/noop", noop, methods=["POST"])])


def statements(n: int, tag: str) -> list[bytes]:
    key = Ed25519PrivateKey.generate()
    did = did_of(key)
    return [
        sign_statement(key, json.dumps({"bench": tag, "n": i, "operator": did}).encode(),
                       subject="did:example:bench", content_type="application/json")
        for i in range(n)
    ]


async def post_all(
    client: httpx.AsyncClient, path: str, bodies: list[bytes], clients: int
) -> tuple[float, list[bytes]]:
    """POST every body with ``clients`` concurrent workers; the rate and the answers (201 required)."""
    answers: list[bytes] = [b""] * len(bodies)
    next_index = iter(range(len(bodies)))

    async def worker() -> None:
        for i in next_index:
            r = await client.post(path, content=bodies[i], headers={"content-type": COSE})
            if r.status_code != 201:
                raise SystemExit(f"POST {path} answered {r.status_code}: {r.content[:200]!r}")
            answers[i] = r.content

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return len(bodies) / (time.perf_counter() - t0), answers


async def measure(url: str, args: argparse.Namespace) -> None:
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        print(f"signing {args.rounds * args.per_round + 200:,} statements", file=sys.stderr, flush=True)
        warm = statements(200, "warm-up")
        rounds = [statements(args.per_round, f"round-{r}") for r in range(args.rounds)]
        await post_all(client, "/entries", warm, args.clients)
        await post_all(client, "/bench/noop", warm, args.clients)
        reg_rates: list[float] = []
        noop_rates: list[float] = []
        samples: list[tuple[bytes, bytes]] = []
        for r, bodies in enumerate(rounds):
            order = ("reg", "noop") if r % 2 == 0 else ("noop", "reg")
            for kind in order:
                if kind == "reg":
                    rate, answers = await post_all(client, "/entries", bodies, args.clients)
                    reg_rates.append(rate)
                    samples += list(zip(bodies[:: max(1, len(bodies) // 20)], answers[:: max(1, len(bodies) // 20)],
                                        strict=True))
                else:
                    noop_rates.append((await post_all(client, "/bench/noop", bodies, args.clients))[0])
            print(f"  round {r + 1}/{args.rounds}: registrations {reg_rates[-1]:,.0f}/s  no-op {noop_rates[-1]:,.0f}/s",
                  file=sys.stderr, flush=True)
        keys = parse_key_set((await client.get("/.well-known/scitt-keys")).content)
    for statement, receipt in samples:
        verify_receipt(receipt, statement, keys)
    ratios = [a / b for a, b in zip(reg_rates, noop_rates, strict=True)]
    print(f"concurrent clients: {args.clients}; {args.per_round:,} requests per round and kind, {args.rounds} rounds")
    print(f"registrations (POST /entries -> 201 + receipt): {statistics.median(reg_rates):8,.0f}/s (median)")
    print(f"no-op POST, same stack:                         {statistics.median(noop_rates):8,.0f}/s (median)")
    print(f"ratio registrations/no-op: median {statistics.median(ratios):.2f} "
          f"(rounds: {min(ratios):.2f}..{max(ratios):.2f}); aim >= 0.5")
    print(f"receipts verified offline after the run: {len(samples)}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32, help="concurrent connections")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--per-round", type=int, default=1000, help="requests per round and kind")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)  # internal: run the server on this folder
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        run_server(args.serve, args.port)
        return

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="tabellion-bench-") as tmp:
        url = f"http://127.0.0.1:{port}"
        server = start([sys.executable, "-m", "tools.bench.registrations", "--serve", tmp, "--port", str(port)],
                       Path(tmp) / "server.log", f"{url}/checkpoint")
        try:
            asyncio.run(measure(url, args))
        finally:
            stop(server)


if __name__ == "__main__":
    main()
