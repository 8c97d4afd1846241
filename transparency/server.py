"""Serve the transparency service with Hypercorn (one process: the log has exactly one writer)."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config
from starlette.routing import BaseRoute

from transparency.http.app import Extension, create_app
from transparency.settings import Settings

log = logging.getLogger(__name__)


def hypercorn_config(settings: Settings) -> Config:
    config = Config()
    config.bind = [f"{settings.host}:{settings.port}"]
    config.accesslog = None
    config.errorlog = "-"
    config.keep_alive_timeout = 30
    return config


def serve(
    settings: Settings, extra_routes: Sequence[BaseRoute] = (), extensions: Sequence[Extension] = ()
) -> None:
    """Run until SIGINT/SIGTERM; the sequencer finishes its batch and the database closes cleanly."""
    app = create_app(settings, extra_routes=extra_routes, extensions=extensions)
    config = hypercorn_config(settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await hypercorn_serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]

    asyncio.run(main())
