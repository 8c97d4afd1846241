"""The event loop the servers run on: uvloop's (libuv), chosen by measurement (docs/benchmarks.md): on the same
Hypercorn and Starlette it spends less CPU per request than asyncio's own selector loop, a little for the log's
registrations (about 6%), a quarter or more for the gateway's pass-through."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import uvloop


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` to the end on a new uvloop event loop."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)
