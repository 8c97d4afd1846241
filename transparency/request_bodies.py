"""Reading request bodies: under a size limit, within a time limit, and JSON under a nesting limit. Shared by the
log's routes and the issuer's (Starlette).

Time: ``BodyReadDeadline`` (ASGI middleware, installed by ``transparency.http.app.create_app``) bounds every read
of a request body, whoever reads it: each part must arrive within ``timeout_s`` of the previous one (the gap
between bytes), and the whole body by ``timeout_s + received / MIN_BODY_RATE`` seconds after the first read, so
a client trickling a byte a second is dropped too. Either answers ``RequestBodyTimeout`` (408). Hypercorn's own
``read_timeout`` (0.18) is not used: it bounds each socket read of the connection, also while a keep-alive
connection waits for its next request, and on expiry closes the socket without an answer.

JSON: ``read_json_object`` refuses a body nesting arrays and objects more than ``MAX_JSON_DEPTH`` deep by a scan
of its brackets (``check_json_depth``) before ``json.loads`` runs at all: its recursion would otherwise raise
``RecursionError`` (caught too, in case the scan and the parser ever disagree).
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, Final

from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schemas.errors import (
    JsonTooDeep,
    PayloadInvalid,
    PayloadTooLarge,
    RequestBodyIncomplete,
    RequestBodyTimeout,
    UnsupportedMediaType,
)
from transparency.request_params import MAX_DIGITS

MIN_BODY_RATE: Final = 1024
"""Bytes per second a body must average, beyond the first ``timeout_s`` (``BodyReadDeadline``)."""
MAX_JSON_DEPTH: Final = 32
JSON: Final = "application/json"

_JSON_STRING: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET: Final = re.compile(r"[^\[\]{}]+")


def require_content_type(request: Request, expected: str) -> None:
    """The body is ``expected``: one Content-Type field line (RFC 9110 §5.3: a singleton field; a second line,
    which an intermediary might read instead, is refused too) naming that media type."""
    lines = request.headers.getlist("content-type")
    if len(lines) > 1:
        raise UnsupportedMediaType(
            f"{request.method} {request.url.path} takes one Content-Type field line ({expected}), not {len(lines)}"
        )
    ctype = (lines[0] if lines else "").split(";")[0].strip().lower()
    if ctype != expected:
        raise UnsupportedMediaType(
            f"{request.method} {request.url.path} takes {expected}, not {ctype[:80] or 'no content type'!r}"
        )


async def read_limited_body(request: Request, limit: int) -> bytes:
    """Read at most ``limit`` bytes; a declared or actual larger body is refused before any parsing."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and (len(declared) > MAX_DIGITS or int(declared) > limit):
        raise PayloadTooLarge(f"the body is {declared[:30]} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"the body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect as exc:
        raise RequestBodyIncomplete(f"the client went away after {size} bytes of the body") from exc
    return b"".join(chunks)


def check_json_depth(text: str, limit: int = MAX_JSON_DEPTH) -> None:
    """Raise ``JsonTooDeep`` if ``text``, read as JSON, nests arrays and objects more than ``limit`` deep.

    Strings are dropped, then everything but brackets (two regular-expression passes); the brackets left are
    counted, stopping at the first one too deep. Text that is not JSON may pass: ``json.loads`` refuses it next
    (``parse_json_object``).
    """
    depth = 0
    for bracket in _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            if depth > limit:
                raise JsonTooDeep(f"the JSON body nests arrays and objects more than {limit} deep")
        else:
            depth -= 1


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259)")


def parse_json_object(body: bytes, what: str = "the body") -> dict[str, Any]:
    """``body`` as a JSON object: UTF-8 (RFC 8259 §8.1), at most ``MAX_JSON_DEPTH`` deep, no NaN or Infinity."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadInvalid(f"{what} is not UTF-8 JSON: {exc}") from exc
    check_json_depth(text)
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError as exc:
        raise JsonTooDeep(f"{what} nests arrays and objects too deep to read") from exc
    except ValueError as exc:  # JSONDecodeError; also an integer of more than 4300 digits
        raise PayloadInvalid(f"{what} is not JSON: {str(exc)[:200]}") from exc
    if not isinstance(value, dict):
        raise PayloadInvalid(f"{what} is not a JSON object")
    return value


async def read_json_object(request: Request, limit: int) -> dict[str, Any]:
    """The ``application/json`` body of ``request``, at most ``limit`` bytes, as a JSON object."""
    require_content_type(request, JSON)
    return parse_json_object(await read_limited_body(request, limit))


class BodyReadDeadline:
    """ASGI middleware: every read of an HTTP request body is bounded in time (see the module docstring)."""

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        timeout_s = self.timeout_s
        started: float | None = None
        received = 0
        complete = False

        async def bounded_receive() -> Message:
            nonlocal started, received, complete
            if complete:
                return await receive()  # after the body: only a disconnect comes, whenever it does
            now = loop.time()
            if started is None:
                started = now
            deadline = min(now + timeout_s, started + timeout_s + received / MIN_BODY_RATE)
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise RequestBodyTimeout(
                    f"{received} bytes of the body came in {loop.time() - started:.1f} s; a body must not stall "
                    f"for {timeout_s:g} s nor average under {MIN_BODY_RATE} bytes/s"
                ) from None
            received += len(message.get("body", b""))
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, bounded_receive, send)
