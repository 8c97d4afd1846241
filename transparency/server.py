"""Serve the transparency service with Hypercorn (one process: the log has exactly one writer)."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config
from hypercorn.utils import LifespanFailureError
from starlette.routing import BaseRoute

from transparency.http.app import STARTUP_ERROR, Extension, create_app
from transparency.service import TransparencyService
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
    settings: Settings, extra_routes: Sequence[BaseRoute] = (), extensions: Sequence[Extension] = (),
    *, opened: Callable[[], None] | None = None,
) -> None:
    """Open the log, call ``opened``, then serve until SIGINT/SIGTERM; the sequencer finishes its batch and the
    database closes cleanly.

    Opening the log runs its start-up checks (``transparency.log.checks``), so a corrupted log raises its
    ``LogCorrupted`` here, before anything listens, and the CLI shows it in one line. If a hosted extension
    fails to start, Hypercorn raises a ``LifespanFailureError`` whose message is a traceback; the error that
    caused it is raised instead.
    """
    service = TransparencyService(settings)
    try:
        if opened is not None:
            opened()
        app = create_app(settings, extra_routes=extra_routes, extensions=extensions, service=service)
        config = hypercorn_config(settings)

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await hypercorn_serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]

        try:
            asyncio.run(main())
        except LifespanFailureError:
            cause = getattr(app.state, STARTUP_ERROR, None)
            if not isinstance(cause, Exception):
                raise
            raise cause from None
    finally:
        service.close()
