"""Rate limits per connection and agent: token buckets (an injected clock, no sleeps), the 429 with Retry-After,
and where the gatekeeper takes the token (after the signature and identity, before the authority)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.app import create_app
from gateway.config import Connection, RateConfig, load_config
from gateway.decisions import Gatekeeper, resource_of, split_proxy_path
from gateway.ratelimit import RateLimiter
from gateway.replay import NonceStore
from gateway.secrets import Secret
from gateway.signatures import Request
from schemas.errors import (
    AgentIdentityMismatch,
    GatewayConfigInvalid,
    RateLimited,
    ReplayDetected,
    RequestSignatureInvalid,
    ScopeRefused,
)
from tests.clock import Clock
from tests.gateway_world import CONNECTION, GATEWAY, FixedLog, Sink, World, build_world
from tests.problems import problem
from tests.unit.gateway.config_files import write_config
from tests.unit.gateway.mail_connection import CONNECTIONS, TOKEN, Upstream
from tests.upstream_server import UpstreamServer
from transparency.problem_details import problem_status


def limiter(per_second: float = 2.0, burst: int = 3, connections: tuple[str, ...] = ("mail",)) -> tuple[
    RateLimiter, Clock
]:
    clock = Clock()
    return RateLimiter({c: RateConfig(per_second, burst) for c in connections}, clock=clock), clock


def spend(limits: RateLimiter, connection: str, agent: str, n: int) -> None:
    for _ in range(n):
        limits.take(connection, agent)


# --- the buckets ------------------------------------------------------------------------------------------


def test_a_burst_then_429_with_retry_after() -> None:
    limits, _ = limiter(per_second=0.25, burst=3)
    spend(limits, "mail", "did:key:a", 3)
    with pytest.raises(RateLimited) as caught:
        limits.take("mail", "did:key:a")
    assert problem_status(caught.value) == 429 and caught.value.code == "rate-limited"
    assert caught.value.retry_after == 4  # one token at 0.25/s: 4 s
    assert "did:key:a" in caught.value.detail and "'mail'" in caught.value.detail


def test_tokens_refill_over_time_up_to_the_burst() -> None:
    limits, clock = limiter(per_second=2.0, burst=3)
    spend(limits, "mail", "a", 3)
    clock.now += 0.25  # half a token
    with pytest.raises(RateLimited) as caught:
        limits.take("mail", "a")
    assert caught.value.retry_after == 1  # never 0: at least a second
    clock.now += 0.25
    limits.take("mail", "a")
    clock.now += 3600  # an idle hour refills to the burst, not beyond
    assert limits.tokens("mail", "a") == 3.0
    spend(limits, "mail", "a", 3)
    with pytest.raises(RateLimited):
        limits.take("mail", "a")


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    limits, clock = limiter(per_second=0.4, burst=1)
    limits.take("mail", "a")
    clock.now += 0.1  # 0.04 of a token: 2.4 s more
    with pytest.raises(RateLimited) as caught:
        limits.take("mail", "a")
    assert caught.value.retry_after == 3 and isinstance(caught.value.retry_after, int)


def test_buckets_are_per_agent_and_per_connection() -> None:
    limits, _ = limiter(burst=2, connections=("mail", "crm"))
    spend(limits, "mail", "a", 2)
    with pytest.raises(RateLimited):
        limits.take("mail", "a")
    spend(limits, "mail", "b", 2)  # another agent, same connection: its own bucket
    spend(limits, "crm", "a", 2)  # the same agent, another connection: its own bucket
    for _ in range(100):
        limits.take("files", "a")  # a connection without a rate is not limited
    assert limits.tokens("files", "a") == float("inf")


def test_a_refund_gives_back_one_token_never_above_the_burst() -> None:
    limits, _ = limiter(burst=2)
    spend(limits, "mail", "a", 2)
    limits.refund("mail", "a")
    limits.take("mail", "a")
    limits.refund("mail", "b")  # no bucket yet: nothing to give back
    limits.refund("mail", "b")
    assert limits.tokens("mail", "b") == 2.0


def test_full_buckets_are_forgotten_when_there_are_too_many() -> None:
    clock = Clock()
    limits = RateLimiter({"mail": RateConfig(1.0, 2)}, clock=clock, max_buckets=3)
    for agent in ("a", "b", "c"):
        limits.take("mail", agent)
    assert limits.bucket_count() == 3
    clock.now += 1.0  # all three refilled
    limits.take("mail", "d")
    assert limits.bucket_count() == 1
    with pytest.raises(RateLimited):  # a forgotten bucket does not give more than a new one would
        spend(limits, "mail", "a", 3)


# --- configuration ----------------------------------------------------------------------------------------


def test_the_rate_table_of_a_connection(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, connections=CONNECTIONS + "rate = { per_second = 0.5, burst = 4 }\n"))
    assert config.connection("mail-api").rate == RateConfig(0.5, 4)
    config = load_config(write_config(tmp_path, connections=CONNECTIONS + "rate = { per_second = 2.5 }\n"))
    assert config.connection("mail-api").rate == RateConfig(2.5, 3)  # burst: per_second rounded up
    assert load_config(write_config(tmp_path, connections=CONNECTIONS)).connection("mail-api").rate is None


@pytest.mark.parametrize(("rate", "expected"), [
    ("rate = 5", r"connections\[0\].rate: must be an inline table"),
    ("rate = { burst = 5 }", r"connections\[0\].rate.per_second: is required"),
    ("rate = { per_second = 0 }", r"connections\[0\].rate.per_second: must be a number above 0"),
    ("rate = { per_second = 1, burst = 0 }", r"connections\[0\].rate.burst: must be an integer from 1"),
    ("rate = { per_second = 1, window = 5 }", r"connections\[0\].rate.window: unknown key"),
])
def test_rate_configuration_mistakes(tmp_path: Path, rate: str, expected: str) -> None:
    with pytest.raises(GatewayConfigInvalid, match=expected):
        load_config(write_config(tmp_path, connections=CONNECTIONS + rate + "\n"))


# --- in the gatekeeper ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world() -> World:
    return build_world()


def limited_gatekeeper(world: World, nonces: NonceStore, burst: int = 2) -> tuple[Gatekeeper, Connection, Sink]:
    connection = replace(CONNECTION, rate=RateConfig(1.0, burst))
    sink = Sink()
    limits = RateLimiter.for_connections([connection], clock=Clock())
    return Gatekeeper(FixedLog(world.state()), nonces, sink=sink, limiter=limits), connection, sink


def decide(keeper: Gatekeeper, connection: Connection, request: Request) -> None:
    _, rest = split_proxy_path(request.target_uri.removeprefix(GATEWAY).partition("?")[0])
    keeper.decide(connection, request, resource_of(rest))


def test_only_authenticated_requests_spend_tokens(world: World, tmp_path: Path) -> None:
    with NonceStore(tmp_path / "n.sqlite") as nonces:
        keeper, connection, sink = limited_gatekeeper(world, nonces)
        for _ in range(5):  # forged signatures and lying identity headers cost the agent nothing
            with pytest.raises(RequestSignatureInvalid):
                decide(keeper, connection, world.request(key=Ed25519PrivateKey.generate()))
            with pytest.raises(AgentIdentityMismatch):
                decide(keeper, connection, world.request(headers=world.headers({"Tabellion-Namespace": "x"})))
        decide(keeper, connection, world.request())
        with pytest.raises(ScopeRefused):  # authenticated, then refused by the log: the token is spent
            decide(keeper, connection, world.request("/proxy/mail-api/outbox/1"))
        with pytest.raises(RateLimited):
            decide(keeper, connection, world.request())
        refused = sink.decisions[-1]
        assert (refused.code, refused.status, refused.agent) == ("rate-limited", 429, world.c.identity)
        assert refused.chain == ()  # refused before the authority's work


def test_a_replay_is_named_a_replay_and_costs_no_token(world: World, tmp_path: Path) -> None:
    with NonceStore(tmp_path / "n.sqlite") as nonces:
        keeper, connection, _ = limited_gatekeeper(world, nonces, burst=2)
        first = world.request()
        decide(keeper, connection, first)
        for _ in range(3):
            with pytest.raises(ReplayDetected):
                decide(keeper, connection, first)
        decide(keeper, connection, world.request())  # the second token is still there
        with pytest.raises(RateLimited):
            decide(keeper, connection, world.request())
        with pytest.raises(ReplayDetected):  # over the rate and a replay: a replay
            decide(keeper, connection, first)


def test_the_app_answers_429_with_retry_after(world: World, tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, f'public_url = "{GATEWAY}"\n',
                                      connections=CONNECTIONS + "rate = { per_second = 0.1, burst = 2 }\n"))
    upstream = Upstream()
    server = UpstreamServer(upstream)
    app = create_app(config, {"MAIL_TOKEN": Secret(TOKEN)}, followed_log=FixedLog(world.state()),
                     resolver=server.resolver)

    async def scenario() -> None:
        async with server, app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=GATEWAY
        ) as client:
            for _ in range(2):
                request = world.request()
                assert (await client.get(request.target_uri, headers=list(request.headers))).status_code == 200
            request = world.request()
            answer = await client.get(request.target_uri, headers=list(request.headers))
            problem(answer, 429, "rate-limited")
            assert 1 <= int(answer.headers["retry-after"]) <= 10
            assert len(upstream.seen) == 2

    asyncio.run(scenario())
