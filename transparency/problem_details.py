"""The one place where errors become HTTP answers, for every service: the log (with the issuer) and the gateway.

An error's HTTP status is decided here and nowhere else (``problem_status``): the error classes carry none. The
services, the gateway's decision records, its MCP relay, the witness and the console all ask this module. The
status is looked up by stable code in ``STATUS_BY_CODE``, walking the error's class and then its bases in method
resolution order, so an error takes its own code's status or else its family's (``BadInput``: 400); an error no
entry covers is a 500. An error that relays another service's answer (``LogRequestRefused``) answers with that
answer's status (``answer_status``). The answer is RFC 9457 ``application/problem+json`` —
``type`` (``urn:tabellion:error:<code>``), ``title``, ``status``, ``detail``, ``instance`` and the extension
members an error carries (``reason_code``: the authority's stable reason; ``policy_id`` and ``policy_version``:
the gateway policy that denied) — or, on the paths a service names as SCRAPI's (``concise_prefixes``), RFC 9290
concise problem details in CBOR, the stable code as a custom entry keyed by the type URI (RFC 9290 §3: custom
entries are keyed by a URI). ``Retry-After`` goes with a 429 (the error's ``retry_after``) and a 503 (1 s).

A broad exception is caught only at this edge (``ProblemHandlers.unexpected``): logged with its traceback,
answered as a 500 problem that says nothing was changed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from schemas import cbor, media_types
from schemas.errors import LogRequestRefused, TabellionError

log = logging.getLogger(__name__)

# RFC 9290 standard problem detail keys
TITLE, DETAIL, INSTANCE, RESPONSE_CODE = -1, -2, -3, -4
EXTENSION_MEMBERS: Final = ("reason_code", "policy_id", "policy_version")  # RFC 9457 §3.2, when the error has them
UNAVAILABLE: Final = 503
UNAVAILABLE_RETRY_S: Final = "1"

Handler = Callable[[Request, Exception], Coroutine[Any, Any, Response]]


STATUS_BY_CODE: Final[Mapping[str, int]] = {
    # families of schemas.errors, and the codes in them whose status differs from their family's
    "internal-error": 500,  # TabellionError: anything not covered below
    "bad-input": 400,
    "unsupported-media-type": 415,
    "payload-too-large": 413,
    "request-body-timeout": 408,
    "verification-failed": 400,
    "request-signature-refused": 401,
    "signature-input-malformed": 400,
    "signature-input-invalid": 400,
    "signature-base-invalid": 400,
    "webhook-refused": 401,
    "webhook-delivery-malformed": 400,
    "token-invalid": 401,
    "token-scope-refused": 403,
    "token-request-refused": 401,
    "webauthn-assertion-invalid": 403,
    "policy-refused": 403,
    "did-web-unreachable": 502,
    "not-found": 404,
    "method-not-allowed": 405,  # also the witness's own MethodNotAllowed
    "mcp-http-method-not-allowed": 405,
    "too-many-requests": 429,
    "webhook-event-conflict": 409,
    "storage-error": 500,
    "configuration-error": 500,
    "log-request-refused": 502,  # when it carries no answer_status
    "log-unreachable": 502,
    "registration-pending": 503,
    "gateway-unavailable": 503,
    "upstream-unreachable": 502,
    "upstream-timeout": 504,
    # the transparency layer's own errors
    "log-not-ready": 503,
    "tpm-unavailable": 503,
    "witness-unreachable": 502,
    "witness-request-refused": 502,
    # the witness (witness.errors), the monitor (monitor.evidence), the console (console.state, .ceremonies, .app)
    "witness-checkpoint-untrusted": 403,
    "witness-old-size-conflict": 409,
    "witness-checkpoint-inconsistent": 422,
    "monitor-webhook-failed": 502,
    "sign-in-required": 401,
    "csrf-refused": 403,
    "ceremony-expired": 409,
    "invitation-invalid": 403,
    "console-not-ready": 503,
}
"""HTTP status by stable code: an error's own code, or the nearest of its bases' (see the module docstring)."""


_BY_CLASS: dict[type, int] = {}  # the lookup's answer per class, kept (classes do not change)


def status_of_class(cls: type[TabellionError]) -> int:
    """The HTTP status of the errors of class ``cls`` (see the module docstring)."""
    status = _BY_CLASS.get(cls)
    if status is None:
        codes = (klass.__dict__.get("code") for klass in cls.__mro__)
        status = next((STATUS_BY_CODE[c] for c in codes if isinstance(c, str) and c in STATUS_BY_CODE),
                      STATUS_BY_CODE["internal-error"])
        _BY_CLASS[cls] = status
    return status


def problem_status(error: TabellionError) -> int:
    """The HTTP status of ``error``, decided here only (see the module docstring)."""
    if isinstance(error, LogRequestRefused):
        return error.answer_status
    return status_of_class(type(error))


def problem_headers(error: TabellionError) -> dict[str, str]:
    allow = getattr(error, "allow", None)  # a 405 names the methods the path takes (RFC 9110 §15.5.6)
    if isinstance(allow, str) and allow:
        return {"Allow": allow}
    retry_after = getattr(error, "retry_after", None)
    if isinstance(retry_after, int) and not isinstance(retry_after, bool):
        return {"Retry-After": str(max(1, retry_after))}
    if problem_status(error) == UNAVAILABLE:
        return {"Retry-After": UNAVAILABLE_RETRY_S}
    return {}


def problem_document(error: TabellionError, instance: str) -> dict[str, object]:
    """The RFC 9457 problem details of ``error`` for the request at ``instance``."""
    problem: dict[str, object] = {"type": error.type_uri, "title": error.title, "status": problem_status(error),
                                  "detail": error.detail, "instance": instance}
    for member in EXTENSION_MEMBERS:
        value = getattr(error, member, None)
        if isinstance(value, str):
            problem[member] = value
    return problem


def concise_problem(error: TabellionError) -> bytes:
    """RFC 9290 concise problem details (CBOR)."""
    return cbor.encode({TITLE: error.title, DETAIL: error.detail, RESPONSE_CODE: problem_status(error),
                        error.type_uri: {"code": error.code}})


def problem_response(error: TabellionError, instance: str, *, concise: bool = False,
                     headers: Mapping[str, str] | None = None) -> Response:
    all_headers = problem_headers(error) | dict(headers or {})
    if concise:
        return Response(concise_problem(error), problem_status(error), all_headers, media_types.CONCISE_PROBLEM)
    return Response(json.dumps(problem_document(error, instance)), problem_status(error), all_headers,
                    media_types.PROBLEM_JSON)


@dataclass(frozen=True)
class ProblemHandlers:
    """Starlette exception handlers: ``TabellionError`` and any other exception become problem answers.

    ``concise_prefixes``: paths answered in RFC 9290 CBOR (the log's SCRAPI endpoints); ``unexpected``: the
    detail of a 500 for an error nobody raised on purpose (what the service did not do)."""

    unexpected_detail: str = "the server failed unexpectedly; nothing was changed"
    concise_prefixes: tuple[str, ...] = ()

    def respond(self, request: Request, error: TabellionError) -> Response:
        path = request.url.path
        return problem_response(error, path, concise=bool(self.concise_prefixes) and path.startswith(
            self.concise_prefixes))

    async def tabellion(self, request: Request, exc: Exception) -> Response:
        if not isinstance(exc, TabellionError):
            return await self.unexpected(request, exc)
        status = problem_status(exc)
        if status >= 500 and status != UNAVAILABLE:  # a 503 says the service cannot decide now: not a failure
            log.error("%s %s failed: %s", request.method, request.url.path, exc)
        return self.respond(request, exc)

    async def unexpected(self, request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return self.respond(request, TabellionError(self.unexpected_detail))

    def handlers(self) -> dict[Any, Handler]:
        return {TabellionError: self.tabellion, Exception: self.unexpected}
