"""Snapshots of a follower's folded state on disk, so that a start folds only the entries logged since.

A snapshot is a cache of what the fold (``verifier.fold``) made of the first ``tree_size`` entries of one log;
throw it away and the state is folded again from the log. It is used only when its key matches:

- the log (its origin) and a tree head of it: the size and the root (the service compares them with its stored
  signed head of that size; the gateway verifies the snapshot's signed checkpoint with the log's pinned key and
  its follower checks that checkpoint's consistency with the log's latest);
- the code that folded it: ``verifier.fold_snapshot.code_digest()``, a hash of the verifier's and schemas' code;
- the fold's ``service_signers`` (``verifier.fold_snapshot.signers_digest``).

The file, ``fold-<size>-<root prefix>.cbor`` in the snapshot folder: the CBOR array
``["tabellion-fold-snapshot", 1, {key and checkpoint}, state]`` followed by the SHA-256 of those bytes. The state
is ``verifier.fold_snapshot.encode_state``. It is written to a temporary file in the same folder, fsynced,
renamed over its name and the folder fsynced, so a crash leaves the old snapshots or the new one whole, never
half of one; the newest ``keep`` are kept. A file that is cut short, altered, of another format or key raises
``SnapshotUnusable`` naming why, and the caller rebuilds from the log and says so.

Per-entry outcomes (accepted or refused, and why) are kept on disk in an ``OutcomeStore`` (SQLite), not in
memory: one row per log entry, tied to the verifier code and service signers that computed them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import cbor2

from schemas.errors import SnapshotUnusable
from transparency.sqlite_files import connect
from verifier.fold import Outcome
from verifier.fold_snapshot import code_digest, decode_state, encode_state, signers_digest
from verifier.identity_state import IdentityState
from verifier.merkle import CompactRange

log = logging.getLogger(__name__)

MAGIC: Final = "tabellion-fold-snapshot"
FORMAT: Final = 1
DIGEST_BYTES: Final = 32


@dataclass(frozen=True)
class SnapshotKey:
    """What a snapshot is the state of: the log ``origin`` at tree size ``tree_size`` with root ``root``, folded
    by verifier code ``verifier`` (hex digest) trusting the service signers ``signers`` (hex digest)."""

    origin: str
    tree_size: int
    root: bytes
    verifier: str
    signers: str

    @classmethod
    def of(cls, origin: str, tree_size: int, root: bytes, service_signers: frozenset[str]) -> SnapshotKey:
        """The key of a state folded by this code with these ``service_signers``."""
        return cls(origin, tree_size, root, code_digest(), signers_digest(service_signers))

    def header(self, checkpoint: str, tree: Sequence[bytes] = ()) -> dict[str, Any]:
        return {"origin": self.origin, "tree_size": self.tree_size, "root": self.root, "verifier": self.verifier,
                "signers": self.signers, "checkpoint": checkpoint, "tree": list(tree)}


@dataclass(frozen=True)
class Snapshot:
    """A snapshot read and checked: its key, the signed checkpoint of its tree head, the state, and (for a follower
    that checks entries against the tree) the compact range of the tree's leaves at that size (RFC 9162 subtree
    roots, largest first: ``verifier.merkle.CompactRange``; empty when not kept)."""

    key: SnapshotKey
    checkpoint: str
    state: IdentityState
    path: Path
    tree: tuple[bytes, ...] = ()

    def compact_range(self) -> CompactRange:
        """The compact range kept with the snapshot, checked: one subtree root per bit set in its tree size, hashing
        to its root; ``SnapshotUnusable`` otherwise (kept without one, or altered)."""
        try:
            tree = CompactRange(self.key.tree_size, self.tree)
        except ValueError as exc:
            raise SnapshotUnusable(f"its compact range of {len(self.tree)} subtree roots is not one of "
                                   f"{self.key.tree_size} leaves") from exc
        if tree.root() != self.key.root:
            raise SnapshotUnusable("its compact range does not hash to its root")
        return tree


Match = Callable[[SnapshotKey, str], None]
"""Raises ``SnapshotUnusable`` unless the key and checkpoint name a tree head of the caller's log."""


def encode_snapshot(key: SnapshotKey, checkpoint: str, state: IdentityState, tree: Sequence[bytes] = ()) -> bytes:
    body = cbor2.dumps([MAGIC, FORMAT, key.header(checkpoint, tree), encode_state(state)])
    return body + _sha256(body)


