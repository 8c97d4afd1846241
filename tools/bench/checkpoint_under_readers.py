"""GET /checkpoint latency while followers read large pages of entries, vs idle, side by side in the same run.

    .venv/bin/python -m tools.bench.checkpoint_under_readers [--entries 3000] [--readers 6] [--rounds 6]

One real server (``tabellion serve``: Hypercorn, the transparency service and the issuer) on 127.0.0.1, with a
log of ``--entries`` statements registered over HTTP first. Then ``--rounds`` rounds, each with an idle phase and
a loaded phase (the order alternates): in both, this process sends ``--probes`` GET /checkpoint on one keep-alive
connection, one every ``--pause-ms``, and records each latency. In the loaded phase a second process runs
``--readers`` concurrent page readers, each on its own keep-alive connection asking for
``GET /entries?start=<random>&limit=<--limit>`` (every entry with its receipt) back to back; probing starts once
every reader has had its first page. After the readers stop, a one-entry page (queued behind the pages they had
asked for) is awaited, so the next idle phase is idle.

Reported: p50/p90/p99 of the checkpoint latency idle and loaded (all rounds), the median over rounds of the
ratio loaded p50 / idle p50 (the figure; aim <= 2), and the pages the readers got per second. Client, readers
and server share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.media_types import COSE
from tools.bench.processes import REPO, clean_env, free_port, start, stop
from transparency.client.signing import did_of, sign_statement


def populate(url: str, entries: int, clients: int = 16) -> None:
    key = Ed25519PrivateKey.generate()
    did = did_of(key)
    bodies = [sign_statement(key, json.dumps({"bench": "checkpoint", "n": i, "operator": did}).encode(),
                             subject="did:example:bench", content_type="application/json") for i in range(entries)]
    todo = iter(bodies)

    async def worker(client: httpx.AsyncClient) -> None:
        for body in todo:
            r = await client.post("/entries", content=body, headers={"content-type": COSE})
            if r.status_code != 201:
                raise SystemExit(f"POST /entries answered {r.status_code}: {r.content[:200]!r}")

    async def main() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            await asyncio.gather(*(worker(client) for _ in range(clients)))

    asyncio.run(main())


def read_pages(url: str, readers: int, limit: int, size: int) -> None:
    """The loaded phase's page readers (run in their own process until SIGTERM): prints ``ready``, then, when
    stopped, the pages read."""
    pages = 0
    ready: set[int] = set()
    announced = False

    async def reader(n: int, stop: asyncio.Event) -> None:
        nonlocal pages, announced
        rng = random.Random(n)
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            while not stop.is_set():
                start = rng.randrange(0, max(1, size - limit))
                r = await client.get("/entries", params={"start": start, "limit": limit})
                if r.status_code != 200:
                    raise SystemExit(f"GET /entries answered {r.status_code}")
                pages += 1
                ready.add(n)
                if len(ready) == readers and not announced:
                    print("ready", flush=True)
                    announced = True

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        started = time.perf_counter()
        tasks = [asyncio.create_task(reader(n, stop)) for n in range(readers)]
        await asyncio.gather(*tasks)
        print(f"pages {pages} {time.perf_counter() - started:.3f}", flush=True)

    asyncio.run(main())


def probe(client: httpx.Client, probes: int, pause_s: float) -> list[float]:
    latencies = []
    for _ in range(probes):
        t0 = time.perf_counter()
        r = client.get("/checkpoint")
        latencies.append(time.perf_counter() - t0)
        if r.status_code != 200:
            raise SystemExit(f"GET /checkpoint answered {r.status_code}")
        time.sleep(pause_s)
    return latencies


def settle(client: httpx.Client) -> None:
    """Wait until the server has read the pages still queued when the readers went away (a page asked for is
    read even if its reader has left), so that an idle phase after a loaded one is idle."""
    client.get("/entries", params={"start": 0, "limit": 1}, timeout=300)  # queued behind them, in order


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(url: str, args: argparse.Namespace) -> None:
    idle: list[float] = []
    loaded: list[float] = []
    ratios: list[float] = []
    rates: list[float] = []
    with httpx.Client(base_url=url, timeout=60) as client:
        probe(client, 50, 0.0)  # warm-up
        for r in range(args.rounds):
            phase: dict[str, list[float]] = {}
            for kind in (("idle", "loaded") if r % 2 == 0 else ("loaded", "idle")):
                if kind == "idle":
                    phase[kind] = probe(client, args.probes, args.pause_ms / 1000)
                    continue
                readers = subprocess.Popen(
                    [sys.executable, "-m", "tools.bench.checkpoint_under_readers", "--read", url,
                     "--readers", str(args.readers), "--limit", str(args.limit), "--size", str(args.entries)],
                    cwd=REPO, env=clean_env(), stdout=subprocess.PIPE, text=True)
                assert readers.stdout is not None
                if readers.stdout.readline().strip() != "ready":
                    raise SystemExit("the page readers did not start")
                try:
                    phase[kind] = probe(client, args.probes, args.pause_ms / 1000)
                finally:
                    readers.send_signal(signal.SIGTERM)
                    out, _ = readers.communicate(timeout=120)
                _, pages, seconds = out.split()
                rates.append(int(pages) / float(seconds))
                settle(client)
            idle += phase["idle"]
            loaded += phase["loaded"]
            ratios.append(statistics.median(phase["loaded"]) / statistics.median(phase["idle"]))
            print(f"  round {r + 1}/{args.rounds}: checkpoint p50 idle {statistics.median(phase['idle']) * 1e3:6.2f} ms"
                  f"  loaded {statistics.median(phase['loaded']) * 1e3:7.2f} ms  ratio {ratios[-1]:6.2f}"
                  f"  ({rates[-1]:.1f} pages/s)", file=sys.stderr, flush=True)
    print(f"log of {args.entries:,} entries; {args.readers} page readers of {args.limit} entries; "
          f"{args.probes} probes per phase, {args.rounds} rounds")
    for name, values in (("idle", idle), ("loaded", loaded)):
        print(f"GET /checkpoint {name:6}: p50 {percentile(values, 0.5) * 1e3:7.2f} ms  "
              f"p90 {percentile(values, 0.9) * 1e3:7.2f} ms  p99 {percentile(values, 0.99) * 1e3:7.2f} ms")
    print(f"pages read under load: {statistics.median(rates):.1f}/s (median of rounds)")
    print(f"ratio loaded/idle p50: median {statistics.median(ratios):.2f} "
          f"(rounds {min(ratios):.2f}..{max(ratios):.2f}); aim <= 2")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=3000, help="statements in the log")
    parser.add_argument("--readers", type=int, default=6, help="concurrent page readers in the loaded phase")
    parser.add_argument("--limit", type=int, default=1000, help="entries per page")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--probes", type=int, default=200, help="GET /checkpoint per phase")
    parser.add_argument("--pause-ms", type=float, default=10.0, help="pause between two probes")
    parser.add_argument("--read", metavar="URL", help=argparse.SUPPRESS)  # internal: be the page readers
    parser.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.read:
        read_pages(args.read, args.readers, args.limit, args.size)
        return

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="tabellion-bench-") as tmp:
        url = f"http://127.0.0.1:{port}"
        server = start([sys.executable, "-m", "cli.main", "serve", "--data", f"{tmp}/data", "--port", str(port)],
                       Path(tmp) / "server.log", f"{url}/checkpoint")
        try:
            t0 = time.perf_counter()
            print(f"registering {args.entries:,} statements", file=sys.stderr, flush=True)
            populate(url, args.entries)
            print(f"  done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
            measure(url, args)
        finally:
            stop(server)


if __name__ == "__main__":
    main()
