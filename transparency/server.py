"""Serve the transparency service with Hypercorn on uvloop (``transparency.serving``), in one process: the
log has exactly one writer."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence

from hypercorn.config import Config
from hypercorn.utils import LifespanFailureError
from starlette.routing import BaseRoute

from transparency.http.app import STARTUP_ERROR, Extension, create_app
from transparency.service import TransparencyService
from transparency.serving import serve_until_stopped
from transparency.settings import Settings

log = logging.getLogger(__name__)

SWITCH_INTERVAL_S = 0.0005
"""The interpreter's switch interval in the server process (CPython's default: 0.005 s). The event loop shares
the interpreter lock with the intake thread (signature checks) and the sequencer (commits): such a thread,
back from a call that released the lock (an Ed25519 verification, an fsync), waits for the busy loop to let go
of it, up to this long, and a registration waits with it. 5 ms is longer than a whole batch's commit; 0.5 ms
bounds the wait, and costs a process with one busy thread (the no-op benchmark) nothing: the interval only
counts while another thread waits (docs/benchmarks.md)."""


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
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    service = TransparencyService(settings)
    try:
        if opened is not None:
            opened()
        app = create_app(settings, extra_routes=extra_routes, extensions=extensions, service=service)
        config = hypercorn_config(settings)

        try:
            serve_until_stopped(app, config)
        except LifespanFailureError:
            cause = getattr(app.state, STARTUP_ERROR, None)
            if not isinstance(cause, Exception):
                raise
            raise cause from None
    finally:
        service.close()
