"""The one place where errors become HTTP answers.

SCRAPI endpoints answer RFC 9290 concise problem details (CBOR); every other endpoint answers RFC 9457
problem+json. The stable error code travels as the JSON ``type`` URI, and in CBOR as a custom problem
detail entry keyed by the same URI (RFC 9290 §3: custom entries are keyed by a URI).
"""

from __future__ import annotations

import json
import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from schemas import cbor, media_types
from schemas.errors import BadInput, MethodNotAllowed, NotFound, Overloaded, TabellionError

log = logging.getLogger(__name__)

SCRAPI_PREFIXES = ("/entries", "/.well-known/scitt-keys")

# RFC 9290 standard problem detail keys
TITLE, DETAIL, INSTANCE, RESPONSE_CODE = -1, -2, -3, -4


def problem_response(request: Request, error: TabellionError) -> Response:
    headers = {}
    if isinstance(error, Overloaded):
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, MethodNotAllowed) and error.allow:
        headers["Allow"] = error.allow
    if request.url.path.startswith(SCRAPI_PREFIXES):
        body = cbor.encode({
            TITLE: error.title, DETAIL: error.detail, RESPONSE_CODE: error.status,
            error.type_uri: {"code": error.code},
        })
        return Response(body, error.status, headers, media_types.CONCISE_PROBLEM)
    problem = {"type": error.type_uri, "title": error.title, "status": error.status, "detail": error.detail,
               "instance": request.url.path}
    reason_code = getattr(error, "reason_code", None)  # RFC 9457 §3.2 extension member: the stable reason
    if isinstance(reason_code, str):
        problem["reason_code"] = reason_code
    text = json.dumps(problem)
    return Response(text, error.status, headers, media_types.PROBLEM_JSON)


async def handle_tabellion_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TabellionError)
    if exc.status >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc)
    return problem_response(request, exc)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no route for the path, not the method the route takes) as problems too."""
    assert isinstance(exc, HTTPException)
    path = request.url.path[:200]
    error: TabellionError
    if exc.status_code == 404:
        error = NotFound(f"no resource at {path}")
    elif exc.status_code == 405:
        error = MethodNotAllowed(f"{request.method[:20]} is not a method {path} takes",
                                 (exc.headers or {}).get("Allow", ""))
    elif exc.status_code < 500:
        error = BadInput(f"{exc.status_code}: {exc.detail}"[:300])
    else:
        return await handle_unexpected(request, exc)
    return problem_response(request, error)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return problem_response(request, TabellionError("the server failed unexpectedly; nothing was written"))
