"""The floor of the gateway's own stack, for the gateway benchmark: a minimal Starlette + httpx pass-through on
Hypercorn (one worker, the gateway's Hypercorn settings), streaming the upstream's answer back. No decision, no
signature, no record.

    .venv/bin/python -m tools.bench.minimal_proxy --port 8801 --upstream http://127.0.0.1:8800
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from hypercorn.asyncio import serve
from hypercorn.config import Config
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host", "content-length"}


def create_app(upstream: str) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient(trust_env=False) as client:
            app.state.client = client
            yield

    async def forward(request: Request) -> Response:
        client: httpx.AsyncClient = request.app.state.client
        headers = [(k, v) for k, v in request.headers.items() if k not in HOP_BY_HOP]
        sent = client.build_request(request.method, upstream + request.url.path, params=request.url.query,
                                    headers=headers, content=await request.body())
        answer = await client.send(sent, stream=True)
        return StreamingResponse(answer.aiter_raw(), answer.status_code,
                                 {k: v for k, v in answer.headers.items() if k not in HOP_BY_HOP},
                                 background=BackgroundTask(answer.aclose))

    return Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "POST"])], lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    config = Config()
    config.bind = [f"127.0.0.1:{args.port}"]
    config.accesslog = None
    config.keep_alive_timeout = 30

    async def run() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await serve(create_app(args.upstream), config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]

    asyncio.run(run())


if __name__ == "__main__":
    main()
