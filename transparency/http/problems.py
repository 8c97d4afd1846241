"""The log service's configuration of the one problem-details mapper (``transparency.problem_details``): the
SCRAPI endpoints answer RFC 9290 concise problem details (CBOR), every other endpoint RFC 9457 problem+json."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from schemas.errors import BadInput, MethodNotAllowed, NotFound, TabellionError
from transparency.problem_details import ProblemHandlers

SCRAPI_PREFIXES = ("/entries", "/.well-known/scitt-keys")

PROBLEMS = ProblemHandlers("the server failed unexpectedly; nothing was written", SCRAPI_PREFIXES)
handle_tabellion_error = PROBLEMS.tabellion
handle_unexpected = PROBLEMS.unexpected


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
    return PROBLEMS.respond(request, error)
