"""The transparency service as a library: register statements, read receipts, checkpoints, proofs, tiles.

The HTTP routes and the in-process client both sit on this one object. It owns the sequencer (the only
writer) and a read connection; it keeps no state of its own beyond them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from schemas import cbor
from schemas.cose_sign1 import decode_sign1
from schemas.errors import (
    CheckpointNotWitnessed,
    ConfigurationError,
    DidWebEvidenceMissing,
    EntryNotFound,
    InvalidParameter,
    LogCorrupted,
    MalformedPolicy,
    NotFound,
    RegistrationPending,
)
from schemas.leaf import entry_id
from schemas.policy import parse_policy
from schemas.proofs import ConsistencyProof, InclusionProof
from schemas.receipt import transparent_statement
from schemas.statement import parse_statement
from schemas.tiles import TILE_HEIGHT, TILE_WIDTH
from transparency.did_web import DidWebProver
from transparency.identity import IdentityFollower
from transparency.keys import LogKey, load_or_create_log_key, published_key_set, retired_public_keys
from transparency.log.merkle_tree import PersistentMerkleTree
from transparency.log.sequencer import Integrated, Sequencer
from transparency.log.store import EntryRow, LogReader, TreeHead, open_database
from transparency.receipts import assemble_receipt
from transparency.registration import Checked, Registrar, default_registrar
from transparency.settings import Settings
from transparency.witnessing import CosignatureGatherer, LogView
from verifier.did_web import service_signers
from verifier.keys import KeySet


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
        self.read_db = open_database(settings.db_path, create=False)
        self.reader = LogReader(self.read_db)
        self.tree = PersistentMerkleTree(self.read_db.conn)
        self.cosignatures: CosignatureGatherer | None = None
        self._witnessed_grown: asyncio.Event | None = None
        try:
            self.identity.catch_up(self.reader)  # checks the entries it folds, too
            self.cosignatures = self._gatherer()
        except BaseException:
            self.close()
            raise
        self.sequencer.start()
        if self.cosignatures is not None:
            self.cosignatures.start()

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
            policy, own, LogView(self.settings.db_path), self.settings.data_dir,
            timeout=self.settings.witness_timeout_s, max_backoff=self.settings.witness_max_backoff_s,
            on_published=self._cosigned,
        )

    def close(self) -> None:
        if self.cosignatures is not None:
            self.cosignatures.stop()
        self.sequencer.stop()
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

    async def _sequence(self, checked: Checked) -> Submission:
        looked_up = self.latest_head().tree_size  # read first: the lookup below sees at least these entries
        existing = self.reader.entry_by_id(checked.leaf_data)
        if existing is not None:
            return Submission(checked.leaf_data, self._receipt_for(existing.index, existing.tree_size))
        # the sequencer's dedupe then checks only the entries logged since (it keeps those in memory)
        future = self.sequencer.submit(checked.leaf_data, checked.logged, absent_below=looked_up)
        try:
            done: Integrated = await asyncio.wait_for(
                asyncio.shield(asyncio.wrap_future(future)), self.settings.registration_timeout_s
            )
        except TimeoutError:
            return Submission(checked.leaf_data, None)
        return Submission(done.leaf_data, self._receipt_for(done.index, done.tree_size))

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
        head = self.reader.latest_head()
        if head is None:
            raise LogCorrupted("the log has no signed tree head")
        return head

    def checkpoint(self) -> str:
        """The latest signed checkpoint, with the witness cosignatures gathered for it so far (maybe none)."""
        head = self.latest_head()
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
        while self.latest_head().tree_size <= size and (left := deadline - self._loop.time()) > 0:
            grown = self._grown
            assert grown is not None
            try:
                await asyncio.wait_for(grown.wait(), left)
            except TimeoutError:
                break
        return self.checkpoint()

    def _integrated(self, entries: list[tuple[int, bytes]]) -> None:
        """In the sequencer thread, after a batch committed: fold it, wake the cosignature gatherer, then long
        polls."""
        self.identity.integrated(entries)
        if self.cosignatures is not None:
            self.cosignatures.notify()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        if self._grown is not None:
            self._grown.set()
            self._grown = asyncio.Event()  # waiters hold the old one, already set

    def consistency(self, old: int, new: int) -> ConsistencyProof:
        size = self.latest_head().tree_size
        if not 1 <= old <= new <= size:
            raise InvalidParameter(f"need 1 <= old <= new <= {size} (the current tree size); got {old}, {new}")
        return ConsistencyProof(old, new, self.tree.consistency_path(old, new))

    def entries(self, start: int, limit: int) -> list[LoggedEntry]:
        """Entries in log order from ``start``, each with its receipt, for followers."""
        if start < 0 or limit < 1:
            raise InvalidParameter("start must be >= 0 and limit >= 1")
        size = self.latest_head().tree_size
        rows = [r for r in self.reader.entries(start, min(limit, self.settings.entries_page_limit)) if r.index < size]
        return [self._logged(r) for r in rows]

    def _logged(self, row: EntryRow) -> LoggedEntry:
        return LoggedEntry(row.index, row.statement, self._receipt_for(row.index, row.tree_size))

    def _receipt_for(self, index: int, tree_size: int) -> bytes:
        head = self.reader.head(tree_size)
        if head is None:
            raise LogCorrupted(f"entry {index} names tree head {tree_size}, which is missing")
        proof = InclusionProof(tree_size, index, self.tree.inclusion_path(index, tree_size))
        return assemble_receipt(head.receipt_protected, head.receipt_signature, proof)

    # --- C2SP tlog-tiles ------------------------------------------------------------------------

    def tile(self, level: int, index: int, width: int) -> bytes:
        """Hashes at tree level ``8 * level``, ``index``-th group of 256, first ``width`` of them."""
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
        size = self.latest_head().tree_size
        start = index * TILE_WIDTH
        if size - start < width:
            raise NotFound(f"entry bundle {index} has {max(size - start, 0)} entries in the tree of size {size}")
        return b"".join(len(d).to_bytes(2, "big") + d for d in self.reader.leaf_datas(start, start + width))


def encode_entries(entries: list[LoggedEntry]) -> bytes:
    """Follower page: CBOR array of ``[index, logged statement, receipt]``."""
    return cbor.encode([[e.index, e.statement, e.receipt] for e in entries])