def decode_snapshot(data: bytes) -> tuple[SnapshotKey, str, bytes, tuple[bytes, ...]]:
    """The key, checkpoint, encoded state and compact range of a snapshot file's bytes; ``SnapshotUnusable`` if
    they are not whole (digest) or not of this format."""
    body, digest = data[:-DIGEST_BYTES], data[-DIGEST_BYTES:]
    if len(data) <= DIGEST_BYTES or _sha256(body) != digest:
        raise SnapshotUnusable("its SHA-256 digest does not match its content (cut short or altered)")
    try:
        magic, version, header, state = cbor2.loads(body)
    except (ValueError, TypeError, cbor2.CBORDecodeError) as exc:
        raise SnapshotUnusable(f"it is not a snapshot: {exc}") from exc
    if magic != MAGIC or version != FORMAT:
        raise SnapshotUnusable(f"it is not a snapshot of format {FORMAT} ({str(magic)[:40]!r}, {str(version)[:10]})")
    try:
        key = SnapshotKey(header["origin"], header["tree_size"], header["root"], header["verifier"], header["signers"])
        checkpoint, tree = header["checkpoint"], header["tree"]
    except (KeyError, TypeError) as exc:
        raise SnapshotUnusable(f"its header lacks {exc}") from exc
    if not (isinstance(key.tree_size, int) and isinstance(key.root, bytes) and isinstance(checkpoint, str)
            and isinstance(state, bytes) and isinstance(tree, (list, tuple))
            and all(isinstance(node, bytes) and len(node) == 32 for node in tree)):
        raise SnapshotUnusable("its header or state has the wrong types")
    return key, checkpoint, state, tuple(tree)


class SnapshotStore:
    """The snapshots of one follower, in ``folder`` (created on first save)."""

    def __init__(self, folder: Path, *, keep: int = 2) -> None:
        self.folder = folder
        self.keep = keep

    def save(self, key: SnapshotKey, checkpoint: str, state: IdentityState, tree: Sequence[bytes] = ()) -> Path:
        """Write a snapshot atomically (temporary file, fsync, rename, fsync of the folder); keep the newest."""
        data = encode_snapshot(key, checkpoint, state, tree)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"fold-{key.tree_size:012d}-{key.root[:8].hex()}.cbor"
        fd, tmp = tempfile.mkstemp(prefix=".fold-", suffix=".tmp", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_folder(self.folder)
        # older snapshots past the newest ``keep``, and temporary files a killed process left behind
        for old in [*self.files()[self.keep:], *self.folder.glob(".fold-*.tmp")]:
            with contextlib.suppress(OSError):
                old.unlink()
        return path

    def files(self) -> list[Path]:
        """The snapshot files, largest tree size first."""
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob("fold-*.cbor"), key=lambda p: p.name, reverse=True)

    def newest(self, expected: SnapshotKey, match: Match) -> tuple[Snapshot | None, str]:
        """The newest snapshot for ``expected``'s log, code and signers that ``match`` accepts (its tree size and
        root are the caller's to check), and why none was usable otherwise (one line: the newest file's reason)."""
        reasons: list[str] = []
        for path in self.files():
            try:
                return self.load(path, expected, match), ""
            except SnapshotUnusable as exc:
                reasons.append(f"{path.name}: {exc.detail}")
            except OSError as exc:
                reasons.append(f"{path.name}: {exc.strerror or exc}")
        if not reasons:
            return None, f"no snapshot in {self.folder}"
        return None, reasons[0] + (f" (and {len(reasons) - 1} older)" if len(reasons) > 1 else "")

    def load(self, path: Path, expected: SnapshotKey, match: Match) -> Snapshot:
        key, checkpoint, body, tree = decode_snapshot(path.read_bytes())
        if key.origin != expected.origin:
            raise SnapshotUnusable(f"it is of the log {key.origin[:80]!r}, not {expected.origin[:80]!r}")
        if key.verifier != expected.verifier:
            raise SnapshotUnusable("it was folded by other verifier code (the verifier or schemas changed)")
        if key.signers != expected.signers:
            raise SnapshotUnusable("it was folded trusting other service signers (the log's keys changed)")
        match(key, checkpoint)
        return Snapshot(key, checkpoint, decode_state(body), path, tree)


