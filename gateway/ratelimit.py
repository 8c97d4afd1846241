"""Rate limits: a token bucket per (connection, agent), for connections configured with ``rate``.

The buckets are ``transparency.token_buckets`` (the one token bucket of the services). The gatekeeper takes
the token after the request's signature and identity headers verified (so the agent is the one the log knows,
and nobody can spend another agent's tokens) and before the authority and policy work. An empty bucket
refuses with ``RateLimited`` (429) and ``retry_after``. A request found to be a replay gives its token back.

With several worker processes the buckets are in shared memory (``gateway.shared``), so an agent's rate is
its rate on the gateway, not per worker.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping

from schemas.errors import RateLimited
from transparency.token_buckets import DEFAULT_MAX_BUCKETS, BucketStore, Clock, LocalBuckets, Rate, TokenBuckets

from .config import Connection, RateConfig


class RateLimiter:
    """Token buckets per (connection id, agent) for the connections that have a ``RateConfig``."""

    def __init__(self, rates: Mapping[str, RateConfig], *, clock: Clock = time.monotonic,
                 max_buckets: int = DEFAULT_MAX_BUCKETS, store: BucketStore | None = None) -> None:
        self.rates = {cid: Rate(r.per_second, r.burst) for cid, r in rates.items()}
        self.buckets = TokenBuckets(store if store is not None else LocalBuckets(max_buckets), clock=clock)

    @classmethod
    def for_connections(cls, connections: Iterable[Connection], *, clock: Clock = time.monotonic,
                        store: BucketStore | None = None) -> RateLimiter:
        return cls({c.id: c.rate for c in connections if c.rate is not None}, clock=clock, store=store)

    def take(self, connection: str, agent: str) -> None:
        """Take a token from the agent's bucket on ``connection``, or raise ``RateLimited``."""
        rate = self.rates.get(connection)
        if rate is None:
            return

        def refused(retry_after: int) -> RateLimited:
            return RateLimited(f"agent {agent[:200]} is over its rate on connection {connection!r} "
                               f"({rate.per_second:g}/s, burst {rate.burst}); retry after {retry_after} s", retry_after)

        self.buckets.take((connection, agent), rate, refused)

    def refund(self, connection: str, agent: str) -> None:
        """Give back the token ``take`` took for a request that was not served (a replay)."""
        rate = self.rates.get(connection)
        if rate is not None:
            self.buckets.refund((connection, agent), rate)

    def tokens(self, connection: str, agent: str) -> float:
        """The tokens the agent has now on ``connection`` (``inf`` without a limit)."""
        rate = self.rates.get(connection)
        return math.inf if rate is None else self.buckets.tokens((connection, agent), rate)

    def bucket_count(self) -> int:
        return self.buckets.count()
