"""What every console route needs: the ``Console`` (configuration, the issuer client, the namespace key, ceremony
state, metrics), the signed-in approver, CSRF checks and JSON bodies."""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import CollectorRegistry, Counter, Gauge
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from console.ceremonies import Ceremonies, Invitations
from console.config import ConsoleConfig
from console.live import LiveLog
from issuer.client import IssuerClient
from issuer.statements import Signer
from schemas.errors import InvalidParameter, PayloadInvalid, TabellionError
from verifier.keys import KeySet

MAX_JSON_BYTES: Final = 64 * 1024
T = TypeVar("T")


class SignInRequired(TabellionError):
    code = "sign-in-required"
    title = "Sign in with your passkey first"


class CsrfRefused(TabellionError):
    code = "csrf-refused"
    title = "The request did not come from this console's own page"


class ConsoleMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.ceremonies = Counter("tabellion_console_ceremonies_total",
                                  "Passkey ceremonies finished, by kind (enrolment, sign-in, approval, rejection, "
                                  "revocation, agent-revocation), outcome and code.",
                                  ["kind", "outcome", "code"], registry=self.registry)
        self.streams = Gauge("tabellion_console_event_streams", "Open server-sent event streams.",
                             registry=self.registry)
        self.log_size = Gauge("tabellion_console_log_size", "The log's tree size the console last saw.",
                              registry=self.registry)


@dataclass
class Console:
    config: ConsoleConfig
    issuer: IssuerClient
    owner: Signer
    keys: KeySet
    ceremonies: Ceremonies
    invitations: Invitations
    live: LiveLog
    metrics: ConsoleMetrics

    async def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``function`` (an issuer call: blocking HTTP) in the thread pool."""
        return await run_in_threadpool(function, *args, **kwargs)


def console(request: Request) -> Console:
    value: Console = request.app.state.console
    return value


def csrf_token(request: Request) -> str:
    """This session's CSRF token (made on first use); pages put it in a meta tag and every form."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


def check_csrf(request: Request, sent: object) -> None:
    """A state-changing request must carry this session's token and, when the browser names one, our origin."""
    origin = request.headers.get("origin")
    if origin is not None and origin != console(request).config.origin:
        raise CsrfRefused(f"the request comes from {origin[:100]!r}, not from this console")
    expected = request.session.get("csrf")
    if not isinstance(expected, str) or not isinstance(sent, str) or not secrets.compare_digest(expected, sent):
        raise CsrfRefused("the request carries no valid CSRF token of this session; reload the page")


def signed_in(request: Request) -> str:
    """The signed-in approver's DID."""
    approver = request.session.get("approver")
    if not isinstance(approver, str):
        raise SignInRequired("this page is for signed-in approvers")
    return approver


async def json_body(request: Request) -> dict[str, Any]:
    """A same-origin JSON request: ``application/json``, this session's CSRF token in ``X-CSRF-Token``."""
    check_csrf(request, request.headers.get("x-csrf-token"))
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise InvalidParameter("send application/json")
    body = await request.body()
    if len(body) > MAX_JSON_BYTES:
        raise InvalidParameter(f"the body is larger than {MAX_JSON_BYTES} bytes")
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadInvalid(f"the body is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise PayloadInvalid("the body is not a JSON object")
    return value


def text_field(body: dict[str, Any], name: str, *, required: bool = True, limit: int = 1024) -> str:
    value = body.get(name, "")
    if not isinstance(value, str) or len(value) > limit or (required and not value):
        raise InvalidParameter(f"{name} must be a {'non-empty ' if required else ''}string of at most {limit} "
                               "characters")
    return value


Handler = Callable[[Request], Awaitable[Any]]


def key_owner(key: Ed25519PrivateKey, operator: str | None) -> Signer:
    return Signer(key, operator or "")
