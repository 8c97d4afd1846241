"""What several gateway worker processes on one machine share, besides the nonce store (SQLite, ``gateway.replay``)
and the action-record queue (SQLite, ``gateway.actions``): the rate-limit buckets and one verified view of the log.

**One verified view.** One process follows the log (``gateway.server``: the supervisor, ``FollowedLog``) and
publishes what it verified into the data folder; the workers decide from it and never ask the log themselves:

- ``view.bin``, a small memory-mapped header rewritten after every poll: a sequence number (odd while being
  written: a reader that sees it odd, or sees it change, reads again), the state's generation, the verified
  checkpoint (size, root, origin), the CLOCK_MONOTONIC time it was last verified (one clock for every process of
  the machine), the fork verdict, and with a witness policy whether a checkpoint met the quorum yet and since when
  a newer one has waited for it;
- ``view-<generation>.pickle``, the folded identity state, written (write, rename) only when the fold took an
  identity statement: a worker loads it when the header names a new generation.

A worker applies the same rules as the follower itself (``gateway.state``): no checkpoint yet is 503
``log-not-ready``, a verdict is 503 ``log-untrusted``, a checkpoint verified longer ago than ``max_staleness`` is
503 ``log-stale``; with a witness policy, no checkpoint that met the quorum yet, or a newer one waiting for it
longer than ``witness_grace``, is 503 ``log-unwitnessed``. A revocation reaches the workers in one poll, a fold
and a file rename.

**Rate limits.** ``SharedBuckets`` is a ``transparency.token_buckets.BucketStore`` in a memory-mapped file
(``rate-buckets.bin``): open addressing over fixed slots (a 16-byte BLAKE2b digest of the key, tokens, time, time
full), 16 slots probed per key; a full window gives up its least recently used slot. Reads and writes are under an
``flock`` of the file (and a thread lock within the process).
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import pickle  # noqa: S403 - the view is written by this gateway's own supervisor into its own data folder
import struct
import threading
import time
from collections.abc import Hashable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from schemas.errors import LogNotFollowed, LogStale, LogUntrusted, LogUnwitnessed
from schemas.policy import Policy
from transparency.client.follower import require_witnessed
from transparency.token_buckets import Bucket
from verifier.fold import IdentityState

from .state import LogPosition, View, WitnessWait

VIEW_FILE: Final = "view.bin"
BUCKETS_FILE: Final = "rate-buckets.bin"
_MAX_ORIGIN: Final = 256
_MAX_DETAIL: Final = 1024
# seq, generation, size, verified_at, has_checkpoint, failed, root, origin length, origin, detail length, detail,
# then with a witness policy: unwitnessed (no checkpoint met the quorum: the detail says why), waiting (a newer
# checkpoint waits for its quorum), waiting since, the log's latest size
_HEADER: Final = struct.Struct(f"<QQQdBB32sH{_MAX_ORIGIN}sH{_MAX_DETAIL}sBBdQ")


def _state_path(data_dir: Path, generation: int) -> Path:
    return data_dir / f"view-{generation}.pickle"


class ViewPublisher:
    """The supervisor's side: publishes each verified position, and the state when it changed."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / VIEW_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.ftruncate(fd, _HEADER.size)
        self._map = mmap.mmap(fd, _HEADER.size)
        os.close(fd)
        self._seq = 0
        self._generation = 0

    def publish_state(self, state: IdentityState) -> None:
        """Write the state as a new generation (the header names it at the next ``publish``)."""
        generation = self._generation + 1
        path = _state_path(self.data_dir, generation)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(tmp, path)
        old = _state_path(self.data_dir, self._generation - 1)  # a reader may still be loading the last one
        old.unlink(missing_ok=True)
        self._generation = generation

    def publish(self, position: LogPosition | None, verified_at: float, failure: str | None = None, *,
                witness: WitnessWait | None = None) -> None:
        origin = (position.origin if position else "").encode()[:_MAX_ORIGIN]
        unwitnessed = witness.unwitnessed if witness is not None else None
        detail = (failure or unwitnessed or "").encode()[:_MAX_DETAIL]
        since = witness.since if witness is not None else None
        self._seq += 1  # odd: being written
        self._map[:8] = struct.pack("<Q", self._seq)
        packed = _HEADER.pack(self._seq + 1, self._generation, position.size if position else 0, verified_at,
                              position is not None, failure is not None,
                              position.root_hash if position else bytes(32), len(origin), origin, len(detail), detail,
                              unwitnessed is not None, since is not None, since or 0.0,
                              witness.latest if witness is not None else 0)
        self._map[8:] = packed[8:]
        self._seq += 1
        self._map[:8] = struct.pack("<Q", self._seq)

    def close(self) -> None:
        self._map.close()


@dataclass(frozen=True)
class _Header:
    generation: int
    size: int
    verified_at: float
    has: bool
    failed: bool
    root: bytes
    origin: str
    detail: str
    unwitnessed: bool
    waiting: bool
    waiting_since: float
    latest: int


