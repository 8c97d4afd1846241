"""The sequencer: the one writer of the log.

Checked statements are queued; a dedicated thread takes a batch (up to ``batch_max_entries``, waiting at
most ``batch_max_wait_ms`` for more), and integrates it in ONE SQLite transaction: entry rows, Merkle
nodes, the new tree head with its signed checkpoint and its shared receipt signature. Only after COMMIT
(WAL, synchronous=FULL) are the submitters told their index, so no receipt is ever issued for an entry
that is not durably committed. A statement already in the log (or twice in one batch) gets the existing
entry back: the batch's ids are looked up in the entry-id index (``store.EntryIndexWriter``) inside the same
transaction, and the new entries are added to it there too, so the index is never behind the log.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from schemas.checkpoint import Checkpoint
from schemas.errors import (
    ConfigurationError,
    LogCorrupted,
    Overloaded,
    StorageError,
    TreeHeadCorrupted,
    TreeNodeCorrupted,
)
from transparency.keys import LogKey, published_key_set
from transparency.log.checks import (
    check_entries_end,
    check_leaf,
    check_leaves_held,
    check_signed_head,
    head_keys,
    statement_id,
)
from transparency.log.merkle_tree import PersistentMerkleTree
from transparency.log.store import MERGE_FANIN, SEAL_ENTRIES, EntryIndexWriter, LogReader, open_database
from transparency.receipts import sign_checkpoint, sign_tree_head
from verifier.keys import PublicKey

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Integrated:
    """Where a statement landed: its 0-based index and the signed tree head that covers it."""

    index: int
    tree_size: int
    leaf_data: bytes


@dataclass(frozen=True)
class _Pending:
    leaf_data: bytes
    statement: bytes
    future: Future[Integrated]
    absent_below: int = 0  # the submitter found no entry with this id among the first ``absent_below``


_STOP = object()


class Sequencer:
    def __init__(
        self, db_path: Path, key: LogKey, origin: str, *, batch_max_entries: int = 256,
        batch_max_wait_ms: float = 1.0, queue_limit: int = 4096,
        on_integrated: Callable[[list[tuple[int, bytes]]], None] | None = None,
        index_seal_entries: int = SEAL_ENTRIES, index_fanin: int = MERGE_FANIN,
        retired_keys: Sequence[PublicKey] = (),
    ) -> None:
        self.db_path = db_path
        self.key = key
        self.origin = origin
        self.head_keys = head_keys(origin, published_key_set(key, list(retired_keys)))  # heads it signed before
        self.batch_max_entries = batch_max_entries
        self.batch_max_wait = batch_max_wait_ms / 1000.0
        self.queue_limit = queue_limit
        self.on_integrated = on_integrated
        self._queue: queue.Queue[object] = queue.Queue()
        self._pending: dict[bytes, int] = {}
        self._pending_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.db = open_database(db_path)
        self.tree = PersistentMerkleTree(self.db.conn)
        self.index = EntryIndexWriter(self.db.conn, seal_entries=index_seal_entries, fanin=index_fanin)
        self.size = 0
        try:
            self._open_log()
        except BaseException:
            self.db.close()
            raise

    # --- start-up ---------------------------------------------------------------------------------

    def _open_log(self) -> None:
        """Check what the start loads, cheaply (``transparency.log.checks``; ``tabellion fsck`` checks all of the
        log): the latest head is one the log signed; the entries end where it does (one seek); the stored tree's
        root, from its O(log n) frontier nodes, is its root; the index runs tile the log; the ids the writer
        loaded for its dedupe are the leaves the tree holds (a bounded window). Sign the empty head on first
        start."""
        reader = LogReader(self.db)
        self._check_meta(reader)
        head = reader.latest_head()
        tree_size = self.tree.get_size()
        if head is None:
            if tree_size or reader.entries_end():
                raise TreeHeadCorrupted("the log has leaves but no signed tree head")
            self._commit_head(0, int(time.time()), [])
            return
        check_signed_head(head, self.head_keys)
        check_entries_end(head.tree_size, reader.entries_end())
        if head.tree_size != tree_size or head.root != self.tree.current_root():
            raise TreeNodeCorrupted(
                f"the stored tree (size {tree_size}) does not match the latest signed head "
                f"(size {head.tree_size}); refusing to sign anything"
            )
        self.size = head.tree_size
        self.index.check(self.size)
        self._check_loaded_ids(reader)

    def _check_loaded_ids(self, reader: LogReader) -> None:
        """The entries whose ids the writer keeps in memory (``EntryIndexWriter.recent_from`` to the size) are
        contiguous and their ids the leaves the tree holds; a mismatch is settled with the entry's statement."""
        start = self.index.recent_from
        rows = reader.entry_ids(start, self.size)
        leaves = reader.node_hashes(0, start, self.size)
        for index in check_leaves_held(start, rows, leaves):
            row = reader.entries(index, 1)[0]
            recomputed, why = statement_id(row.statement)
            check_leaf(index, row.leaf_data, recomputed, leaves[index - start], why)

    def _check_meta(self, reader: LogReader) -> None:
        stored = reader.meta("origin")
        if stored is None:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT INTO meta (key, value) VALUES ('origin', ?)", (self.origin,))
            self.db.execute("COMMIT")
        elif stored != self.origin:
            raise ConfigurationError(f"this log's origin is {stored!r}; it cannot be served as {self.origin!r}")

    # --- submitting -------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="tabellion-sequencer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
        self.db.close()

    def submit(self, leaf_data: bytes, statement: bytes, *, absent_below: int = 0) -> Future[Integrated]:
        """Queue a checked statement. ``absent_below``: the caller looked its id up (``LogReader.entry_by_id``)
        and it was not among the first ``absent_below`` entries, so the batch's dedupe need not probe those
        again in the index's large runs (the entries after them, it keeps in memory)."""
        if self._queue.qsize() >= self.queue_limit:
            raise Overloaded(f"{self.queue_limit} statements are waiting to be sequenced; retry shortly", 1)
        future: Future[Integrated] = Future()
        with self._pending_lock:
            self._pending[leaf_data] = self._pending.get(leaf_data, 0) + 1
        self._queue.put(_Pending(leaf_data, statement, future, absent_below))
        return future

    @property
    def running(self) -> bool:
        """The integration thread is alive (it stops only on ``stop``, or if an integration raised)."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def queue_depth(self) -> int:
        """Statements waiting to be integrated."""
        return self._queue.qsize()

    def is_pending(self, leaf_data: bytes) -> bool:
        with self._pending_lock:
            return leaf_data in self._pending

    # --- the integration loop ---------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            deadline = time.monotonic() + self.batch_max_wait
            stop_after = False
            while len(batch) < self.batch_max_entries:
                try:
                    remaining = deadline - time.monotonic()
                    nxt = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop_after = True
                    break
                batch.append(nxt)
            self._integrate([p for p in batch if isinstance(p, _Pending)])
            if stop_after:
                return

    def _integrate(self, batch: list[_Pending]) -> None:
        now = int(time.time())
        results: dict[bytes, Integrated] = {}
        fresh: list[_Pending] = []
        try:
            self.db.execute("BEGIN IMMEDIATE")
            unique: dict[bytes, _Pending] = {}
            absent_below: dict[bytes, int] = {}
            for p in batch:
                unique.setdefault(p.leaf_data, p)  # the same statement twice in one batch: one entry
                absent_below[p.leaf_data] = min(p.absent_below, absent_below.get(p.leaf_data, p.absent_below))
            existing = self.index.find(list(unique), absent_below)
            for p in unique.values():
                if p.leaf_data in existing:
                    index, tree_size = existing[p.leaf_data]
                    results[p.leaf_data] = Integrated(index, tree_size, p.leaf_data)
                else:
                    fresh.append(p)
            new_size = self.size + len(fresh)
            for offset, p in enumerate(fresh):
                results[p.leaf_data] = Integrated(self.size + offset, new_size, p.leaf_data)
            if fresh:
                self.db.conn.executemany(
                    "INSERT INTO entries (idx, entry_id, statement, tree_size, registered_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [(self.size + i, p.leaf_data, p.statement, new_size, now) for i, p in enumerate(fresh)],
                )
                self.index.add(self.size, [p.leaf_data for p in fresh])
                self._commit_head(new_size, now, [p.leaf_data for p in fresh], in_transaction=True)
            else:
                self.db.execute("COMMIT")
        except Exception as exc:  # noqa: BLE001 - the edge of the writer thread: fail the batch, keep going
            log.exception("integrating a batch of %d statements failed", len(batch))
            if self.db.conn.in_transaction:
                self.db.execute("ROLLBACK")
            self.tree.forget_uncommitted()
            self.index.rolled_back()
            self._settle(batch, {}, StorageError(f"the log could not commit this batch: {exc}"))
            return
        self.index.committed()
        first = self.size
        self.size = new_size
        if fresh and self.on_integrated is not None:
            # followers inside the service learn of the batch before any of its submitters hears back
            self.on_integrated([(first + i, p.statement) for i, p in enumerate(fresh)])
        self._settle(batch, results, None)

    def _commit_head(self, new_size: int, now: int, leaf_datas: list[bytes], in_transaction: bool = False) -> None:
        if not in_transaction:
            self.db.execute("BEGIN IMMEDIATE")
        try:
            if leaf_datas:
                appended = self.tree.append_leaf_data(leaf_datas)
                if appended != new_size:
                    raise LogCorrupted(f"the tree grew to {appended} leaves, expected {new_size}")
            root = self.tree.current_root()
            protected, signature = sign_tree_head(self.key, self.origin, root, now)
            note = sign_checkpoint(self.key, Checkpoint(self.origin, new_size, root))
            self.db.execute(
                "INSERT INTO tree_heads (tree_size, root, timestamp, checkpoint, receipt_protected, "
                "receipt_signature) VALUES (?, ?, ?, ?, ?, ?)",
                (new_size, root, now, note, protected, signature),
            )
            self.db.execute("COMMIT")
        except BaseException:
            if not in_transaction and self.db.conn.in_transaction:
                self.db.execute("ROLLBACK")
                self.tree.forget_uncommitted()
            raise

    def _settle(self, batch: list[_Pending], results: dict[bytes, Integrated], error: Exception | None) -> None:
        with self._pending_lock:
            for p in batch:
                left = self._pending.get(p.leaf_data, 1) - 1
                if left:
                    self._pending[p.leaf_data] = left
                else:
                    self._pending.pop(p.leaf_data, None)
        for p in batch:
            if error is not None:
                p.future.set_exception(error)
            else:
                p.future.set_result(results[p.leaf_data])
