"""The sequencer: the one writer of the log, on either backend.

Checked statements are queued; a dedicated thread takes a batch (up to ``batch_max_entries``, waiting at
most ``batch_max_wait_ms`` for more), and integrates it in ONE transaction: entry rows, Merkle nodes, the
new tree head with its signed checkpoint and its shared receipt signature. Only after COMMIT (SQLite: WAL,
synchronous=FULL; PostgreSQL: synchronous_commit=on) are the submitters told their index, so no receipt is
ever issued for an entry that is not durably committed. A statement already in the log (or twice in one
batch) gets the existing entry back: the batch's ids are looked up in the entry-id index
(``entry_index.EntryIndexWriter``) inside the same transaction, and the new entries are added to it there
too, so the index is never behind the log.

The sequencer holds no SQL: it writes through ``writer.LogWriter``, ``merkle_tree`` and ``entry_index``, reads
through ``reader.LogReader``, and asks the backend's ``Coordination`` who integrates. On SQLite its process is
the sequencer. On PostgreSQL several processes may serve one log: the one holding the sequencer's lock
integrates (its own submissions and those the others queued); the others *stand by*: they forward the
statements they checked to the queue, follow the log as it grows (``on_integrated``, as after their own
batches) and answer their submitters once the sequencer has integrated their statements; when the lock is
free, the first to take it runs the start-up checks and carries on (``postgres_storage``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature

from schemas.checkpoint import Checkpoint
from schemas.errors import (
    ConfigurationError,
    LogCorrupted,
    Overloaded,
    StorageError,
    TreeHeadCorrupted,
    TreeNodeCorrupted,
)
from schemas.proofs import InclusionProof
from transparency.keys import LogKey, published_key_set
from transparency.log.checks import (
    check_contiguous,
    check_entries_end,
    check_leaf,
    check_leaves_held,
    check_signed_head,
    head_keys,
    statement_id,
)
from transparency.log.entry_index import MERGE_FANIN, SEAL_ENTRIES, EntryIndexWriter
from transparency.log.merkle_tree import PersistentMerkleTree
from transparency.log.reader import LogReader, TreeHead
from transparency.log.storage import (
    PENDING,
    LogLocation,
    Queued,
    describe,
    open_coordination,
    open_database,
)
from transparency.log.writer import LogWriter
from transparency.receipts import assemble_receipt, sign_checkpoint, sign_tree_head
from verifier.keys import PublicKey

log = logging.getLogger(__name__)

QUEUE_SEAL = b"tabellion queued statement v1\x00"
"""Signed with the log key, followed by the entry id, by a process that queues a statement it checked."""
OPEN_TIMEOUT_S = 30.0  # a process standing by waits this long for the sequencer to sign the first head
FOLLOW_PAGE = 1000  # entries read at a time by a process standing by


@dataclass(frozen=True)
class Integrated:
    """Where a statement landed: its 0-based index and the signed tree head that covers it; for an entry this
    process's batch appended, its receipt too (built with the batch: ``_receipts``), else ``None`` (an entry
    that was in the log already, or one another process's sequencer appended: read it)."""

    index: int
    tree_size: int
    leaf_data: bytes
    receipt: bytes | None = None


@dataclass(frozen=True)
class _Pending:
    leaf_data: bytes
    statement: bytes
    future: Future[Integrated] | asyncio.Future[Integrated]  # an asyncio one: ``submit_waiting``


@dataclass(frozen=True)
class _SignedBatch:
    """A committed batch's head: its size, the receipts' protected header and shared signature, and the audit
    path of each entry it appended."""

    tree_size: int
    protected: bytes
    signature: bytes
    paths: list[tuple[bytes, ...]]


@dataclass(frozen=True)
class _Wake:
    kind: str  # storage.PENDING or storage.INTEGRATED


_STOP = object()