class SharedLogView:
    """A worker's ``StateSource``: the published view (see the module docstring). ``policy`` and ``witness_grace``
    are the gateway's (``[log]``), as the supervisor follows with them."""

    def __init__(self, data_dir: Path, max_staleness: float, *, policy: Policy | None = None,
                 witness_grace: float = 10.0) -> None:
        self.data_dir = data_dir
        self.max_staleness = max_staleness
        self.policy = policy
        self.witness_grace = witness_grace
        fd = os.open(data_dir / VIEW_FILE, os.O_RDONLY)
        self._map = mmap.mmap(fd, _HEADER.size, prot=mmap.PROT_READ)
        os.close(fd)
        self._generation = -1
        self._state: IdentityState | None = None
        self._lock = threading.Lock()

    def _read(self) -> _Header:
        while True:
            raw = self._map[:_HEADER.size]
            (seq, generation, size, verified_at, has, failed, root, olen, origin, dlen, detail, unwitnessed, waiting,
             since, latest) = _HEADER.unpack(raw)
            if seq % 2 == 0 and struct.unpack("<Q", self._map[:8])[0] == seq:
                return _Header(generation, size, verified_at, bool(has), bool(failed), root,
                               origin[:olen].decode(errors="replace"), detail[:dlen].decode(errors="replace"),
                               bool(unwitnessed), bool(waiting), since, latest)
            time.sleep(0)

    def position(self) -> LogPosition:
        return self._position(self._read())

    def _position(self, h: _Header) -> LogPosition:
        if h.failed:
            raise LogUntrusted(f"the gateway refuses every request: {h.detail}")
        if not h.has:
            if self.policy is not None and h.unwitnessed:
                raise LogUnwitnessed(h.detail)
            raise LogNotFollowed("the gateway has not verified a checkpoint of the log yet")
        now = time.monotonic()
        age = now - h.verified_at
        if age > self.max_staleness:
            raise LogStale(f"the last checkpoint of the log was verified {age:.1f} s ago "
                           f"(limit {self.max_staleness:g} s)")
        if self.policy is not None and h.waiting:
            require_witnessed(self.policy, now - h.waiting_since, self.witness_grace, h.latest, h.size)
        return LogPosition(h.origin, h.size, h.root, age)

    @contextmanager
    def snapshot(self) -> Iterator[View]:
        header = self._read()
        position = self._position(header)
        yield View(self._state_of(header.generation), position)

    def _state_of(self, generation: int) -> IdentityState:
        with self._lock:
            if generation != self._generation or self._state is None:
                data = _state_path(self.data_dir, generation).read_bytes()
                self._state = pickle.loads(data)  # noqa: S301 - our own supervisor's file (see the import)
                self._generation = generation
            return self._state

    def close(self) -> None:
        self._map.close()


# --- rate limits -------------------------------------------------------------------------------------------

_SLOT: Final = struct.Struct("<16sddd")
_PROBE: Final = 16
_EMPTY: Final = bytes(16)


class SharedBuckets:
    """A ``BucketStore`` in a memory-mapped file shared by the workers of one gateway."""

    def __init__(self, path: Path, slots: int = 65_536) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        size = slots * _SLOT.size
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        if os.fstat(self._fd).st_size != size:
            os.ftruncate(self._fd, size)
        self._map = mmap.mmap(self._fd, size)
        self.slots = slots
        self._thread_lock = threading.Lock()

    @property
    def capacity(self) -> int:
        return self.slots * 2  # never full as a whole: a full probe window evicts its least recently used slot

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def locked(self) -> AbstractContextManager[object]:
        return self._locked()

    @staticmethod
    def _digest(key: Hashable) -> bytes:
        return hashlib.blake2b(repr(key).encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def _window(self, digest: bytes) -> list[int]:
        start = int.from_bytes(digest[:8], "little") % self.slots
        return [(start + i) % self.slots for i in range(_PROBE)]

    def _slot(self, index: int) -> tuple[bytes, float, float, float]:
        offset = index * _SLOT.size
        return _SLOT.unpack_from(self._map, offset)

    def get(self, key: Hashable) -> Bucket | None:
        digest = self._digest(key)
        for index in self._window(digest):
            held, tokens, at, full_at = self._slot(index)
            if held == digest:
                return tokens, at, full_at
        return None

    def put(self, key: Hashable, bucket: Bucket) -> None:
        digest = self._digest(key)
        window = self._window(digest)
        target = None
        oldest: tuple[float, int] | None = None
        for index in window:
            held, _, at, _ = self._slot(index)
            if held == digest:
                target = index
                break
            if held == _EMPTY and target is None:
                target = index
            if oldest is None or at < oldest[0]:
                oldest = (at, index)
        if target is None:
            assert oldest is not None
            target = oldest[1]
        _SLOT.pack_into(self._map, target * _SLOT.size, digest, *bucket)

    def drop(self, key: Hashable) -> None:
        digest = self._digest(key)
        for index in self._window(digest):
            if self._slot(index)[0] == digest:
                _SLOT.pack_into(self._map, index * _SLOT.size, _EMPTY, 0.0, 0.0, 0.0)

    def count(self) -> int:
        return 0  # TokenBuckets asks before making room; a full window makes its own

    def items(self) -> Iterator[tuple[Hashable, Bucket]]:
        return iter(())

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)
