"""An experiment for issue 11: would registrations reach 0.6x a no-op POST if HTTP ran in a process of its own?

    .venv/bin/python -m tools.bench.split_front [--rounds 3] [--duration 8] [--connections 16]

Two processes. The *core* opens the transparency service as ``tabellion serve`` does (intake thread, sequencer,
identity fold; the embedded issuer is not hosted) and takes statements over a Unix socket: each frame is a
request id and a body, answered with the sequencer's receipt (or the refusal's code) under the same id. The
*front* is Starlette on Hypercorn with the service's body-read middleware: ``POST /entries`` reads the body,
forwards it on one multiplexed socket and answers 201 with the receipt; ``POST /bench/noop`` reads the body and
answers 201 with 400 bytes. So the front's no-op is the same stack as its registrations, and the checks and the
batch run under an interpreter lock of their own. wrk (one thread, 16 connections, pre-signed distinct
statements) measures both kinds in alternating order per round; the figure is the median ratio, with each
process's CPU time per registration. Only a measurement: the service does not run this way (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from hypercorn.config import Config
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from schemas.errors import TabellionError
from tools.bench.processes import REPO, clean_env, cpu_seconds, free_port, start, stop
from tools.bench.registrations import run_wrk, statements, write_bodies
from transparency.request_bodies import BodyReadDeadline, read_limited_body
from transparency.server import SWITCH_INTERVAL_S
from transparency.service import TransparencyService
from transparency.serving import run_loop, serve_until_stopped
from transparency.settings import load_settings

FRAME = struct.Struct(">II")  # length of what follows, request id
NOOP_BODY = bytes(400)


def run_core(data: Path, socket_path: Path) -> None:
    """The log's core: the service, fed over ``socket_path``; answers ``0 | len(leaf) (2) | leaf | receipt`` or
    ``1 | code``."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    service = TransparencyService(load_settings({"data_dir": data}))

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def register(request_id: int, body: bytes) -> None:
            try:
                done = await service.register(body)
                answer = b"\x00" + len(done.leaf_data).to_bytes(2, "big") + done.leaf_data + (done.receipt or b"")
            except TabellionError as exc:
                answer = b"\x01" + exc.code.encode()
            writer.write(FRAME.pack(len(answer), request_id) + answer)

        tasks: set[asyncio.Task[None]] = set()
        while True:
            try:
                size, request_id = FRAME.unpack(await reader.readexactly(FRAME.size))
                body = await reader.readexactly(size)
            except asyncio.IncompleteReadError:
                return
            task = asyncio.get_running_loop().create_task(register(request_id, body))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def main() -> None:
        async with await asyncio.start_unix_server(connection, str(socket_path)) as server:
            await server.serve_forever()

    try:
        run_loop(main())
    finally:
        service.close()


