"""Rate limits: a token bucket per (connection, agent), for connections configured with ``rate``.

A bucket holds at most ``burst`` tokens and refills at ``per_second``; each request takes one. The gatekeeper
takes the token after the request's signature and identity headers verified (so the agent is the one the log
knows, and nobody can spend another agent's tokens) and before the authority and policy work. An empty
bucket refuses with ``RateLimited`` (429) and ``retry_after``: the whole seconds until a token is back, at
least 1. A request found to be a replay gives its token back.

Buckets live in the gateway process (one Hypercorn worker: one set of buckets). A bucket that has refilled
completely holds nothing worth keeping, so when there are more than ``max_buckets`` the full ones are dropped.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from schemas.errors import RateLimited

from .config import Connection, RateConfig

Clock = Callable[[], float]
DEFAULT_MAX_BUCKETS = 100_000


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """Token buckets per (connection id, agent) for the connections that have a ``RateConfig``."""

    def __init__(self, rates: Mapping[str, RateConfig], *, clock: Clock = time.monotonic,
                 max_buckets: int = DEFAULT_MAX_BUCKETS) -> None:
        self.rates = dict(rates)
        self.clock = clock
        self.max_buckets = max_buckets
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._lock = threading.Lock()  # decisions run in the threadpool

    @classmethod
    def for_connections(cls, connections: Iterable[Connection], *, clock: Clock = time.monotonic) -> RateLimiter:
        return cls({c.id: c.rate for c in connections if c.rate is not None}, clock=clock)

    def take(self, connection: str, agent: str) -> None:
        """Take a token from the agent's bucket on ``connection``, or raise ``RateLimited``."""
        rate = self.rates.get(connection)
        if rate is None:
            return
        with self._lock:
            now = self.clock()
            bucket = self._refilled(connection, agent, rate, now)
            if bucket.tokens < 1.0:
                retry_after = max(1, math.ceil((1.0 - bucket.tokens) / rate.per_second))
                raise RateLimited(
                    f"agent {agent[:200]} is over its rate on connection {connection!r} "
                    f"({rate.per_second:g}/s, burst {rate.burst}); retry after {retry_after} s", retry_after,
                )
            bucket.tokens -= 1.0

    def refund(self, connection: str, agent: str) -> None:
        """Give back the token ``take`` took for a request that was not served (a replay)."""
        rate = self.rates.get(connection)
        if rate is None:
            return
        with self._lock:
            bucket = self._buckets.get((connection, agent))
            if bucket is not None:
                bucket.tokens = min(float(rate.burst), bucket.tokens + 1.0)

    def tokens(self, connection: str, agent: str) -> float:
        """The tokens the agent has now on ``connection`` (``inf`` without a limit)."""
        rate = self.rates.get(connection)
        if rate is None:
            return math.inf
        with self._lock:
            return self._refilled(connection, agent, rate, self.clock()).tokens

    def bucket_count(self) -> int:
        with self._lock:
            return len(self._buckets)

    def _refilled(self, connection: str, agent: str, rate: RateConfig, now: float) -> _Bucket:
        key = (connection, agent)
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_buckets:
                self._drop_full(now)
            bucket = self._buckets[key] = _Bucket(float(rate.burst), now)
            return bucket
        bucket.tokens = min(float(rate.burst), bucket.tokens + max(0.0, now - bucket.at) * rate.per_second)
        bucket.at = now
        return bucket

    def _drop_full(self, now: float) -> None:
        """Forget the buckets that have refilled completely: a new bucket starts full anyway."""
        full = [key for key, b in self._buckets.items()
                if b.tokens + max(0.0, now - b.at) * self.rates[key[0]].per_second >= self.rates[key[0]].burst]
        for key in full:
            del self._buckets[key]
