"""The transparency service as a library: register statements, read receipts, checkpoints, proofs, tiles.

The HTTP routes and the in-process client both sit on this one object. It owns the sequencer (the only
writer) and a read connection; it keeps no state of its own beyond them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from schemas.cose_sign1 import decode_sign1
from schemas.errors import (
    DidWebEvidenceMissing,
    EntryNotFound,
    RegistrationPending,
)
from schemas.leaf import entry_id
from schemas.proofs import ConsistencyProof
from schemas.receipt import transparent_statement
from schemas.statement import parse_statement
from transparency.did_web import DidWebProver
from transparency.identity import IdentityFollower
from transparency.keys import LogKey, load_or_create_log_key, published_key_set, retired_public_keys
from transparency.log.merkle_tree import PersistentMerkleTree
from transparency.log.read_pool import ReadPool
from transparency.log.reader import LogReader, TreeHead
from transparency.log.resources import LoggedEntry, LogResources
from transparency.log.sequencer import Integrated, Sequencer
from transparency.log.storage import open_database
from transparency.publish import Publisher
from transparency.registration import Checked, Registrar, default_registrar
from transparency.settings import Settings
from verifier.did_web import service_signers
from verifier.keys import KeySet

T = TypeVar("T")


@dataclass(frozen=True)
class Submission:
    """The outcome of a registration: the entry id and its receipt, or no receipt yet (still running)."""

    leaf_data: bytes
    receipt: bytes | None


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
            settings.log_location, self.key, settings.origin,
            batch_max_entries=settings.batch_max_entries, batch_max_wait_ms=settings.batch_max_wait_ms,
            queue_limit=settings.queue_limit, on_integrated=self._integrated, retired_keys=retired,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._grown: asyncio.Event | None = None
        self.publisher: Publisher | None = None
        try:
            self.read_db = open_database(settings.log_location, create=False)
        except BaseException:
            self.sequencer.stop()
            raise
        self.reader = LogReader(self.read_db)
        self.tree = PersistentMerkleTree(self.read_db)
        self.resources = LogResources(self.reader, self.tree, settings.entries_page_limit)
        self.read_pool: ReadPool | None = None  # PostgreSQL: the registration's reads, off the event loop
        if self.read_db.backend == "postgresql":
            self.read_pool = ReadPool(settings.log_location, settings.entries_page_limit)
        try:
            self.identity.catch_up(self.reader)  # checks the entries it folds, too
        except BaseException:
            self.close()
            raise
        self.sequencer.start(self.identity.size)
        if settings.publish_dir is not None:
            try:
                self.publisher = Publisher(
                    settings.publish_dir, settings.log_location, self.key.note_key(settings.origin),
                    self.key_set_cbor, is_sequencer=lambda: self.sequencer.leading,
                )
            except BaseException:
                self.close()
                raise
            self.publisher.start()

    def close(self) -> None:
        if self.publisher is not None:
            self.publisher.stop()
        self.sequencer.stop()
        if self.read_pool is not None:
            self.read_pool.close()
        self.read_db.close()

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

    async def _read(self, read: Callable[[LogResources], T]) -> T:
        """A read of the registration path: on the loop (SQLite), or in the read pool (PostgreSQL)."""
        if self.read_pool is None:
            return read(self.resources)
        return await self.read_pool.run(read)

    async def _sequence(self, checked: Checked) -> Submission:
        """A statement already logged gets its receipt; the sequencer dedupes too (in the batch's transaction).
        On SQLite the entry is looked up first (microseconds), so the batch's dedupe checks only the entries
        logged since, which it keeps in memory. On PostgreSQL a lookup is a round trip per registration: the
        batch's dedupe, one query for the whole batch, does it instead."""
        looked_up = 0
        if self.read_pool is None:
            looked_up = self.sequencer.committed_size  # read first: the lookup below sees at least these entries
            existing = self.reader.entry_by_id(checked.leaf_data)
            if existing is not None:
                return Submission(checked.leaf_data, self._receipt_for(existing.index, existing.tree_size))
        future = self.sequencer.submit(checked.leaf_data, checked.logged, absent_below=looked_up)
        try:
            done: Integrated = await asyncio.wait_for(
                asyncio.shield(asyncio.wrap_future(future)), self.settings.registration_timeout_s
            )
        except TimeoutError:
            return Submission(checked.leaf_data, None)
        return Submission(done.leaf_data, await self._read(lambda resources: resources.receipt(done.index,
                                                                                                 done.tree_size)))

    # --- reads ------------------------------------------------------------------------------------

    def receipt(self, leaf_data: bytes) -> bytes | None:
        """The entry's receipt; ``None`` while it is still being registered; ``EntryNotFound`` otherwise."""
        row = self.reader.entry_by_id(leaf_data)
        if row is None:
            if self.sequencer.is_pending(leaf_data):
                return None
            raise EntryNotFound(f"no entry {leaf_data.hex()} in this log")
        return self._receipt_for(row.index, row.tree_size)

    def statement(self, leaf_data: bytes) -> bytes | None:
        """The transparent statement: the logged statement with its receipt in unprotected 394."""
        row = self.reader.entry_by_id(leaf_data)
        if row is None:
            return self.receipt(leaf_data)  # None while pending, else raises EntryNotFound
        receipt = self._receipt_for(row.index, row.tree_size)
        return transparent_statement(decode_sign1(row.statement), [receipt])

    def latest_head(self) -> TreeHead:
        return self.resources.latest_head()

    def checkpoint(self) -> str:
        return self.latest_head().checkpoint

    async def checkpoint_after(self, size: int, wait_s: float) -> str:
        """The checkpoint once the tree is larger than ``size``, or after ``wait_s`` whatever it is then."""
        if self._loop is None:
            self._loop, self._grown = asyncio.get_running_loop(), asyncio.Event()
        deadline = self._loop.time() + wait_s
        while self.latest_head().tree_size <= size and (left := deadline - self._loop.time()) > 0:
            grown = self._grown
            assert grown is not None
            try:
                await asyncio.wait_for(grown.wait(), left)
            except TimeoutError:
                break
        return self.checkpoint()

    def _integrated(self, entries: list[tuple[int, bytes]]) -> None:
        """In the sequencer thread, after a batch committed: fold it, then wake long polls."""
        self.identity.integrated(entries)
        if self.publisher is not None:
            self.publisher.notify()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        if self._grown is not None:
            self._grown.set()
            self._grown = asyncio.Event()  # waiters hold the old one, already set

    def consistency(self, old: int, new: int) -> ConsistencyProof:
        return self.resources.consistency(old, new)

    def entries(self, start: int, limit: int) -> list[LoggedEntry]:
        """Entries in log order from ``start``, each with its receipt, for followers."""
        return self.resources.entries(start, limit)

    def _receipt_for(self, index: int, tree_size: int) -> bytes:
        return self.resources.receipt(index, tree_size)

    # --- C2SP tlog-tiles, and statement bundles -------------------------------------------------

    def tile(self, level: int, index: int, width: int) -> bytes:
        """Hashes at tree level ``8 * level``, ``index``-th group of 256, first ``width`` of them."""
        return self.resources.tile(level, index, width)

    def entry_bundle(self, index: int, width: int) -> bytes:
        """Entry bundle: each entry is its ``leaf_data``, prefixed by its 2-byte big-endian length."""
        return self.resources.entry_bundle(index, width)

    def statement_bundle(self, index: int, width: int) -> bytes:
        """Statement bundle (``schemas.tiles``): entries ``256 * index`` on with their receipts."""
        return self.resources.statement_bundle(index, width)
