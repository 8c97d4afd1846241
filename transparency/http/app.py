"""The Starlette application factory of the transparency service."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from schemas.errors import TabellionError
from transparency.http.operations import ROUTES as OPERATIONS
from transparency.http.operations import LogMetrics
from transparency.http.problems import handle_http_exception, handle_tabellion_error, handle_unexpected
from transparency.http.ratelimit import RateLimiter
from transparency.http.routes import ROUTES
from transparency.registration import Registrar
from transparency.request_bodies import BodyReadDeadline
from transparency.service import TransparencyService
from transparency.settings import Settings
from transparency.tpm.ceremony import EnrolmentCeremony

Extension = Callable[[Starlette, TransparencyService], AbstractAsyncContextManager[None]]
"""Something hosted in the same process (the issuer): started after the service, stopped before it."""

STARTUP_ERROR = "startup_error"
"""``app.state`` attribute holding the error that stopped the lifespan's start-up, for the server to report."""


def create_app(
    settings: Settings, registrar: Registrar | None = None, extra_routes: Sequence[BaseRoute] = (),
    extensions: Sequence[Extension] = (), service: TransparencyService | None = None,
) -> Starlette:
    """Build the app. The service (log key, database, sequencer) is ``service``, which the caller opened and
    closes, or else one the lifespan opens and closes (not at import)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            running = service or TransparencyService(settings, registrar)
        except Exception as exc:
            setattr(app.state, STARTUP_ERROR, exc)
            raise
        app.state.service = running
        app.state.limiter = RateLimiter(settings.rate_per_second, settings.rate_burst)
        app.state.enrolment = EnrolmentCeremony(running, settings)
        try:
            async with AsyncExitStack() as stack:
                try:
                    for extension in extensions:
                        await stack.enter_async_context(extension(app, running))
                except Exception as exc:
                    setattr(app.state, STARTUP_ERROR, exc)
                    raise
                yield
        finally:
            app.state.enrolment.close()
            if service is None:
                running.close()

    app = Starlette(
        routes=[*ROUTES, *OPERATIONS, *extra_routes],
        exception_handlers={TabellionError: handle_tabellion_error, HTTPException: handle_http_exception,
                            Exception: handle_unexpected},
        middleware=[Middleware(BodyReadDeadline, timeout_s=settings.body_read_timeout_s)],
        lifespan=lifespan,
    )
    app.state.metrics = LogMetrics(app)
    return app
