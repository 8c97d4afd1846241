"""The console's Starlette application (``create_app(config)``): pages, the passkey and decision APIs, live events,
and the operations endpoints.

    GET  /healthz     200: the process answers
    GET  /readyz      200 once the issuer answers with a checkpoint of the log; else 503 ``console-not-ready``
    GET  /metrics     Prometheus exposition (``console.state.ConsoleMetrics``)
    GET  /events      server-sent events: the log's tree size at each growth (signed-in only)

Sessions are Starlette's signed cookie (itsdangerous; HttpOnly, SameSite=Strict, Secure on https origins),
holding the signed-in approver and the CSRF token. Pages send a Content-Security-Policy that allows same-origin
scripts only. Refusals of the JSON APIs are problem+json with a stable code; of pages, a page.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from console import agents, auth, decisions
from console.ceremonies import Ceremonies, Invitations, session_secret
from console.config import ConsoleConfig
from console.live import LiveLog
from console.pages import pages
from console.state import Console, ConsoleMetrics, SignInRequired, console, key_owner, signed_in
from issuer.client import IssuerClient
from schemas.errors import TabellionError
from transparency.client import load_ed25519_key
from transparency.problem_details import problem_response
from verifier.keys import parse_key_set
from webui.pages import Endpoint, assets

log = logging.getLogger(__name__)
SESSION_COOKIE = "tabellion_console"


class ConsoleNotReady(TabellionError):
    code = "console-not-ready"
    title = "The console cannot reach the issuer"


def page(endpoint: Endpoint) -> Endpoint:
    """A page: not signed in -> the sign-in page; any other refusal -> an error page."""
    guarded = pages.guarded(endpoint)

    async def answer(request: Request) -> Response:
        try:
            return await guarded(request)
        except SignInRequired:
            return RedirectResponse("/signin", 303)

    return answer


async def home(request: Request) -> Response:
    return RedirectResponse("/approvals" if request.session.get("approver") else "/signin", 303)


async def events(request: Request) -> Response:
    signed_in(request)
    c = console(request)

    async def stream() -> AsyncIterator[str]:
        c.metrics.streams.inc()
        try:
            async for event in c.live.events():
                yield event
        finally:
            c.metrics.streams.dec()

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})


async def readyz(request: Request) -> Response:
    c = console(request)
    try:
        text = await c.call(c.issuer.checkpoint)
    except TabellionError as exc:
        raise ConsoleNotReady(f"the issuer at {c.config.issuer} does not answer: {exc.detail}") from exc
    return JSONResponse({"status": "ready", "log": text.split("\n")[0], "namespace": c.config.namespace},
                        headers={"Cache-Control": "no-store"})


async def metrics(request: Request) -> Response:
    c = console(request)
    c.metrics.log_size.set(c.live.size)
    return Response(generate_latest(c.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def problem(request: Request, exc: Exception) -> Response:
    error = exc if isinstance(exc, TabellionError) else TabellionError("the console failed; nothing was signed")
    if not isinstance(exc, TabellionError):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
    return problem_response(error, request.url.path)  # the services' one mapper (transparency.problem_details)


def create_app(config: ConsoleConfig, *, issuer: IssuerClient | None = None) -> Starlette:
    """The console; the namespace key and the session secret are read here (a bad one stops the start in one
    line), the issuer is reached in the lifespan."""
    key = load_ed25519_key(config.namespace_key, "namespace key")
    secret = session_secret(config.data_dir)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        client = issuer or IssuerClient(config.issuer)
        keys = parse_key_set(client.key_set())  # the log's receipt keys, as the issuer serves them
        live = LiveLog(client.checkpoint)
        app.state.console = Console(config, client, key_owner(key, config.operator), keys, Ceremonies(),
                                    Invitations(secret, config.data_dir), live, ConsoleMetrics())
        live.start()
        try:
            yield
        finally:
            live.stop()
            if issuer is None:
                client.close()

    routes = [
        Route("/", home, methods=["GET"]),
        Route("/signin", page(auth.signin_page), methods=["GET"]),
        Route("/signin/options", auth.signin_start, methods=["POST"]),
        Route("/signin/verify", auth.signin_finish, methods=["POST"]),
        Route("/signout", auth.signout, methods=["POST"]),
        Route("/enrol", page(auth.enrol_page), methods=["GET"]),
        Route("/enrol/options", auth.enrol_options, methods=["POST"]),
        Route("/enrol/register", auth.enrol_register, methods=["POST"]),
        Route("/enrol/consent", auth.enrol_consent, methods=["POST"]),
        Route("/approvals", page(decisions.approvals), methods=["GET"]),
        Route("/approvals/queue", page(decisions.queue), methods=["GET"]),
        Route("/decisions/options", decisions.decision_options, methods=["POST"]),
        Route("/decisions", decisions.decide, methods=["POST"]),
        Route("/agents", page(agents.agents), methods=["GET"]),
        Route("/agents/revoke/options", agents.revoke_options, methods=["POST"]),
        Route("/agents/revoke", agents.revoke, methods=["POST"]),
        Route("/agents/{did:path}", page(agents.agent), methods=["GET"]),
        Route("/tokens", page(agents.tokens), methods=["GET", "POST"]),
        Route("/events", events, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        assets("console"),
    ]
    middleware = [Middleware(SessionMiddleware, secret_key=secret.hex(), session_cookie=SESSION_COOKIE,
                             max_age=config.session_max_age, same_site="strict", https_only=config.secure_cookies)]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan,
                     exception_handlers={TabellionError: problem, Exception: problem})