class Sequencer:
    def __init__(
        self, location: LogLocation, key: LogKey, origin: str, *, batch_max_entries: int = 256,
        batch_max_wait_ms: float = 1.0, queue_limit: int = 4096,
        on_integrated: Callable[[list[tuple[int, bytes]]], None] | None = None,
        index_seal_entries: int = SEAL_ENTRIES, index_fanin: int = MERGE_FANIN,
        retired_keys: Sequence[PublicKey] = (), open_timeout_s: float = OPEN_TIMEOUT_S,
    ) -> None:
        self.location = location
        self.key = key
        self.origin = origin
        self.head_keys = head_keys(origin, published_key_set(key, list(retired_keys)))  # heads it signed before
        self.batch_max_entries = batch_max_entries
        self.batch_max_wait = batch_max_wait_ms / 1000.0
        self.queue_limit = queue_limit
        self.on_integrated = on_integrated
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._full = threading.Event()  # set by a submitter that fills a batch, or by the intake after a group
        self._pending: dict[bytes, int] = {}
        self._pending_lock = threading.Lock()
        self._forwarded: dict[bytes, list[_Pending]] = {}  # standing by: queued for the sequencer, by entry id
        self._thread: threading.Thread | None = None
        self.db = open_database(location)
        self.reader = LogReader(self.db)
        self.writer = LogWriter(self.db)
        self.tree = PersistentMerkleTree(self.db)
        self.index = EntryIndexWriter(self.db, seal_entries=index_seal_entries, fanin=index_fanin)
        self.coordination = open_coordination(self.db, location)
        self.size = 0  # the sequencer: the log's size; standing by: the entries handed to ``on_integrated``
        self.committed_head: TreeHead | None = None  # the head this process's last batch committed
        self.leading = False
        try:
            self._open(open_timeout_s)
        except BaseException:
            self.coordination.close()
            self.db.close()
            raise

    # --- start-up ---------------------------------------------------------------------------------

    def _open(self, timeout_s: float) -> None:
        """Become the sequencer if nobody is, else stand by (once the sequencer has signed a first head)."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.coordination.try_lead():
                self.leading = True
                self._open_log()
                return
            head = self.reader.latest_head()
            if head is not None:
                self._check_standing_by()
                return
            if time.monotonic() > deadline:
                raise ConfigurationError(
                    f"the log {describe(self.location)} has no signed tree head yet and another process holds "
                    f"its sequencer's lock"
                )
            time.sleep(0.05)

    def _open_log(self) -> None:
        """Check what the start loads, cheaply (``transparency.log.checks``; ``tabellion fsck`` checks all of the
        log): the latest head is one the log signed; the entries end where it does (one seek); the stored tree's
        root, from its O(log n) frontier nodes, is its root; the index runs tile the log; the ids the writer
        loaded for its dedupe are the leaves the tree holds (a bounded window). Sign the empty head on first
        start."""
        stored = self.reader.meta("origin")
        self._check_origin(self.writer.record_origin(self.origin) if stored is None else stored)
        self.tree.forget_uncommitted()
        head = self.reader.latest_head()
        tree_size = self.tree.get_size()
        if head is None:
            if tree_size or self.reader.entries_end():
                raise TreeHeadCorrupted("the log has leaves but no signed tree head")
            self.db.begin()
            try:
                self._commit_head(0, int(time.time()), [])
            except BaseException:
                self.db.rollback()
                self.tree.forget_uncommitted()
                raise
            self.index.load_recent()
            return
        self._check_head(head, tree_size)
        self.size = head.tree_size
        self.index.load_recent()
        self._check_loaded_ids()

    def _check_head(self, head: TreeHead, tree_size: int) -> None:
        check_signed_head(head, self.head_keys)
        check_entries_end(head.tree_size, self.reader.entries_end())
        if head.tree_size != tree_size or head.root != self.tree.current_root():
            raise TreeNodeCorrupted(
                f"the stored tree (size {tree_size}) does not match the latest signed head "
                f"(size {head.tree_size}); refusing to sign anything"
            )
        self.index.check(head.tree_size)

    def _check_standing_by(self) -> None:
        """The same checks as the sequencer's, read-only and on one snapshot (the log grows meanwhile)."""
        self.db.begin_snapshot()
        try:
            stored = self.reader.meta("origin")
            if stored is None:
                raise LogCorrupted("the log's origin is not recorded (meta)")
            self._check_origin(stored)
            head = self.reader.latest_head()
            if head is None:
                raise TreeHeadCorrupted("the log's signed tree head is gone")
            self._check_head(head, self.tree.get_size())
            self.size = head.tree_size
        finally:
            self.db.rollback()
            self.tree.forget_uncommitted()  # read again when this process takes over

    def _check_loaded_ids(self) -> None:
        """The entries whose ids the writer keeps in memory (``EntryIndexWriter.recent_from`` to the size) are
        contiguous and their ids the leaves the tree holds; a mismatch is settled with the entry's statement."""
        start = self.index.recent_from
        rows = self.reader.entry_ids(start, self.size)
        leaves = self.reader.node_hashes(0, start, self.size)
        for index in check_leaves_held(start, rows, leaves):
            row = self.reader.entries(index, 1)[0]
            recomputed, why = statement_id(row.statement)
            check_leaf(index, row.leaf_data, recomputed, leaves[index - start], why)

    def _check_origin(self, stored: str) -> None:
        if stored != self.origin:
            raise ConfigurationError(f"this log's origin is {stored!r}; it cannot be served as {self.origin!r}")

    # --- submitting -------------------------------------------------------------------------------

    def start(self, followed: int | None = None) -> None:
        """Start integrating (or standing by). ``followed``: how many entries ``on_integrated``'s owner has
        already folded from the log (standing by, the log may have grown since this sequencer opened it)."""
        if followed is not None and not self.leading:
            self.size = followed
        self._thread = threading.Thread(target=self._run, name="tabellion-sequencer", daemon=True)
        self._thread.start()
        self.coordination.listen(lambda kind: self._queue.put(_Wake(kind)))

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
        self.coordination.close()
        self.db.close()

    def submit(self, leaf_data: bytes, statement: bytes) -> Future[Integrated]:
        """Queue a checked statement."""
        future: Future[Integrated] = Future()
        self._enqueue(_Pending(leaf_data, statement, future))
        return future

    def submit_waiting(self, leaf_data: bytes, statement: bytes) -> asyncio.Future[Integrated]:
        """``submit`` from a coroutine: the answer is a future of the running event loop. The sequencer settles
        the futures of one batch with one wake-up of their loop (``call_soon_threadsafe``), not one per
        statement as a ``concurrent.futures.Future`` wrapped for the loop would take."""
        future: asyncio.Future[Integrated] = asyncio.get_running_loop().create_future()
        self.submit_to(leaf_data, statement, future)
        return future

    def submit_to(self, leaf_data: bytes, statement: bytes, future: asyncio.Future[Integrated]) -> None:
        """``submit_waiting`` from any thread (the intake's): ``future``, of the submitter's loop, is settled as
        ``submit_waiting``'s is. ``Overloaded`` if the queue is full."""
        self._enqueue(_Pending(leaf_data, statement, future))

    def handed_over(self) -> None:
        """A submitter (the intake) has queued everything it had: the batch waiting for more need not wait for
        ``batch_max_wait_ms`` to pass; it takes what is queued now."""
        self._full.set()

    def _enqueue(self, pending: _Pending) -> None:
        if self._queue.qsize() >= self.queue_limit:
            raise Overloaded(f"{self.queue_limit} statements are waiting to be sequenced; retry shortly", 1)
        with self._pending_lock:
            self._pending[pending.leaf_data] = self._pending.get(pending.leaf_data, 0) + 1
        self._queue.put(pending)
        if self._queue.qsize() + 1 >= self.batch_max_entries:  # with the one the sequencer holds: a full batch
            self._full.set()

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
            try:
                item = self._queue.get(timeout=self.coordination.poll_s)
            except queue.Empty:
                item = _Wake(PENDING)  # a periodic look at the queue and the lock
            if item is _STOP:
                return
            batch = [item] if isinstance(item, _Pending) else []
            wakes = {item.kind} if isinstance(item, _Wake) else set()
            stop_after = False
            if batch:
                # wait for more up to batch_max_wait (less if a batch's worth comes, or the intake has handed over
                # all it had), then take what came: the submitters do not wake this thread one by one
                self._full.wait(self.batch_max_wait)
                self._full.clear()
                while len(batch) < self.batch_max_entries:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is _STOP:
                        stop_after = True
                        break
                    if isinstance(nxt, _Pending):
                        batch.append(nxt)
                    elif isinstance(nxt, _Wake):
                        wakes.add(nxt.kind)
            self._step(batch, claim=PENDING in wakes)  # queued by other processes (or a periodic look)
            if stop_after:
                return

    def _step(self, batch: list[_Pending], *, claim: bool) -> None:
        if not self.leading:
            try:
                if batch:
                    self._forward(batch)
                    batch = []
                self._follow()
                if not self.coordination.try_lead():
                    return
                self._take_over()
            except Exception:  # noqa: BLE001 - the edge of the writer thread: say so, stand by again
                log.exception("standing by for the log's sequencer failed")
                self._settle(batch, {}, StorageError("the log could not queue this statement"))
                self._recover()
                return
            claim = True
        claim = claim and self.coordination.shared
        if batch or claim:
            self._integrate(batch, claim=claim)

    def _integrate(self, batch: list[_Pending], *, claim: bool = False) -> None:
        now = int(time.time())
        results: dict[bytes, Integrated] = {}
        fresh: list[tuple[bytes, bytes]] = []
        signed: _SignedBatch | None = None
        try:
            self.db.begin()
            self.writer.check_size(self.size)
            queued = self._sealed(self.coordination.claim(self.batch_max_entries)) if claim else []
            unique: dict[bytes, bytes] = {}
            items: list[_Pending | Queued] = [*batch, *queued]
            for item in items:
                unique.setdefault(item.leaf_data, item.statement)  # the same statement twice: one entry
            existing = self.index.find(list(unique)) if unique else {}
            for leaf_data, statement in unique.items():
                if leaf_data in existing:
                    index, tree_size = existing[leaf_data]
                    results[leaf_data] = Integrated(index, tree_size, leaf_data)
                else:
                    fresh.append((leaf_data, statement))
            new_size = self.size + len(fresh)
            if fresh:
                leaf_datas = [leaf_data for leaf_data, _ in fresh]
                self.index.add(self.size, leaf_datas)  # it reads the index's runs: before the writes sent at once
                with self.db.pipeline():  # PostgreSQL: the entries, nodes, head and COMMIT in one round trip
                    self.writer.append_entries(self.size, new_size, now, fresh)
                    signed = self._commit_head(new_size, now, leaf_datas)
            else:
                if queued:  # all in the log already: their processes look them up
                    self.coordination.announce(self.size)
                self.db.commit()
        except Exception as exc:  # noqa: BLE001 - the edge of the writer thread: fail the batch, keep going
            log.exception("integrating a batch of %d statements failed", len(batch))
            if self.db.in_transaction:
                self.db.rollback()
            self.tree.forget_uncommitted()
            self.index.rolled_back()
            self._settle(batch, {}, StorageError(f"the log could not commit this batch: {exc}"))
            self._recover()
            return
        self.index.committed()
        first = self.size
        self.size = new_size
        if signed is not None:  # committed: the receipts may go out
            results.update(self._receipts(first, [leaf_data for leaf_data, _ in fresh], signed))
        if fresh and self.on_integrated is not None:
            # followers inside the service learn of the batch before any of its submitters hears back
            self.on_integrated([(first + i, statement) for i, (_, statement) in enumerate(fresh)])
        self._settle(batch, results, None)
        self._answer_forwarded(results)

    def _sealed(self, queued: list[Queued]) -> list[Queued]:
        """The queued statements whose seal verifies under the log key, for the entry id their statement has; the
        others are dropped with the claim (a warning names them)."""
        sealed = []
        for item in queued:
            recomputed, _ = statement_id(item.statement)
            try:
                if recomputed != item.leaf_data:
                    raise InvalidSignature
                self.key.public.verify(item.seal, QUEUE_SEAL + item.leaf_data)
            except InvalidSignature:
                log.warning("dropped a queued statement (entry id %s) that no serve process of this log sealed",
                            item.leaf_data.hex()[:64])
                continue
            sealed.append(item)
        return sealed

    def _commit_head(self, new_size: int, now: int, leaf_datas: list[bytes]) -> _SignedBatch:
        """Inside the open transaction: append the leaves, sign and write the new head, COMMIT (on PostgreSQL the
        database announces the new head to the processes standing by). The audit paths of the appended leaves
        come from the append itself (``PersistentMerkleTree.append_leaf_data_with_paths``: in memory)."""
        paths: list[tuple[bytes, ...]] = []
        if leaf_datas:
            appended, paths = self.tree.append_leaf_data_with_paths(leaf_datas)
            if appended != new_size:
                raise LogCorrupted(f"the tree grew to {appended} leaves, expected {new_size}")
        root = self.tree.current_root()
        protected, signature = sign_tree_head(self.key, self.origin, root, now)
        note = sign_checkpoint(self.key, Checkpoint(self.origin, new_size, root))
        self.writer.append_head(new_size, root, now, note, protected, signature)
        self.db.commit()
        self.committed_head = TreeHead(new_size, root, now, note, protected, signature)
        return _SignedBatch(new_size, protected, signature, paths)

    @staticmethod
    def _receipts(first: int, leaf_datas: list[bytes], signed: _SignedBatch) -> dict[bytes, Integrated]:
        """After COMMIT: the receipt of each entry the batch appended, with the head's one signature and the
        entry's audit path, the same bytes ``LogResources.receipt`` reads back from the stored tree."""
        return {
            leaf_data: Integrated(first + offset, signed.tree_size, leaf_data, assemble_receipt(
                signed.protected, signed.signature, InclusionProof(signed.tree_size, first + offset, path)))
            for offset, (leaf_data, path) in enumerate(zip(leaf_datas, signed.paths, strict=True))
        }

    def _recover(self) -> None:
        """After a failure: a lost PostgreSQL session is opened again, and with it the sequencer's lock is gone:
        stand by (and take the lock again, with the start-up checks, if nobody else does)."""
        reconnect = getattr(self.db, "reconnect", None)
        if reconnect is None or not getattr(self.db, "broken", False):
            return
        if self.leading:
            log.warning("the log's database connection was lost: this process no longer sequences the log")
        self.leading = False
        self.tree.forget_uncommitted()
        try:
            reconnect()
        except Exception:  # noqa: BLE001 - the next step tries again
            log.exception("reconnecting to the log's database failed")

    # --- standing by ------------------------------------------------------------------------------

    def _forward(self, batch: list[_Pending]) -> None:
        self.coordination.forward([Queued(p.leaf_data, p.statement, self.key.sign(QUEUE_SEAL + p.leaf_data))
                                   for p in batch])
        for p in batch:
            self._forwarded.setdefault(p.leaf_data, []).append(p)

    def _follow(self) -> None:
        """Hand the entries the sequencer committed since the last look to ``on_integrated``, and answer the
        submitters whose statements they are (or that were in the log already)."""
        head = self.reader.latest_head()
        if head is None or (head.tree_size <= self.size and not self._forwarded):
            return
        while self.size < head.tree_size:
            rows = self.reader.entries(self.size, min(FOLLOW_PAGE, head.tree_size - self.size))
            if not rows:
                raise TreeHeadCorrupted(f"the log has no entry {self.size} below its signed size {head.tree_size}")
            for offset, row in enumerate(rows):
                check_contiguous(self.size + offset, row.index)
            if self.on_integrated is not None:
                self.on_integrated([(row.index, row.statement) for row in rows])
            self.size += len(rows)
            self._answer_forwarded({row.leaf_data: Integrated(row.index, row.tree_size, row.leaf_data)
                                    for row in rows})
        if self._forwarded:  # deduplicated against an older entry by the sequencer: no new entry names them
            waiting = list(self._forwarded)
            still = self.coordination.still_queued(waiting)
            for leaf_data in waiting:
                found = None if leaf_data in still else self.reader.entry_by_id(leaf_data)
                if found is not None:
                    self._answer_forwarded({leaf_data: Integrated(found.index, found.tree_size, leaf_data)})

    def _take_over(self) -> None:
        """This process now holds the sequencer's lock: fold what the last sequencer committed, check the log as
        a start does, and integrate from here on (what was queued, first)."""
        self._follow()
        followed = self.size
        self._open_log()
        if self.size != followed:
            raise TreeHeadCorrupted(f"the log is of size {self.size} but {followed} entries were followed")
        self.leading = True
        log.warning("this process is now the sequencer of the log (size %d)", self.size)

    def _answer_forwarded(self, results: dict[bytes, Integrated]) -> None:
        if not self._forwarded:
            return
        for leaf_data, integrated in results.items():
            waiting = self._forwarded.pop(leaf_data, None)
            if waiting:
                self._settle(waiting, {leaf_data: integrated}, None)

    def _settle(self, batch: list[_Pending], results: dict[bytes, Integrated], error: Exception | None) -> None:
        with self._pending_lock:
            for p in batch:
                left = self._pending.get(p.leaf_data, 1) - 1
                if left:
                    self._pending[p.leaf_data] = left
                else:
                    self._pending.pop(p.leaf_data, None)
        on_loops: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Integrated], Integrated | None]]] = {}
        for p in batch:
            if isinstance(p.future, asyncio.Future):
                on_loops.setdefault(p.future.get_loop(), []).append(
                    (p.future, None if error is not None else results[p.leaf_data]))
            elif error is not None:
                p.future.set_exception(error)
            else:
                p.future.set_result(results[p.leaf_data])
        for loop, settled in on_loops.items():
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits on it any more
                loop.call_soon_threadsafe(_settle_on_loop, settled, error)


def _settle_on_loop(
    settled: list[tuple[asyncio.Future[Integrated], Integrated | None]], error: Exception | None
) -> None:
    """On the submitters' event loop: answer a batch's waiters (those still waiting)."""
    for future, result in settled:
        if future.done():
            continue
        if result is None:
            future.set_exception(error or StorageError("the log could not commit this batch"))
        else:
            future.set_result(result)
