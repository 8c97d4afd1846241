"""A real HTTP upstream for in-process gateway tests: an aiohttp server on 127.0.0.1 in the test's event loop, and a
resolver that sends every upstream host name to it, so the gateway's client (``gateway.upstream``) talks HTTP/1.1
over a real socket while the configured upstream URLs (``http://upstream.test/api``) stay as written.

The test's handler sees each request as an ``httpx.Request`` (URL rebuilt from the ``Host`` header and the path as
sent) and answers an ``httpx.Response``, whose raw body (still content-coded, if it says so) goes back as is.
``unreachable()`` is a resolver to a port nobody listens on.
"""

from __future__ import annotations

import inspect
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]
_FRAMING = frozenset({"content-length", "transfer-encoding"})


class FixedResolver(AbstractResolver):
    """Resolves every host name to 127.0.0.1 and ``port``."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[
        ResolveResult
    ]:
        return [{"hostname": host, "host": "127.0.0.1", "port": self.port, "family": socket.AF_INET, "proto": 0,
                 "flags": socket.AI_NUMERICHOST}]

    async def close(self) -> None:
        return None


def unreachable() -> FixedResolver:
    """A resolver to a local port that was free a moment ago (a connection to it is refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    return FixedResolver(port)


class UpstreamServer:
    """``async with UpstreamServer(handler) as upstream``: ``upstream.resolver`` for ``create_app(resolver=...)``
    (it may be handed out before the server starts: it is asked only when the gateway connects)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self._runner: web.ServerRunner | None = None
        self.resolver = FixedResolver(0)

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        body = await request.read()
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers]
        seen = httpx.Request(request.method, f"http://{request.host}{request.raw_path}", headers=headers,
                             content=body)
        answer: Any = self.handler(seen)
        if inspect.isawaitable(answer):
            answer = await answer
        assert isinstance(answer, httpx.Response)
        try:
            raw = answer.content  # made with content=: as given
        except httpx.ResponseNotRead:  # made with stream=: its raw bytes
            raw = b"".join([chunk async for chunk in answer.aiter_raw()])
        response = web.Response(status=answer.status_code, body=raw)
        for name, value in answer.headers.multi_items():
            if name.lower() not in _FRAMING:
                response.headers.add(name, value)
        return response

    async def __aenter__(self) -> UpstreamServer:
        self._runner = web.ServerRunner(web.Server(self._handle), handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.resolver.port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
