"""The token-request replay cache: capacity per agent, a bound on agents, only expired entries forgotten."""

from __future__ import annotations

import pytest

from issuer.tokens import NonceCache
from schemas.errors import Overloaded, TokenRequestReplayed, TokenRequestsExhausted
from transparency.problem_details import problem_status

T = 1_700_000_000


def test_a_nonce_is_a_replay_within_the_window_and_fresh_after_it() -> None:
    cache = NonceCache(window=300)
    cache.use("did:a", "n" * 16, T)
    with pytest.raises(TokenRequestReplayed):
        cache.use("did:a", "n" * 16, T + 299)
    cache.use("did:b", "n" * 16, T + 1)  # nonces are per agent
    cache.use("did:a", "n" * 16, T + 300)


def test_an_agent_over_its_capacity_is_refused_and_others_are_not() -> None:
    cache = NonceCache(window=300, per_agent=3)
    for i in range(3):
        cache.use("did:busy", f"nonce-{i:011d}", T + i)
    with pytest.raises(TokenRequestsExhausted) as refused:
        cache.use("did:busy", "nonce-another-one", T + 10)
    assert problem_status(refused.value) == 429 and refused.value.code == "token-requests-exhausted"
    assert refused.value.retry_after == 290  # until its oldest nonce (T) leaves the window
    cache.use("did:quiet", "nonce-00000000000", T + 10)
    cache.use("did:busy", "nonce-another-one", T + 300)  # the oldest expired: room for one
    with pytest.raises(TokenRequestsExhausted):
        cache.use("did:busy", "nonce-yet-another", T + 300)


def test_a_replay_is_named_as_such_even_at_capacity() -> None:
    cache = NonceCache(per_agent=1)
    cache.use("did:a", "n" * 16, T)
    with pytest.raises(TokenRequestReplayed):
        cache.use("did:a", "n" * 16, T)


def test_agents_are_bounded_and_only_expired_ones_are_evicted() -> None:
    cache = NonceCache(window=300, per_agent=5, max_agents=3)
    for i, agent in enumerate(("did:1", "did:2", "did:3")):
        cache.use(agent, "n" * 16, T + i)
    with pytest.raises(Overloaded) as full:
        cache.use("did:4", "n" * 16, T + 100)
    assert not isinstance(full.value, TokenRequestsExhausted)
    assert full.value.retry_after == 200  # did:1's nonce leaves the window at T + 300
    cache.use("did:1", "m" * 16, T + 100)  # the agents already tracked go on
    cache.use("did:4", "n" * 16, T + 301)  # did:2 (last active T + 1) has expired; did:1 was active at T + 100
    assert len(cache) == 3
    with pytest.raises(TokenRequestReplayed):
        cache.use("did:1", "m" * 16, T + 301)  # not evicted: still in the window
    cache.use("did:5", "n" * 16, T + 1000)  # everything expired
    assert len(cache) == 1


def test_memory_stays_bounded_under_many_agents() -> None:
    cache = NonceCache(window=300, per_agent=2, max_agents=100)
    refused = 0
    for i in range(10_000):
        try:
            cache.use(f"did:key:{i}", f"nonce-{i:011d}", T + i // 100)
        except Overloaded:
            refused += 1
        assert len(cache) <= 100
    assert refused > 0