class SnapshotWriter:
    """When a follower saves its snapshots: every ``every`` entries or ``interval`` seconds (whichever comes
    first, when the state grew), one at a time, in a background thread: the follower hands over a copy of its
    state (``verifier.fold_snapshot.copy_state``) and goes on folding."""

    def __init__(self, store: SnapshotStore, *, every: int, interval: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.every = every
        self.interval = interval
        self._clock = clock
        self.saved_size = 0
        self._saved_at = clock()
        self._thread: threading.Thread | None = None

    def saved(self, size: int) -> None:
        """The state of ``size`` entries is on disk (loaded, or being written)."""
        self.saved_size, self._saved_at = size, self._clock()

    def due(self, size: int) -> bool:
        if size <= self.saved_size or (self._thread is not None and self._thread.is_alive()):
            return False
        return size - self.saved_size >= self.every or self._clock() - self._saved_at >= self.interval

    def save_in_background(self, size: int, save: Callable[[], None]) -> None:
        """Run ``save`` (which writes the snapshot of ``size`` entries) in a thread."""
        self.saved(size)

        def write() -> None:
            try:
                save()
            except Exception:  # noqa: BLE001 - a snapshot is a cache: a failed write is logged, the log goes on
                log.exception("writing the snapshot of tree size %d failed", size)

        self._thread = threading.Thread(target=write, name="tabellion-snapshot", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None


class OutcomeStore:
    """Every entry's outcome (``verifier.fold.Outcome``), one row per log index, in SQLite (WAL, ``NORMAL``: a
    cache, checked against the log at every start). Appends are buffered and written by ``flush`` (the follower
    flushes every ``FLUSH_AT`` outcomes, before a snapshot and at the stop: outcomes lost in a crash are those of
    entries after the newest snapshot, which the next start folds again); reads see them at once. Thread-safe
    (the sequencer thread appends, request handlers read)."""

    FLUSH_AT: Final = 4096

    def __init__(self, path: Path, service_signers: frozenset[str]) -> None:
        self.path = path
        self._conn = connect(path, synchronous="NORMAL")
        self._lock = threading.Lock()
        self._pending: dict[int, Outcome] = {}
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS outcomes (idx INTEGER PRIMARY KEY, entry TEXT NOT NULL, "
            "statement_type TEXT, accepted INTEGER NOT NULL, code TEXT NOT NULL, reason TEXT NOT NULL)"
        )
        self._conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        stamp = f"{code_digest()} {signers_digest(service_signers)}"
        found = self._conn.execute("SELECT value FROM meta WHERE key = 'folded-by'").fetchone()
        if found is None or found[0] != stamp:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute("DELETE FROM outcomes")
            self._conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('folded-by', ?)", (stamp,))
            self._set_through(0)
            self._conn.execute("COMMIT")
        through = self._conn.execute("SELECT value FROM meta WHERE key = 'complete-through'").fetchone()
        self._through = int(through[0]) if through is not None else self._count_through()
        """The outcomes of entries ``0..through-1`` are all in the table: kept with the rows, in the same
        transactions, so that a start checks the store in one read rather than by counting its rows (a third
        of a second, and a read of the whole table from disk, at 10^6 entries)."""

    def _count_through(self) -> int:
        """The mark of a store written before the mark was kept: its rows counted once (they are complete
        through their count when the last of them is that of entry count - 1), then kept from there on."""
        count, last = self._conn.execute("SELECT count(*), max(idx) FROM outcomes").fetchone()
        through = count if count and last == count - 1 else 0
        self._conn.execute("BEGIN IMMEDIATE")
        if not through:
            self._conn.execute("DELETE FROM outcomes")
        self._set_through(through)
        self._conn.execute("COMMIT")
        return int(through)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def append(self, outcome: Outcome) -> None:
        with self._lock:
            self._pending[outcome.index] = outcome

    def flush(self, *, unless_below: int = 0) -> None:
        """Write the buffered outcomes (with ``unless_below``, only once at least that many are buffered)."""
        with self._lock:
            if not self._pending or len(self._pending) < unless_below:
                return
            rows = [(o.index, o.entry, o.statement_type, int(o.accepted), o.code, o.reason)
                    for o in self._pending.values()]
            through = self._through
            while through in self._pending:  # the fold records entries in log order: these follow on
                through += 1
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany("INSERT OR REPLACE INTO outcomes VALUES (?, ?, ?, ?, ?, ?)", rows)
            self._set_through(through)
            self._conn.execute("COMMIT")
            self._through = through
            self._pending.clear()

    def _set_through(self, through: int) -> None:
        self._conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('complete-through', ?)", (str(through),))

    def get(self, index: int) -> Outcome | None:
        with self._lock:
            found = self._pending.get(index)
            if found is not None:
                return found
            row = self._conn.execute(
                "SELECT idx, entry, statement_type, accepted, code, reason FROM outcomes WHERE idx = ?", (index,)
            ).fetchone()
        return None if row is None else Outcome(row[0], row[1], row[2], bool(row[3]), row[5], row[4])

    def check_holds(self, size: int, last_entry: str | None) -> None:
        """The store holds exactly the outcomes of entries ``0..size-1`` of this log (the last one's entry id is
        ``last_entry``); later rows are dropped. ``SnapshotUnusable`` otherwise."""
        self.flush()
        with self._lock:
            if self._through < size:
                raise SnapshotUnusable(f"the outcome store holds {self._through} of the {size} entries' outcomes")
            if size:
                row = self._conn.execute("SELECT entry FROM outcomes WHERE idx = ?", (size - 1,)).fetchone()
                if row is None or row[0] != last_entry:
                    raise SnapshotUnusable(f"the outcome store's entry {size - 1} is not this log's")
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute("DELETE FROM outcomes WHERE idx >= ?", (size,))
            self._set_through(size)
            self._conn.execute("COMMIT")
            self._through = size

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute("DELETE FROM outcomes")
            self._set_through(0)
            self._conn.execute("COMMIT")
            self._through = 0


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
