"""How every server of the project runs (the log, the gateway, the witness, the console): Hypercorn on uvloop's
event loop (libuv) until SIGINT or SIGTERM, then a graceful shut-down.

uvloop is chosen by measurement (docs/benchmarks.md): on the same Hypercorn and Starlette it spends less CPU per
request than asyncio's own selector loop, a little for the log's registrations (about 6%), a quarter or more for
the gateway's pass-through."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from typing import Any

import uvloop
from hypercorn.asyncio import serve
from hypercorn.config import Config


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` to the end on a new uvloop event loop."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def serve_until_stopped(app: Any, config: Config) -> None:
    """Serve the ASGI ``app`` with Hypercorn's ``config`` until SIGINT or SIGTERM; requests in flight finish
    within Hypercorn's ``graceful_timeout``."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(app, config, shutdown_trigger=stop.wait)

    run_loop(main())
