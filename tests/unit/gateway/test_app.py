"""The gateway app in process (ASGI transport, a real upstream on 127.0.0.1, a fixed log state): routes, problems."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from gateway.app import create_app
from gateway.config import GatewayConfig, load_config
from gateway.secrets import Secret
from gateway.signatures import Request
from issuer.statements import revocation
from schemas.errors import LogStale, LogUntrusted, TabellionError
from tests.gateway_world import GATEWAY, FixedLog, Sink, World, build_world
from tests.problems import problem
from tests.unit.gateway.config_files import write_config
from tests.unit.gateway.mail_connection import CONNECTIONS, TOKEN, Upstream
from tests.upstream_server import UpstreamServer, unreachable


class Harness:
    def __init__(self, world: World, config: GatewayConfig) -> None:
        self.world = world
        self.config = config
        self.upstream = Upstream()
        self.log = FixedLog(world.state())
        self.sink = Sink()

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[httpx.AsyncClient]:
        async with UpstreamServer(self.upstream) as upstream:
            app = create_app(self.config, {"MAIL_TOKEN": Secret(TOKEN)}, followed_log=self.log, sink=self.sink,
                             resolver=unreachable() if self.upstream.unreachable else upstream.resolver)
            async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=GATEWAY
            ) as client:
                yield client

    def run(self, scenario: Callable[[httpx.AsyncClient], Awaitable[None]]) -> None:
        async def go() -> None:
            async with self.serving() as client:
                await scenario(client)

        asyncio.run(go())


async def send(client: httpx.AsyncClient, request: Request) -> httpx.Response:
    return await client.request(request.method, request.target_uri, headers=list(request.headers),
                                content=request.body)


@pytest.fixture(scope="module")
def world() -> World:
    return build_world()


@pytest.fixture
def harness(world: World, tmp_path: Path) -> Harness:
    path = write_config(tmp_path, f'public_url = "{GATEWAY}"\nmax_body_bytes = 1000\n', connections=CONNECTIONS)
    return Harness(world, load_config(path))


def test_an_allowed_request_reaches_the_upstream_with_credentials_and_without_signatures(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    world = harness.world

    async def scenario(client: httpx.AsyncClient) -> None:
        answer = await send(client, world.request("/proxy/mail-api/inbox/1?x=1"))
        assert answer.status_code == 200 and answer.content == b"hello from upstream"
        assert answer.headers["x-upstream"] == "yes"
        (seen,) = harness.upstream.seen
        assert str(seen.url) == "http://upstream.test/api/inbox/1?x=1"
        assert seen.headers["authorization"] == f"Bearer {TOKEN}"
        assert not [n for n in seen.headers if n.startswith(("tabellion-", "signature"))]
        assert harness.sink.decisions[-1].outcome == "allow"
        posted = await send(client, world.request("/proxy/mail-api/inbox/2", "POST", b'{"draft": 1}'))
        assert posted.status_code == 200 and harness.upstream.seen[-1].content == b'{"draft": 1}'
        assert harness.upstream.seen[-1].headers["content-digest"].startswith("sha-256=")

    with caplog.at_level(logging.INFO):
        harness.run(scenario)
    assert any(r.name == "gateway.decisions" for r in caplog.records)
    assert all(TOKEN not in r.getMessage() for r in caplog.records)


def test_refusals_are_problem_details_and_nothing_goes_upstream(harness: Harness) -> None:
    world = harness.world

    async def scenario(client: httpx.AsyncClient) -> None:
        body = problem(await send(client, world.request("/proxy/mail-api/outbox/1")), 403, "scope-refused")
        assert body["reason_code"] == "resource_out_of_scope"
        problem(await send(client, world.request("/proxy/nope/inbox/1")), 404, "connection-unknown")
        problem(await send(client, world.request("/proxy/mail-api/inbox/%2e%2e/x")), 400, "resource-invalid")
        problem(await send(client, world.request("/proxy/mail-api/inbox/1", "POST", b"x" * 1001)), 413,
                "payload-too-large")
        problem(await client.get("/proxy/mail-api/inbox/1"), 401, "request-signature-missing")
        replayed = world.request()
        assert (await send(client, replayed)).status_code == 200
        problem(await send(client, replayed), 401, "replay-detected")
        assert len(harness.upstream.seen) == 1

    harness.run(scenario)


def test_revocation_in_the_state_refuses_at_once(harness: Harness) -> None:
    world = harness.world

    async def scenario(client: httpx.AsyncClient) -> None:
        assert (await send(client, world.request())).status_code == 200
        harness.log.state = world.state(revocation(world.operator, world.c.identity, "keyCompromise"))
        body = problem(await send(client, world.request()), 403, "passport-refused")
        assert body["reason_code"] == "revoked"

    harness.run(scenario)


@pytest.mark.parametrize(("refusal", "code"), [(LogUntrusted("split view"), "log-untrusted"),
                                                (LogStale("61 s"), "log-stale")])
def test_an_untrusted_or_stale_log_refuses_every_request_and_health(
    harness: Harness, refusal: TabellionError, code: str
) -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        health = await client.get("/healthz")
        assert health.status_code == 200 and health.json()["log"]["size"] == len(harness.world.statements)
        harness.log.refusal = refusal
        answer = await send(client, harness.world.request())
        problem(answer, 503, code)
        assert answer.headers["retry-after"] == "1"
        problem(await client.get("/healthz"), 503, code)
        assert harness.upstream.seen == []

    harness.run(scenario)


def test_an_unreachable_upstream_is_a_502(harness: Harness) -> None:
    harness.upstream.unreachable = True

    async def scenario(client: httpx.AsyncClient) -> None:
        body = problem(await send(client, harness.world.request()), 502, "upstream-unreachable")
        assert TOKEN not in json.dumps(body)
        assert harness.sink.decisions[-1].outcome == "allow"  # decided, then the upstream failed

    harness.run(scenario)
