"""Per-client token buckets for registrations (429 + Retry-After when a client overspends)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from schemas.errors import Overloaded


@dataclass
class RateLimiter:
    rate: float  # tokens per second; 0 disables the limit
    burst: int
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)
    max_clients: int = 100_000

    def take(self, client: str) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        tokens, last = self._buckets.get(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[client] = (tokens, now)
            wait = math.ceil((1.0 - tokens) / self.rate)
            raise Overloaded(f"client {client} is over its registration rate of {self.rate:g}/s", max(wait, 1))
        if len(self._buckets) >= self.max_clients and client not in self._buckets:
            self._buckets.clear()
        self._buckets[client] = (tokens - 1.0, now)
