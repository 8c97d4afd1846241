"""What several gateway worker processes on one machine share, besides the nonce store (SQLite, ``gateway.replay``)
and the action-record queue (SQLite, ``gateway.actions``): the rate-limit buckets and one verified view of the log.

**One verified view.** One process follows the log (``gateway.server``: the supervisor, ``FollowedLog``) and
publishes what it verified into the data folder; the workers decide from it and never ask the log themselves:

- ``view.bin``, a small memory-mapped header rewritten after every poll: a sequence number (odd while being
  written: a reader that sees it odd, or sees it change, reads again), the state's generation, the verified
  checkpoint (size, root, origin), the CLOCK_MONOTONIC time it was last verified (one clock for every process of
  the machine), and the fork verdict;
- ``view-<generation>.pickle``, the folded identity state, written (write, rename) only when the fold took an
  identity statement: a worker loads it when the header names a new generation.

A worker applies the same rules as the follower itself (``gateway.state``): no checkpoint yet is 503
``log-not-ready``, a verdict is 503 ``log-untrusted``, a checkpoint verified longer ago than ``max_staleness`` is
503 ``log-stale``. A revocation reaches the workers in one poll, a fold and a file rename.

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
from pathlib import Path
from typing import Final

from schemas.errors import LogNotFollowed, LogStale, LogUntrusted
from transparency.token_buckets import Bucket
from verifier.fold import IdentityState

from .state import LogPosition, View

VIEW_FILE: Final = "view.bin"
BUCKETS_FILE: Final = "rate-buckets.bin"
_MAX_ORIGIN: Final = 256
_MAX_DETAIL: Final = 1024
# seq, generation, size, verified_at, has_checkpoint, failed, root, origin length, origin, detail length, detail
_HEADER: Final = struct.Struct(f"<QQQdBB32sH{_MAX_ORIGIN}sH{_MAX_DETAIL}s")


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

    def publish(self, position: LogPosition | None, verified_at: float, failure: str | None = None) -> None:
        origin = (position.origin if position else "").encode()[:_MAX_ORIGIN]
        detail = (failure or "").encode()[:_MAX_DETAIL]
        self._seq += 1  # odd: being written
        self._map[:8] = struct.pack("<Q", self._seq)
        packed = _HEADER.pack(self._seq + 1, self._generation, position.size if position else 0, verified_at,
                              position is not None, failure is not None,
                              position.root_hash if position else bytes(32), len(origin), origin, len(detail), detail)
        self._map[8:] = packed[8:]
        self._seq += 1
        self._map[:8] = struct.pack("<Q", self._seq)

    def close(self) -> None:
        self._map.close()


class SharedLogView:
    """A worker's ``StateSource``: the published view (see the module docstring)."""

    def __init__(self, data_dir: Path, max_staleness: float) -> None:
        self.data_dir = data_dir
        self.max_staleness = max_staleness
        fd = os.open(data_dir / VIEW_FILE, os.O_RDONLY)
        self._map = mmap.mmap(fd, _HEADER.size, prot=mmap.PROT_READ)
        os.close(fd)
        self._generation = -1
        self._state: IdentityState | None = None
        self._lock = threading.Lock()

    def _read(self) -> tuple[int, int, int, float, bool, bool, bytes, str, str]:
        while True:
            raw = self._map[:_HEADER.size]
            seq, generation, size, verified_at, has, failed, root, olen, origin, dlen, detail = _HEADER.unpack(raw)
            if seq % 2 == 0 and struct.unpack("<Q", self._map[:8])[0] == seq:
                return (seq, generation, size, verified_at, bool(has), bool(failed), root,
                        origin[:olen].decode(errors="replace"), detail[:dlen].decode(errors="replace"))
            time.sleep(0)

    def position(self) -> LogPosition:
        _, _, size, verified_at, has, failed, root, origin, detail = self._read()
        return self._position(size, verified_at, has, failed, root, origin, detail)

    def _position(self, size: int, verified_at: float, has: bool, failed: bool, root: bytes, origin: str,
                  detail: str) -> LogPosition:
        if failed:
            raise LogUntrusted(f"the gateway refuses every request: {detail}")
        if not has:
            raise LogNotFollowed("the gateway has not verified a checkpoint of the log yet")
        age = time.monotonic() - verified_at
        if age > self.max_staleness:
            raise LogStale(f"the last checkpoint of the log was verified {age:.1f} s ago "
                           f"(limit {self.max_staleness:g} s)")
        return LogPosition(origin, size, root, age)

    @contextmanager
    def snapshot(self) -> Iterator[View]:
        _, generation, size, verified_at, has, failed, root, origin, detail = self._read()
        position = self._position(size, verified_at, has, failed, root, origin, detail)
        yield View(self._state_of(generation), position)

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
