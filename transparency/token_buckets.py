"""The one token bucket of the services: the log's per-client registration rate and the gateway's per-agent rate
per connection are both ``TokenBuckets``.

A bucket holds at most ``burst`` tokens and refills continuously at ``per_second``; each request takes one. An
empty bucket raises the caller's ``Overloaded`` error (429) with ``retry_after``: the whole seconds until a token
is back, at least 1. ``refund`` gives a token back (a request that was not served). The arithmetic lives here once;
where the buckets are kept is a ``BucketStore``: a dict in the process (``LocalBuckets``), or shared memory that
several worker processes map (``gateway.shared``).

A bucket that has refilled completely holds nothing worth keeping (a new one starts full), so when a store is
full the full ones are forgotten first, then the least recently used: memory stays bounded whoever sends.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from schemas.errors import Overloaded

Clock = Callable[[], float]
Refusal = Callable[[int], Overloaded]
"""Makes the caller's 429 from the seconds to wait."""

DEFAULT_MAX_BUCKETS = 100_000


@dataclass(frozen=True)
class Rate:
    per_second: float
    burst: int


Bucket = tuple[float, float, float]
"""``(tokens, at, full_at)``: the tokens held at ``at``, and when the bucket will be full again."""


class BucketStore(Protocol):
    """Where buckets are kept, per key, read and written under ``locked()``."""

    def locked(self) -> AbstractContextManager[object]: ...

    def get(self, key: Hashable) -> Bucket | None: ...

    def put(self, key: Hashable, bucket: Bucket) -> None: ...

    def count(self) -> int: ...

    def items(self) -> Iterator[tuple[Hashable, Bucket]]: ...

    def drop(self, key: Hashable) -> None: ...

    @property
    def capacity(self) -> int: ...


class LocalBuckets:
    """Buckets in a dict of this process, behind a thread lock."""

    def __init__(self, capacity: int = DEFAULT_MAX_BUCKETS) -> None:
        self._buckets: dict[Hashable, Bucket] = {}
        self._lock = threading.Lock()
        self._capacity = capacity

    @property
    def capacity(self) -> int:
        return self._capacity

    def locked(self) -> AbstractContextManager[object]:
        return self._lock

    def get(self, key: Hashable) -> Bucket | None:
        return self._buckets.get(key)

    def put(self, key: Hashable, bucket: Bucket) -> None:
        self._buckets[key] = bucket

    def count(self) -> int:
        return len(self._buckets)

    def items(self) -> Iterator[tuple[Hashable, Bucket]]:
        return iter(list(self._buckets.items()))

    def drop(self, key: Hashable) -> None:
        self._buckets.pop(key, None)


class TokenBuckets:
    """Token buckets keyed by anything hashable, each taken at the ``Rate`` the caller names."""

    def __init__(self, store: BucketStore | None = None, *, clock: Clock = time.monotonic) -> None:
        self.store: BucketStore = store if store is not None else LocalBuckets()
        self.clock = clock

    def take(self, key: Hashable, rate: Rate, refused: Refusal) -> None:
        """Take a token from ``key``'s bucket, or raise ``refused(retry_after)``."""
        with self.store.locked():
            now = self.clock()
            tokens = self._refilled(key, rate, now)
            if tokens < 1.0:
                self.store.put(key, _bucket(tokens, now, rate))
                raise refused(max(1, math.ceil((1.0 - tokens) / rate.per_second)))
            self.store.put(key, _bucket(tokens - 1.0, now, rate))

    def refund(self, key: Hashable, rate: Rate) -> None:
        """Give back one token (never above the burst) to a bucket that exists."""
        with self.store.locked():
            held = self.store.get(key)
            if held is not None:
                now = self.clock()
                self.store.put(key, _bucket(min(float(rate.burst), _refill(held, rate, now) + 1.0), now, rate))

    def tokens(self, key: Hashable, rate: Rate) -> float:
        with self.store.locked():
            held = self.store.get(key)
            return float(rate.burst) if held is None else _refill(held, rate, self.clock())

    def count(self) -> int:
        with self.store.locked():
            return self.store.count()

    def _refilled(self, key: Hashable, rate: Rate, now: float) -> float:
        held = self.store.get(key)
        if held is not None:
            return _refill(held, rate, now)
        if self.store.count() >= self.store.capacity:
            self._make_room(now)
        return float(rate.burst)

    def _make_room(self, now: float) -> None:
        """Forget the buckets that are full again, or else the least recently used quarter."""
        held = list(self.store.items())
        gone = [key for key, (_, _, full_at) in held if full_at <= now]
        if not gone:
            held.sort(key=lambda kv: kv[1][1])
            gone = [key for key, _ in held[:max(1, len(held) // 4)]]
        for key in gone:
            self.store.drop(key)


def _refill(bucket: Bucket, rate: Rate, now: float) -> float:
    tokens, at, _ = bucket
    return min(float(rate.burst), tokens + max(0.0, now - at) * rate.per_second)


def _bucket(tokens: float, now: float, rate: Rate) -> Bucket:
    return tokens, now, now + max(0.0, rate.burst - tokens) / rate.per_second