def run_front(port: int, socket_path: Path) -> None:
    """Starlette on Hypercorn: ``POST /entries`` forwarded to the core, ``POST /bench/noop``, ``GET /checkpoint``
    (readiness only)."""
    class Core:
        def __init__(self) -> None:
            self.writer: asyncio.StreamWriter | None = None
            self.waiting: dict[int, asyncio.Future[bytes]] = {}
            self.next_id = 0

        async def send(self, body: bytes) -> bytes:
            if self.writer is None:
                reader, self.writer = await asyncio.open_unix_connection(str(socket_path))
                asyncio.get_running_loop().create_task(self.answers(reader))
            self.next_id += 1
            answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
            self.waiting[self.next_id] = answer
            self.writer.write(FRAME.pack(len(body), self.next_id) + body)
            return await answer

        async def answers(self, reader: asyncio.StreamReader) -> None:
            while True:
                size, request_id = FRAME.unpack(await reader.readexactly(FRAME.size))
                self.waiting.pop(request_id).set_result(await reader.readexactly(size))

    core = Core()

    async def entries(request: Request) -> Response:
        answer = await core.send(await read_limited_body(request, 1 << 20))
        if answer[0] != 0:
            return Response(answer[1:], 400)
        size = int.from_bytes(answer[1:3], "big")
        leaf, receipt = answer[3:3 + size], answer[3 + size:]
        return Response(receipt, 201, {"Location": f"/entries/{leaf.hex()}"}, "application/cose")

    async def noop(request: Request) -> Response:
        await read_limited_body(request, 1 << 20)
        return Response(NOOP_BODY, 201, media_type="application/cose")

    async def ready(request: Request) -> Response:
        return Response(b"ready")

    app = Starlette(routes=[Route("/entries", entries, methods=["POST"]),
                            Route("/bench/noop", noop, methods=["POST"]), Route("/checkpoint", ready)],
                    middleware=[Middleware(BodyReadDeadline, timeout_s=10.0)])
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.keep_alive_timeout = 30
    serve_until_stopped(app, config)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-second", type=int, default=2500, help="statements signed per second of a round")
    parser.add_argument("--core", nargs=2, type=Path, help=argparse.SUPPRESS)  # internal: DATA SOCKET
    parser.add_argument("--front", nargs=2, help=argparse.SUPPRESS)  # internal: PORT SOCKET
    args = parser.parse_args(argv)
    if args.core:
        run_core(*args.core)
        return
    if args.front:
        run_front(int(args.front[0]), Path(args.front[1]))
        return
    with tempfile.TemporaryDirectory(prefix="tabellion-split-") as tmp:
        folder = Path(tmp)
        per_round = args.per_second * args.duration
        print(f"signing {per_round * (args.rounds + 1):,} statements", file=sys.stderr, flush=True)
        bodies = []
        for r in range(args.rounds + 1):
            write_bodies(folder / f"round-{r}.bin", statements(per_round, f"split-{r}"))
            bodies.append(folder / f"round-{r}.bin")
        socket_path = folder / "core.sock"
        with (folder / "core.log").open("ab") as log:
            core = subprocess.Popen([sys.executable, "-m", "tools.bench.split_front", "--core",
                                     str(folder / "data"), str(socket_path)], cwd=REPO, env=clean_env(), stdout=log,
                                    stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{free_port()}"
        try:
            for _ in range(600):
                if socket_path.exists() or core.poll() is not None:
                    break
                time.sleep(0.05)
            if not socket_path.exists():
                raise SystemExit(f"the core did not start:\n{(folder / 'core.log').read_text()[-2000:]}")
            front = start([sys.executable, "-m", "tools.bench.split_front", "--front", url.rsplit(":", 1)[1],
                           str(socket_path)], folder / "front.log", f"{url}/checkpoint")
            try:
                run_wrk(f"{url}/entries", bodies[0], args.connections, min(3, args.duration))
                ratios, front_cpu, core_cpu, noop_cpu = [], [], [], []
                for r in range(1, args.rounds + 1):
                    for kind in ("entries", "noop") if r % 2 else ("noop", "entries"):
                        if kind == "noop":
                            nop = run_wrk(f"{url}/bench/noop", bodies[r], args.connections, args.duration,
                                          distinct=False, server=front.pid)
                            continue
                        before = cpu_seconds(core.pid)
                        reg = run_wrk(f"{url}/entries", bodies[r], args.connections, args.duration, server=front.pid)
                        core_ms = 1000 * (cpu_seconds(core.pid) - before) / (reg.rate * args.duration)
                    ratios.append(reg.rate / nop.rate)
                    front_cpu.append(reg.cpu_ms)
                    core_cpu.append(core_ms)
                    noop_cpu.append(nop.cpu_ms)
                    print(f"  round {r}/{args.rounds}: registrations {reg.rate:,.0f}/s (p50 {reg.p50_ms:.1f} ms; CPU "
                          f"front {reg.cpu_ms:.2f} ms, core ~{core_ms:.2f} ms each)  no-op {nop.rate:,.0f}/s (CPU "
                          f"{nop.cpu_ms:.2f} ms each)  ratio {ratios[-1]:.2f}", file=sys.stderr, flush=True)
            finally:
                stop(front)
        finally:
            stop(core)
    print(f"split front (HTTP in one process, the log's checks and batches in another), wrk 1 thread, "
          f"{args.connections} connections, {args.duration} s per round and kind, {args.rounds} rounds")
    print(f"ratio registrations/no-op on the front: median {statistics.median(ratios):.2f} "
          f"(rounds {min(ratios):.2f}..{max(ratios):.2f}); aim >= 0.6")
    print(f"CPU per registration: front {statistics.median(front_cpu):.2f} ms + core {statistics.median(core_cpu):.2f}"
          f" ms; per no-op: {statistics.median(noop_cpu):.2f} ms")


if __name__ == "__main__":
    main()
