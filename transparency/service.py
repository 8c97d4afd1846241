"""The transparency service as a library: register statements, read receipts, checkpoints, proofs, tiles.

The HTTP routes and the in-process client both sit on this one object. It owns the sequencer (the only
writer), a read connection per thread that reads, two pools of read threads (``transparency.log.read_threads``)
and the latest signed tree head (kept in memory by the sequencer's callback: GET /checkpoint reads nothing). Every
read method reads one snapshot of the log and may be called from any thread; the routes run those that cost more
than an indexed row or two off the event loop: pages of entries in one thread of their own (``read_pages``), the
others (a receipt, a proof, a tile, a registration's look-up and receipt) in ``read_threads`` threads (``read``),
so they never queue behind pages.

One thread for pages, at a lower priority: a page of 1000 entries with their receipts is some 130 ms of Python,
which holds the GIL whatever thread it runs in. Two page threads read no more pages per second than one, but the
event loop then waits for the GIL behind two busy threads instead of one; and when the machine's cores are busy,
a page thread at the loop's priority takes CPU time the loop needed. With six concurrent page readers on the
shared 2-core machine, GET /checkpoint took 2.9-3.7x its idle time with two page threads, 1.9-2.3x with one,
0.9-1.1x with one at nice 10 (``tools/bench/checkpoint_under_readers.py``, docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from schemas import cbor
from schemas.cose_sign1 import decode_sign1
from schemas.errors import (
    DidWebEvidenceMissing,
    EntryNotFound,
    InvalidParameter,
    LogCorrupted,
    NotFound,
    RegistrationPending,
)
from schemas.leaf import entry_id
from schemas.proofs import ConsistencyProof, InclusionProof
from schemas.receipt import transparent_statement
from schemas.statement import parse_statement
from schemas.tiles import TILE_HEIGHT, TILE_WIDTH
from transparency.did_web import DidWebProver
from transparency.identity import IdentityFollower
from transparency.keys import LogKey, load_or_create_log_key, published_key_set, retired_public_keys
from transparency.log.merkle_tree import PersistentMerkleTree
from transparency.log.read_threads import ReadPool, ReadViews
from transparency.log.sequencer import Integrated, Sequencer
from transparency.log.store import EntryRow, LogReader, TreeHead
from transparency.receipts import assemble_receipt
from transparency.registration import Checked, Registrar, default_registrar
from transparency.settings import Settings
from verifier.did_web import service_signers
from verifier.keys import KeySet

P = ParamSpec("P")
T = TypeVar("T")

PAGE_THREAD_NICE = 10
"""The page thread's scheduling priority (Linux nice), below the event loop's: see the module docstring."""


@dataclass(frozen=True)
class Submission:
    """The outcome of a registration: the entry id and its receipt, or no receipt yet (still running)."""

    leaf_data: bytes
    receipt: bytes | None


@dataclass(frozen=True)
class LoggedEntry:
    index: int
    statement: bytes
    receipt: bytes


class TransparencyService:
    def __init__(self, settings: Settings, registrar: Registrar | None = None) -> None:
        self.settings = settings
        self.key: LogKey = load_or_create_log_key(settings.key_path)
        retired = retired_public_keys(settings.retired_keys_dir)
        self.key_set: KeySet = published_key_set(self.key, retired)
        self.key_set_cbor = self.key_set.encode()
        self.identity = IdentityFollower(service_signers(self.key_set))
        self.registrar = registrar or default_registrar(self.identity)
        self.did_web = DidWebProver.from_settings(self.key.private, settings)
        # opening the log runs the start-up checks (transparency.log.checks): a corrupted log raises here
        self.sequencer = Sequencer(
            settings.db_path, self.key, settings.origin,
            batch_max_entries=settings.batch_max_entries, batch_max_wait_ms=settings.batch_max_wait_ms,
            queue_limit=settings.queue_limit, on_integrated=self._integrated, retired_keys=retired,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._grown: asyncio.Event | None = None
        self.views = ReadViews(settings.db_path)
        self.read_pool = ReadPool(settings.read_threads)
        self.page_pool = ReadPool(1, nice=PAGE_THREAD_NICE, name="log-pages")
        try:
            self.identity.catch_up(self.reader)  # checks the entries it folds, too
        except BaseException:
            self.close()
            raise
        self._head_lock = threading.Lock()
        self._head = self.latest_head()  # the latest signed tree head, kept up to date by _integrated
        self.sequencer.start()

    def close(self) -> None:
        self.sequencer.stop()
        self.read_pool.close()
        self.page_pool.close()
        self.views.close()

    @property
    def reader(self) -> LogReader:
        """The calling thread's reader."""
        return self.views.current().reader

    @property
    def tree(self) -> PersistentMerkleTree:
        """The calling thread's Merkle tree."""
        return self.views.current().tree

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        with self.views.current().snapshot():
            yield

    async def read(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` in a read thread: the event loop goes on meanwhile."""
        return await self.read_pool.run(fn, *args, **kwargs)

    async def read_pages(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` in the thread that reads pages of entries, one at a time."""
        return await self.page_pool.run(fn, *args, **kwargs)

    # --- writes -----------------------------------------------------------------------------------

    async def register(self, body: bytes) -> Submission:
        """Check, then sequence; wait for the batch up to the registration timeout."""
        return await self._sequence(await self._check(body))

    async def _check(self, body: bytes) -> Checked:
        """The registrar's check; a did:web operator registration that lacks evidence gets it first: the log
        fetches the DID document, registers its signed ``did-web-evidence`` and waits until it is folded
        (``transparency.did_web``). Any failure to get it refuses the registration and logs nothing."""
        try:
            return self.registrar.check(body)
        except DidWebEvidenceMissing:
            evidence = await self.did_web.evidence(parse_statement(body))
        logged = await self._sequence(self.registrar.check(evidence))
        if logged.receipt is None:
            raise RegistrationPending(f"the did:web evidence {entry_id(logged.leaf_data)} is still being "
                                      "registered; submit the registration again")
        return self.registrar.check(body)

    async def _sequence(self, checked: Checked) -> Submission:
        looked_up, existing = await self.read(self._look_up, checked.leaf_data)
        if existing is not None:
            return Submission(checked.leaf_data, existing)
        # the sequencer's dedupe then checks only the entries logged since (it keeps those in memory)
        future = self.sequencer.submit(checked.leaf_data, checked.logged, absent_below=looked_up)
        try:
            done: Integrated = await asyncio.wait_for(
                asyncio.shield(asyncio.wrap_future(future)), self.settings.registration_timeout_s
            )
        except TimeoutError:
            return Submission(checked.leaf_data, None)
        return Submission(done.leaf_data, await self.read(self._receipt_for, done.index, done.tree_size))

    def _look_up(self, leaf_data: bytes) -> tuple[int, bytes | None]:
        """The tree size, then the entry's receipt if the log holds it (so it is absent below that size if not)."""
        with self._snapshot():
            looked_up = self.latest_head().tree_size
            row = self.reader.entry_by_id(leaf_data)
            return looked_up, None if row is None else self._receipt_for(row.index, row.tree_size)

    # --- reads ------------------------------------------------------------------------------------

    def receipt(self, leaf_data: bytes) -> bytes | None:
        """The entry's receipt; ``None`` while it is still being registered; ``EntryNotFound`` otherwise."""
        with self._snapshot():
            row = self._entry(leaf_data)
            return None if row is None else self._receipt_for(row.index, row.tree_size)

    def statement(self, leaf_data: bytes) -> bytes | None:
        """The transparent statement: the logged statement with its receipt in unprotected 394."""
        with self._snapshot():
            row = self._entry(leaf_data)
            if row is None:
                return None
            receipt = self._receipt_for(row.index, row.tree_size)
        return transparent_statement(decode_sign1(row.statement), [receipt])

    def _entry(self, leaf_data: bytes) -> EntryRow | None:
        """The logged entry; ``None`` while it is still being registered; ``EntryNotFound`` otherwise."""
        pending = self.sequencer.is_pending(leaf_data)  # first: an entry integrated after this is in the read
        row = self.reader.entry_by_id(leaf_data)
        if row is None and not pending:
            raise EntryNotFound(f"no entry {leaf_data.hex()} in this log")
        return row

    def latest_head(self) -> TreeHead:
        head = self.reader.latest_head()
        if head is None:
            raise LogCorrupted("the log has no signed tree head")
        return head

    def checkpoint(self) -> str:
        """The latest checkpoint, from memory (no read on the event loop)."""
        return self._head.checkpoint

    async def checkpoint_after(self, size: int, wait_s: float) -> str:
        """The checkpoint once the tree is larger than ``size``, or after ``wait_s`` whatever it is then."""
        if self._loop is None:
            self._loop, self._grown = asyncio.get_running_loop(), asyncio.Event()
        deadline = self._loop.time() + wait_s
        while self._head.tree_size <= size and (left := deadline - self._loop.time()) > 0:
            grown = self._grown
            assert grown is not None
            try:
                await asyncio.wait_for(grown.wait(), left)
            except TimeoutError:
                break
        return self.checkpoint()

    def _integrated(self, entries: list[tuple[int, bytes]]) -> None:
        """In the sequencer thread, after a batch committed: keep its head, fold it, then wake long polls."""
        head = self.latest_head()
        with self._head_lock:
            if head.tree_size > self._head.tree_size:
                self._head = head
        self.identity.integrated(entries)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        if self._grown is not None:
            self._grown.set()
            self._grown = asyncio.Event()  # waiters hold the old one, already set

    def consistency(self, old: int, new: int) -> ConsistencyProof:
        with self._snapshot():
            size = self.latest_head().tree_size
            if not 1 <= old <= new <= size:
                raise InvalidParameter(f"need 1 <= old <= new <= {size} (the current tree size); got {old}, {new}")
            return ConsistencyProof(old, new, self.tree.consistency_path(old, new))

    def entries(self, start: int, limit: int) -> list[LoggedEntry]:
        """Entries in log order from ``start``, each with its receipt, for followers."""
        if start < 0 or limit < 1:
            raise InvalidParameter("start must be >= 0 and limit >= 1")
        with self._snapshot():
            size = self.latest_head().tree_size
            limit = min(limit, self.settings.entries_page_limit)
            return [self._logged(r) for r in self.reader.entries(start, limit) if r.index < size]

    def _logged(self, row: EntryRow) -> LoggedEntry:
        return LoggedEntry(row.index, row.statement, self._receipt_for(row.index, row.tree_size))

    def _receipt_for(self, index: int, tree_size: int) -> bytes:
        view = self.views.current()
        head = view.reader.head(tree_size)
        if head is None:
            raise LogCorrupted(f"entry {index} names tree head {tree_size}, which is missing")
        proof = InclusionProof(tree_size, index, view.tree.inclusion_path(index, tree_size))
        return assemble_receipt(head.receipt_protected, head.receipt_signature, proof)

    # --- C2SP tlog-tiles ------------------------------------------------------------------------

    def tile(self, level: int, index: int, width: int) -> bytes:
        """Hashes at tree level ``8 * level``, ``index``-th group of 256, first ``width`` of them."""
        with self._snapshot():
            size = self.latest_head().tree_size
            available = (size >> (TILE_HEIGHT * level)) - index * TILE_WIDTH
            if available < width:
                raise NotFound(f"tile {level}/{index} has {max(available, 0)} hashes in the tree of size {size}")
            start = index * TILE_WIDTH
            hashes = self.reader.node_hashes(TILE_HEIGHT * level, start, start + width)
        if len(hashes) != width:
            raise LogCorrupted(f"tile {level}/{index} is missing stored hashes")
        return b"".join(hashes)

    def entry_bundle(self, index: int, width: int) -> bytes:
        """Entry bundle: each entry is its ``leaf_data``, prefixed by its 2-byte big-endian length."""
        with self._snapshot():
            size = self.latest_head().tree_size
            start = index * TILE_WIDTH
            if size - start < width:
                raise NotFound(f"entry bundle {index} has {max(size - start, 0)} entries in the tree of size {size}")
            return b"".join(len(d).to_bytes(2, "big") + d for d in self.reader.leaf_datas(start, start + width))


def encode_entries(entries: list[LoggedEntry]) -> bytes:
    """Follower page: CBOR array of ``[index, logged statement, receipt]``."""
    return cbor.encode([[e.index, e.statement, e.receipt] for e in entries])
