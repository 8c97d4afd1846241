"""The one token bucket (transparency.token_buckets): against a reference written here, its eviction, and the log's
per-client registration limiter built on it."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.errors import Overloaded
from tests.clock import Clock
from transparency.http.ratelimit import RateLimiter
from transparency.token_buckets import LocalBuckets, Rate, TokenBuckets


def refused(retry_after: int) -> Overloaded:
    return Overloaded("over", retry_after)


@settings(max_examples=200, deadline=None)
@given(st.floats(0.1, 50), st.integers(1, 10),
       st.lists(st.tuples(st.floats(0, 3), st.sampled_from(["take", "refund"])), max_size=60))
def test_a_bucket_behaves_like_the_reference(per_second: float, burst: int, steps: list[tuple[float, str]]) -> None:
    clock = Clock(100.0)
    buckets, rate = TokenBuckets(clock=clock), Rate(per_second, burst)
    tokens, last, exists = float(burst), clock.now, False  # the reference
    for dt, op in steps:
        clock.now += dt
        if op == "refund":
            buckets.refund("k", rate)
            if exists:
                tokens = min(float(burst), min(float(burst), tokens + (clock.now - last) * per_second) + 1.0)
                last = clock.now
            continue
        tokens = min(float(burst), tokens + (clock.now - last) * per_second) if exists else float(burst)
        last, exists = clock.now, True
        if tokens >= 1.0:
            buckets.take("k", rate, refused)
            tokens -= 1.0
        else:
            with pytest.raises(Overloaded) as caught:
                buckets.take("k", rate, refused)
            assert caught.value.retry_after == max(1, math.ceil((1.0 - tokens) / per_second))
        assert buckets.tokens("k", rate) == pytest.approx(tokens)


def test_memory_stays_bounded_full_buckets_first_then_the_least_recently_used() -> None:
    clock = Clock(100.0)
    buckets, rate = TokenBuckets(LocalBuckets(capacity=4), clock=clock), Rate(1.0, 2)
    for key in "abcd":
        buckets.take(key, rate, refused)
        clock.now += 0.1
    assert buckets.count() == 4
    buckets.take("e", rate, refused)  # none full yet: the least recently used (a) goes
    assert buckets.count() == 4 and buckets.tokens("a", rate) == 2.0
    clock.now += 5  # all refilled: all forgotten
    buckets.take("f", rate, refused)
    assert buckets.count() == 1


def test_the_log_limits_each_client_and_can_be_off() -> None:
    limiter = RateLimiter(0.5, 2)
    limiter.take("10.0.0.1")
    limiter.take("10.0.0.1")
    with pytest.raises(Overloaded) as caught:
        limiter.take("10.0.0.1")
    assert caught.value.retry_after == 2 and "10.0.0.1" in caught.value.detail
    limiter.take("10.0.0.2")  # another client has its own bucket
    off = RateLimiter(0, 1)
    for _ in range(100):
        off.take("10.0.0.1")
