"""The transparency service as a library: register statements, read receipts, checkpoints, proofs, tiles.

The HTTP routes and the in-process client both sit on this one object. It owns the intake (registrations are
checked in its thread: ``transparency.intake``), the sequencer (the only writer, on SQLite or PostgreSQL:
``transparency.log.storage``; it hands back each new entry's receipt with its batch), the publisher of static
files if asked (``transparency.publish``), a read connection per thread that reads, two pools of read threads
(``transparency.log.read_threads``) and the latest signed tree head (kept in memory by the sequencer's callback:
GET /checkpoint reads nothing). Every read method reads one snapshot of the log and may be called from any thread;
the routes run those that cost more than an indexed row or two off the event loop: pages of entries in one thread
of their own (``read_pages``), the others (a receipt, a proof, a tile, the receipt of a statement that was logged
already) in ``read_threads`` threads (``read``), so they never queue behind pages.

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

from schemas.cose_sign1 import decode_sign1
from schemas.errors import (
    CheckpointNotWitnessed,
    ConfigurationError,
    DidWebEvidenceMissing,
    EntryNotFound,
    MalformedPolicy,
    Overloaded,
    RegistrationPending,
)
from schemas.leaf import entry_id
from schemas.policy import parse_policy
from schemas.proofs import ConsistencyProof
from schemas.receipt import transparent_statement
from schemas.statement import SignedStatement, parse_statement
from transparency.did_web import DidWebProver
from transparency.identity import IdentityFollower
from transparency.intake import Intake, Registration
from transparency.keys import LogKey, load_or_create_log_key, published_key_set, retired_public_keys
from transparency.log.merkle_tree import PersistentMerkleTree
from transparency.log.read_threads import ReadPool, ReadViews
from transparency.log.reader import EntryRow, LogReader, TreeHead
from transparency.log.resources import LoggedEntry, LogResources
from transparency.log.sequencer import Integrated, Sequencer
from transparency.log.storage import open_database
from transparency.publish import Publisher
from transparency.registration import Checked, Registrar, default_registrar
from transparency.settings import Settings
from transparency.witnessing import CosignatureGatherer, LogView
from verifier.did_key import did_key_from_public
from verifier.did_web import service_signers
from verifier.keys import KeySet

P = ParamSpec("P")
T = TypeVar("T")

PAGE_THREAD_NICE = 10
"""The page thread's scheduling priority (Linux nice), below the event loop's: see the module docstring."""


def _retrieved(future: asyncio.Future[Integrated]) -> None:
    """Take a late answer's error, so that asyncio does not log it as never retrieved."""
    if not future.cancelled():
        future.exception()


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
        self.identity = IdentityFollower(
            service_signers(self.key_set), state_dir=settings.state_dir, origin=settings.origin,
            head_of=self._head_of, snapshot_every=settings.snapshot_every,
            snapshot_interval_s=settings.snapshot_interval_s,
        )
        current = did_key_from_public(self.key.public)
        self.registrar = registrar or default_registrar(
            self.identity, frozenset(did_key_from_public(key) for key in retired) - {current})
        self.did_web = DidWebProver.from_settings(self.key.private, settings)
        # opening the log runs the start-up checks (transparency.log.checks): a corrupted log raises here
        self.sequencer = Sequencer(
            settings.log_location, self.key, settings.origin,
            batch_max_entries=settings.batch_max_entries, batch_max_wait_ms=settings.batch_max_wait_ms,
            queue_limit=settings.queue_limit, on_integrated=self._integrated, retired_keys=retired,
        )
        # registrations are checked in its thread, and handed from there to the sequencer
        self.intake: Intake[Integrated] = Intake(self.registrar.check, self._submit, self.sequencer.handed_over)
        self._loop: asyncio.AbstractEventLoop | None = None
        # statements being registered, parsed from exactly their logged bytes, by those bytes: the fold of their
        # batch (in the sequencer thread) takes them instead of parsing the bytes again
        self._parsed: dict[bytes, SignedStatement] = {}
        self._grown: asyncio.Event | None = None
        self.views = ReadViews(settings.log_location, settings.entries_page_limit)
        self.read_pool = ReadPool(settings.read_threads)
        self.page_pool = ReadPool(1, nice=PAGE_THREAD_NICE, name="log-pages")
        self.cosignatures: CosignatureGatherer | None = None
        self.publisher: Publisher | None = None
        self._witnessed_grown: asyncio.Event | None = None
        try:
            self.identity.start(self.reader)  # its snapshot, then the entries after it (checked on the way)
            self.cosignatures = self._gatherer()
        except BaseException:
            self.close()
            raise
        self._head_lock = threading.Lock()
        self._head = self.latest_head()  # the latest signed tree head, kept up to date by _integrated
        self.sequencer.start(self.identity.size)
        if self.cosignatures is not None:
            self.cosignatures.start()
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

    def _gatherer(self) -> CosignatureGatherer | None:
        """The witnesses this log asks to cosign its checkpoints (``Settings.witness_policy``), if any."""
        if self.settings.witness_policy is None:
            return None
        try:
            policy = parse_policy(self.settings.witness_policy.read_bytes())
        except OSError as exc:
            raise ConfigurationError(f"cannot read the witness policy {self.settings.witness_policy}: "
                                     f"{exc.strerror or exc}") from exc
        except MalformedPolicy as exc:
            raise ConfigurationError(f"the witness policy {self.settings.witness_policy}: {exc.detail}") from exc
        own = self.key.note_key(self.settings.origin)
        if policy.logs and own not in policy.log_keys():
            raise ConfigurationError(f"the witness policy {self.settings.witness_policy} lists logs, but not this "
                                     f"one ({own.encode()})")
        return CosignatureGatherer(
            policy, own, LogView(self.settings.log_location), self.settings.data_dir,
            timeout=self.settings.witness_timeout_s, max_backoff=self.settings.witness_max_backoff_s,
            on_published=self._cosigned,
        )

    def close(self) -> None:
        if self.publisher is not None:
            self.publisher.stop()
        if self.cosignatures is not None:
            self.cosignatures.stop()
        self.intake.close()
        self.sequencer.stop()
        self.identity.close()  # after the last batch: a snapshot of the final state
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

    @property
    def resources(self) -> LogResources:
        """The calling thread's read resources (receipts, pages, proofs, tiles, bundles)."""
        return self.views.current().resources

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

    def _head_of(self, size: int) -> TreeHead | None:
        """The signed tree head of ``size``, read on a connection of the calling thread's own (the snapshot
        writer's)."""
        db = open_database(self.settings.log_location, create=False)
        try:
            return LogReader(db).head(size)
        finally:
            db.close()

    # --- writes -----------------------------------------------------------------------------------

    async def register(self, body: bytes) -> Submission:
        """Check (in the intake thread, which hands what passed to the sequencer), then wait for the batch up to
        the registration timeout. A did:web operator registration that lacks evidence gets it first: the log
        fetches the DID document, registers its signed ``did-web-evidence`` and waits until it is folded
        (``transparency.did_web``). Any failure to get it refuses the registration and logs nothing."""
        registration = self.intake.register(body)
        try:
            return await self._integrated_in_time(registration.future, registration)
        except DidWebEvidenceMissing:
            evidence = await self.did_web.evidence(parse_statement(body))
        logged = await self._sequence(self.registrar.check(evidence))
        if logged.receipt is None:
            raise RegistrationPending(f"the did:web evidence {entry_id(logged.leaf_data)} is still being "
                                      "registered; submit the registration again")
        return await self._sequence(self.registrar.check(body))

    def _submit(self, checked: Checked, future: asyncio.Future[Integrated]) -> None:
        """Queue a statement that passed for the sequencer, which settles ``future`` (of the submitter's loop); from
        the intake thread, or from the loop (``_sequence``)."""
        if checked.as_logged is not None:
            self._parsed[checked.logged] = checked.as_logged  # for the fold of its batch (``_integrated``)
        try:
            self.sequencer.submit_to(checked.leaf_data, checked.logged, future)
        except Overloaded:  # not queued: nothing will fold it
            self._parsed.pop(checked.logged, None)
            raise

    async def _sequence(self, checked: Checked) -> Submission:
        """Queue the statement and wait for its batch, up to the registration timeout. The sequencer dedupes, in
        the batch's transaction (one look-up for the whole batch: the ids of recent entries are in its memory,
        the older ones in the entry-id index), and hands back the receipt of an entry its batch appended, built
        with the batch (``Sequencer._receipts``); an entry that was in the log already (or that another
        process's sequencer appended) has its receipt read in a read thread."""
        future: asyncio.Future[Integrated] = asyncio.get_running_loop().create_future()
        self._submit(checked, future)
        return await self._integrated_in_time(future, checked)

    async def _integrated_in_time(
        self, future: asyncio.Future[Integrated], checked: Checked | Registration[Integrated]
    ) -> Submission:
        """Wait for the sequencer's answer up to the registration timeout (a registration in the intake: once it
        passed its checks, so that a 202 names an entry that is on its way; a refusal is raised as it comes)."""
        timeout = self.settings.registration_timeout_s
        try:
            done, _ = await asyncio.wait((future,), timeout=timeout)
            if not done and isinstance(checked, Registration) and checked.checked is None:
                await checked.wait_checked()
                done, _ = await asyncio.wait((future,), timeout=timeout)
        finally:
            passed = checked.checked if isinstance(checked, Registration) else checked
            if passed is not None:
                self._parsed.pop(passed.logged, None)
        if not done:
            future.add_done_callback(_retrieved)  # answered later, to nobody
            assert passed is not None
            return Submission(passed.leaf_data, None)
        integrated = future.result()
        receipt = integrated.receipt
        if receipt is None:
            receipt = await self.read(self._receipt_for, integrated.index, integrated.tree_size)
        return Submission(integrated.leaf_data, receipt)

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
        return self.resources.latest_head()

    def checkpoint(self) -> str:
        """The latest signed checkpoint, from memory (no read on the event loop), with the witness cosignatures
        gathered for it so far (maybe none)."""
        head = self._head
        latest = self.cosignatures.latest() if self.cosignatures is not None else None
        if latest is not None and latest.size == head.tree_size and latest.note.startswith(head.checkpoint):
            return latest.note
        return head.checkpoint

    def witnessed_checkpoint(self) -> str:
        """The newest checkpoint whose cosignatures meet the quorum of the log's witness policy."""
        witnessed = self.cosignatures.witnessed() if self.cosignatures is not None else None
        if witnessed is None:
            why = "has no witness policy" if self.cosignatures is None else "has no checkpoint witnessed yet"
            raise CheckpointNotWitnessed(f"this log {why}")
        return witnessed.note

    async def witnessed_checkpoint_after(self, size: int, wait_s: float) -> str:
        """The witnessed checkpoint once it is larger than ``size``, or after ``wait_s`` whatever it is then."""
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop, self._grown = loop, asyncio.Event()
        if self._witnessed_grown is None:
            self._witnessed_grown = asyncio.Event()
        deadline = loop.time() + wait_s
        while (left := deadline - loop.time()) > 0:
            witnessed = self.cosignatures.witnessed() if self.cosignatures is not None else None
            if witnessed is not None and witnessed.size > size:
                break
            try:
                await asyncio.wait_for(self._witnessed_grown.wait(), left)
            except TimeoutError:
                break
        return self.witnessed_checkpoint()

    def _cosigned(self) -> None:
        """In the gatherer's thread, after it published cosignatures: wake the long polls of witnessed ones."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake_witnessed)

    def _wake_witnessed(self) -> None:
        if self._witnessed_grown is not None:
            self._witnessed_grown.set()
            self._witnessed_grown = asyncio.Event()

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
        """In the sequencer thread, after a batch committed (or, standing by for another process's sequencer, after
        it read the batches that process committed): keep its head, fold it, wake the cosignature gatherer and
        the publisher, then long polls."""
        head = self.sequencer.committed_head  # after this process's batch: the head it just committed
        if head is None or not entries or head.tree_size != entries[-1][0] + 1:  # standing by: read it
            head = self.latest_head()
        with self._head_lock:
            if head.tree_size > self._head.tree_size:
                self._head = head
        self.identity.integrated(entries, self._parsed)
        for _, statement in entries:  # folded; its submitter pops it too (one cancelled while checked may not)
            self._parsed.pop(statement, None)
        if self.cosignatures is not None:
            self.cosignatures.notify()
        if self.publisher is not None:
            self.publisher.notify()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        if self._grown is not None:
            self._grown.set()
            self._grown = asyncio.Event()  # waiters hold the old one, already set

    def consistency(self, old: int, new: int) -> ConsistencyProof:
        with self._snapshot():
            return self.resources.consistency(old, new)

    def entries(self, start: int, limit: int) -> list[LoggedEntry]:
        """Entries in log order from ``start``, each with its receipt, for followers."""
        with self._snapshot():
            return self.resources.entries(start, limit)

    def _receipt_for(self, index: int, tree_size: int) -> bytes:
        return self.resources.receipt(index, tree_size)

    # --- C2SP tlog-tiles, and statement bundles -------------------------------------------------

    def tile(self, level: int, index: int, width: int) -> bytes:
        """Hashes at tree level ``8 * level``, ``index``-th group of 256, first ``width`` of them."""
        with self._snapshot():
            return self.resources.tile(level, index, width)

    def entry_bundle(self, index: int, width: int) -> bytes:
        """Entry bundle: each entry is its ``leaf_data``, prefixed by its 2-byte big-endian length."""
        with self._snapshot():
            return self.resources.entry_bundle(index, width)

    def statement_bundle(self, index: int, width: int) -> bytes:
        """Statement bundle (``schemas.tiles``): entries ``256 * index`` on with their receipts."""
        with self._snapshot():
            return self.resources.statement_bundle(index, width)
