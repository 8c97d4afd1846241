"""The floor of the gateway's own stack, for the gateway benchmark: a minimal Starlette pass-through on Hypercorn
(one worker, the gateway's Hypercorn settings), streaming the upstream's answer back. No decision, no signature, no
record.

    .venv/bin/python -m tools.bench.minimal_proxy --port 8801 --upstream http://127.0.0.1:8800 \
        [--client httpx|httpcore|aiohttp] [--loop asyncio|uvloop]

The reference floor (issue 12's "minimal same-stack pass-through") is the default: httpx on asyncio's own loop. The
other upstream clients and uvloop measure what each would save the gateway (``tools.bench.gateway_compare
plumbing``): the same pass-through, one part swapped.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import aiohttp
import httpcore
import httpx
from hypercorn.asyncio import serve
from hypercorn.config import Config
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host", "content-length"}
CLIENTS = ("httpx", "httpcore", "aiohttp")
LOOPS = ("asyncio", "uvloop")

Forward = Callable[[Request], Awaitable[Response]]


def _httpx(upstream: str, client: httpx.AsyncClient) -> Forward:
    async def forward(request: Request) -> Response:
        headers = [(k, v) for k, v in request.headers.items() if k not in HOP_BY_HOP]
        sent = client.build_request(request.method, upstream + request.url.path, params=request.url.query,
                                    headers=headers, content=await request.body())
        answer = await client.send(sent, stream=True)
        return StreamingResponse(answer.aiter_raw(), answer.status_code,
                                 {k: v for k, v in answer.headers.items() if k not in HOP_BY_HOP},
                                 background=BackgroundTask(answer.aclose))

    return forward


def _httpcore(upstream: str, pool: httpcore.AsyncConnectionPool) -> Forward:
    async def forward(request: Request) -> Response:
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in request.headers.items()
                   if k not in HOP_BY_HOP]
        url = upstream + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        body = await request.body()
        headers.append((b"host", httpcore.URL(url).host))
        if body:
            headers.append((b"content-length", str(len(body)).encode()))
        answer = await pool.handle_async_request(httpcore.Request(request.method.encode(), url, headers=headers,
                                                                  content=body))
        stream = answer.stream
        assert isinstance(stream, AsyncIterable)
        return StreamingResponse(stream, answer.status,
                                 {k.decode("latin-1"): v.decode("latin-1") for k, v in answer.headers
                                  if k.decode("latin-1").lower() not in HOP_BY_HOP},
                                 background=BackgroundTask(answer.aclose))

    return forward


def _aiohttp(upstream: str, session: aiohttp.ClientSession) -> Forward:
    async def forward(request: Request) -> Response:
        headers = [(k, v) for k, v in request.headers.items() if k not in HOP_BY_HOP]
        url = upstream + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        answer = await session.request(request.method, url, headers=headers, data=await request.body() or None,
                                       allow_redirects=False, auto_decompress=False)
        return StreamingResponse(answer.content.iter_any(), answer.status,
                                 {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP},
                                 background=BackgroundTask(answer.release))

    return forward


def create_app(upstream: str, client: str = "httpx") -> Starlette:
    forwards: dict[str, Forward] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if client == "httpx":
                forwards["f"] = _httpx(upstream, await stack.enter_async_context(httpx.AsyncClient(trust_env=False)))
            elif client == "httpcore":
                forwards["f"] = _httpcore(upstream, await stack.enter_async_context(httpcore.AsyncConnectionPool()))
            else:
                session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100), trust_env=False)
                forwards["f"] = _aiohttp(upstream, await stack.enter_async_context(session))
            yield

    async def forward(request: Request) -> Response:
        return await forwards["f"](request)

    return Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "POST"])], lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--client", choices=CLIENTS, default="httpx")
    parser.add_argument("--loop", choices=LOOPS, default="asyncio")
    args = parser.parse_args()
    config = Config()
    config.bind = [f"127.0.0.1:{args.port}"]
    config.accesslog = None
    config.keep_alive_timeout = 30

    async def run() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await serve(create_app(args.upstream, args.client), config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]

    if args.loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(run())
    else:
        asyncio.run(run())


if __name__ == "__main__":
    main()
