"""Per-client token buckets for registrations (429 + Retry-After when a client overspends): the one token bucket
of the services, ``transparency.token_buckets``."""

from __future__ import annotations

from schemas.errors import Overloaded
from transparency.token_buckets import DEFAULT_MAX_BUCKETS, LocalBuckets, Rate, TokenBuckets


class RateLimiter:
    def __init__(self, rate: float, burst: int, max_clients: int = DEFAULT_MAX_BUCKETS) -> None:
        self.rate = Rate(rate, burst) if rate > 0 else None  # 0 disables the limit
        self.buckets = TokenBuckets(LocalBuckets(max_clients))

    def take(self, client: str) -> None:
        rate = self.rate
        if rate is None:
            return

        def refused(retry_after: int) -> Overloaded:
            return Overloaded(f"client {client} is over its registration rate of {rate.per_second:g}/s", retry_after)

        self.buckets.take(client, rate, refused)
