"""The log's own follower of identity state: the one fold of the embedded process (docs/architecture.md §4).

It folds the log with the verifier's fold — at start-up the entries after its newest usable snapshot (or the
whole log), then every integrated batch, in the sequencer thread, before any submitter of that batch hears
back — so a statement is checked against the identity state of everything logged before it:

- as a key resolver, it answers the key currently registered for a controller DID, and refuses (403) a
  signer that was revoked or that signs with a key rotated out of its key state;
- as a registration policy, it refuses (403) a Tabellion statement whose transition the fold would reject;
- for the issuer hosted in the same process (``transparency.client.local.SharedFold``), it is the state the
  issuer reads, under the same lock, and each entry's outcome.

The state is derived only from the log. With a ``state_dir`` it is kept there between starts: snapshots of the
state keyed by tree head, verifier code and service signers (``transparency.snapshots``), written in the
background every ``snapshot_every`` entries or ``snapshot_interval_s`` seconds and when the service stops, and
every entry's outcome in an outcome store on disk. A start loads the newest snapshot whose size and root are a
signed tree head of the log and folds only the entries after it; with none usable it rebuilds from the log and
says why in one line.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from schemas.errors import BadInput, SignerUnresolvable, SnapshotUnusable
from schemas.identity_statements import statement_type_of
from schemas.statement import SignedStatement
from transparency.log.checks import check_contiguous, check_leaf
from transparency.log.reader import LogReader, TreeHead
from transparency.snapshots import OutcomeStore, SnapshotKey, SnapshotStore, SnapshotWriter
from verifier.did_key import resolve_did_key
from verifier.fold import Fold, FoldEntry, IdentityState, KeyState, Outcome, key_digest, kid_multikey
from verifier.fold_snapshot import copy_state
from verifier.keys import PublicKey
from verifier.refusals import Refusal, Refused

log = logging.getLogger(__name__)
DID_KEY = "did:key:"

PAGE = 1000
SNAPSHOT_EVERY = 100_000
SNAPSHOT_INTERVAL_S = 300.0
HeadOf = Callable[[int], TreeHead | None]
"""The stored signed tree head of a size (read on a connection of the calling thread's own)."""


class IdentityFollower:
    def __init__(
        self, service_signers: frozenset[str] = frozenset(), *, state_dir: Path | None = None, origin: str = "",
        head_of: HeadOf | None = None, snapshot_every: int = SNAPSHOT_EVERY,
        snapshot_interval_s: float = SNAPSHOT_INTERVAL_S,
    ) -> None:
        """``service_signers``: the log service's own DIDs, whose statements the fold trusts (see
        ``verifier.did_web.service_signers``). ``state_dir``: where snapshots and outcomes are kept (none: the
        state is folded from the whole log at every start and outcomes are kept in memory); ``origin`` and
        ``head_of`` (the log's signed heads) key and check its snapshots."""
        self.service_signers = service_signers
        self.origin = origin
        self._head_of = head_of
        self._outcomes = OutcomeStore(state_dir / "outcomes.sqlite", service_signers) if state_dir else None
        self._store = SnapshotStore(state_dir) if state_dir else None
        self._writer = (SnapshotWriter(self._store, every=snapshot_every, interval=snapshot_interval_s)
                        if self._store else None)
        self._fold = self._new_fold(None)
        self._lock = threading.Lock()
        self.restored_from = 0  # the tree size of the snapshot the start loaded (0: folded from the first entry)
        self._started = False  # the start folded the whole log: only then is the state one worth saving

    def _new_fold(self, state: IdentityState | None) -> Fold:
        return Fold(state, service_signers=self.service_signers,
                    outcomes=self._outcomes.append if self._outcomes is not None else None)

    @property
    def size(self) -> int:
        return self._fold.state.size

    def snapshot(self) -> IdentityState:
        return self._fold.state

    @contextmanager
    def reading(self) -> Iterator[IdentityState]:
        """The state, held still (no batch is folded) for the block."""
        with self._lock:
            yield self._fold.state

    def outcome(self, index: int) -> Outcome | None:
        """What the fold made of entry ``index`` (``None``: not folded yet)."""
        if self._outcomes is not None:
            return self._outcomes.get(index)
        outcomes = self._fold.state.outcomes
        return outcomes[index] if 0 <= index < len(outcomes) else None

    # --- start-up and following -------------------------------------------------------------------

    def start(self, reader: LogReader) -> None:
        """At start-up: restore the newest usable snapshot, then fold the entries after it."""
        started = time.perf_counter()
        if self._store is not None:
            self._restore(reader)
        self.catch_up(reader)
        self._started = True
        if self._store is not None:
            log.info("identity state: ready at tree size %d in %.2f s (%d entries folded)", self.size,
                     time.perf_counter() - started, self.size - self.restored_from)
        self._save_if_due()

    def _restore(self, reader: LogReader) -> None:
        assert self._store is not None and self._outcomes is not None and self._writer is not None
        started = time.perf_counter()
        head = reader.latest_head()
        size = head.tree_size if head is not None else 0

        def match(key: SnapshotKey, checkpoint: str) -> None:
            if key.tree_size > size:
                raise SnapshotUnusable(f"it is of tree size {key.tree_size}, beyond the log's {size}")
            stored = reader.head(key.tree_size)
            if stored is None or stored.root != key.root or stored.checkpoint != checkpoint:
                raise SnapshotUnusable(f"the log has no signed tree head of size {key.tree_size} with its root")
            last = reader.entry_ids(key.tree_size - 1, key.tree_size)
            assert self._outcomes is not None
            self._outcomes.check_holds(key.tree_size, last[0][1].hex() if last else None)

        snapshot, why = self._store.newest(SnapshotKey.of(self.origin, 0, b"", self.service_signers), match)
        if snapshot is None:
            self._outcomes.clear()
            if size:
                log.warning("identity state: no usable snapshot (%s); rebuilding it from the %d entries of the log",
                            why, size)
            return
        self._fold = self._new_fold(snapshot.state)
        self.restored_from = snapshot.key.tree_size
        self._writer.saved(snapshot.key.tree_size)
        log.info("identity state: snapshot of tree size %d loaded in %.2f s; folding the %d entries after it",
                 snapshot.key.tree_size, time.perf_counter() - started, size - snapshot.key.tree_size)

    def catch_up(self, reader: LogReader) -> None:
        """Fold every committed entry not folded yet (at start-up: the entries after the snapshot), checking what
        it reads on the way (``transparency.log.checks``, at no extra cost): the entries follow each other with no
        gap, and each statement's id, which the fold computes anyway, is the stored id."""
        while True:
            rows = reader.entries(self.size, PAGE)
            if not rows:
                return
            for row in rows:
                check_contiguous(self.size, row.index)
                try:
                    with self._lock:
                        outcome = self._fold.apply(FoldEntry(row.index, row.statement))
                except BadInput as exc:  # the statement does not even parse
                    check_leaf(row.index, row.leaf_data, None, _tree_leaf(reader, row.index), exc.detail)
                    raise
                if outcome.entry != row.leaf_data.hex():
                    recomputed = bytes.fromhex(outcome.entry)
                    check_leaf(row.index, row.leaf_data, recomputed, _tree_leaf(reader, row.index))
            if self._outcomes is not None:
                self._outcomes.flush()
            if self.size % (100 * PAGE) < PAGE:
                log.info("identity state: folded %d entries", self.size)

    def integrated(
        self, entries: Sequence[tuple[int, bytes]], parsed: Mapping[bytes, SignedStatement] | None = None
    ) -> None:
        """A batch the sequencer committed (its thread): fold it, record its outcomes, snapshot when due.
        ``parsed``: statements the caller parsed already, by their exact logged bytes (the fold parses the others)."""
        known = parsed or {}
        with self._lock:
            for index, statement in entries:
                self._fold.apply(FoldEntry(index, statement, known.get(statement)))
        if self._outcomes is not None:
            self._outcomes.flush(unless_below=OutcomeStore.FLUSH_AT)  # not a transaction per batch
        self._save_if_due()

    def _save_if_due(self) -> None:
        writer = self._writer
        if writer is None or not self._started or not writer.due(self.size):
            return
        with self._lock:
            size, state = self.size, copy_state(self._fold.state)
        self._save(size, state, background=True)

    def _save(self, size: int, state: IdentityState, *, background: bool) -> None:
        assert self._writer is not None and self._outcomes is not None
        head_of, outcomes, writer = self._head_of, self._outcomes, self._writer
        if head_of is None:
            return

        def save() -> None:
            head = head_of(size)
            if head is None:  # pragma: no cover - every batch the fold takes ends at a signed tree head
                log.warning("identity state: no signed tree head of size %d; no snapshot saved", size)
                return
            outcomes.flush()
            writer.store.save(SnapshotKey.of(self.origin, size, head.root, self.service_signers), head.checkpoint,
                              state)

        if background:
            writer.save_in_background(size, save)
        else:
            writer.wait()
            save()
            writer.saved(size)

    def close(self) -> None:
        """When the service stops (no batch is folded any more): save the state if it grew, close the store."""
        if self._writer is not None:
            self._writer.wait()
            if self._started and self.size > self._writer.saved_size:
                self._save(self.size, self._fold.state, background=False)
        if self._outcomes is not None:
            self._outcomes.flush()
            self._outcomes.close()

    # --- KeyResolver ------------------------------------------------------------------------------

    def resolve(self, statement: SignedStatement) -> PublicKey:
        with self._lock:
            state = self._fold.state
            signer = statement.issuer
            revoked = state.revoked.get(signer)
            if revoked is not None:
                raise Refused(
                    Refusal.SIGNER_REVOKED,
                    f"signer {signer[:200]} was revoked at entry {revoked.index} ({revoked.reason}); "
                    "it can no longer register statements"
                )
            controller = state.controllers.get(signer)
            stype = statement_type_of(statement.content_type)
            if controller is None and stype == "operator-registration" and not signer.startswith(DID_KEY):
                # self-certifying: signed by the key it registers (the policy checks that); a did:web operator
                # also needs evidence that its domain's did.json lists that key (verifier.did_web,
                # transparency.did_web)
                return resolve_did_key(DID_KEY + kid_multikey(statement))
            if controller is None:
                raise SignerUnresolvable(f"{signer[:200]} is not a controller registered on this log")
            if stype == "key-rotation":
                # signed by the key it reveals; the policy (the fold) checks that it is the committed one
                return resolve_did_key(DID_KEY + kid_multikey(statement))
            if stype == "revocation" and key_digest(kid_multikey(statement)) == controller.next_key_digest:
                # recovery: a controller revokes itself with the next key it committed to (the fold checks the
                # target is the signer itself)
                return resolve_did_key(DID_KEY + kid_multikey(statement))
            _refuse_retired_key(statement, controller, state)
            return state.current_key(signer)

    # --- RegistrationPolicy -----------------------------------------------------------------------

    def check(self, statement: SignedStatement) -> None:
        with self._lock:
            self._fold.check(statement)


def _tree_leaf(reader: LogReader, index: int) -> bytes | None:
    """The leaf hash the tree holds for entry ``index``: one read, only when its records disagree."""
    found = reader.node_hashes(0, index, index + 1)
    return found[0] if found else None


def _refuse_retired_key(statement: SignedStatement, controller: KeyState, state: IdentityState) -> None:
    """A kid naming another key than the controller's current one gets a precise refusal (an earlier key, or
    one that was never its key) instead of a bad signature."""
    multikey = kid_multikey(statement)
    if multikey == controller.key:
        return
    for event in controller.history:
        if event.key == multikey:
            revoked = state.revoked.get(multikey)
            why = f"revoked at entry {revoked.index} ({revoked.reason})" if revoked else "no longer current"
            raise Refused(
                Refusal.SIGNER_KEY_MISMATCH,
                f"{statement.issuer[:200]} signed with key {multikey[:60]}, which was rotated out "
                f"(current since entry {controller.history[-1].index}) and is {why}"
            )
    if (statement.kid_text or "").startswith(DID_KEY):
        raise Refused(
            Refusal.SIGNER_KEY_MISMATCH,
            f"{statement.issuer[:200]} is registered on this log with key {controller.key[:60]}; the statement's "
            f"kid names {multikey[:60]}, which was never one of its keys"
        )
