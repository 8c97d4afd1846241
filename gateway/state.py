"""What the gateway knows: the log, followed with verification and folded, kept fresh by a background thread.

``FollowedLog`` owns a ``LogFollower`` (pinned checkpoint key and receipt key set: every checkpoint signed,
consistent with the last accepted one, every entry's receipt verified) and the verifier's ``Fold``. A thread
asks the log for its checkpoint and folds the new entries: by long poll (``long_poll`` seconds: the log
answers as soon as its tree grows, so a revocation arrives at once), or, with ``long_poll`` 0, every
``poll_interval`` seconds. After a failed poll it waits ``poll_interval`` before the next.

Decisions read the state through ``snapshot()``, under the same lock the fold takes to apply a page of
entries, so a decision never sees a half-applied page. ``snapshot()`` refuses (503) instead of answering
from a state it cannot vouch for:

- ``LogNotFollowed`` before the first checkpoint has been verified and folded;
- ``LogUntrusted`` for good once the log served an inconsistent checkpoint or entry (``CheckpointInconsistent``):
  the gateway never falls back to the state it had;
- ``LogStale`` when no checkpoint has been verified for ``max_staleness`` seconds (the log is unreachable or
  its answers do not verify), since a revocation may have been logged meanwhile;
- with a witness policy (C2SP tlog-policy), ``LogUnwitnessed`` before any checkpoint met its quorum, and when a
  newer checkpoint of the log has waited more than ``witness_grace`` seconds for its quorum of cosignatures:
  the state is folded only up to witnessed checkpoints (``transparency.client.follower``), so past the grace
  the gateway would decide without entries the log has (a revocation, say).

With a snapshot folder (``<data_dir>/state``), the folded state is saved there (``transparency.snapshots``)
every ``snapshot_every`` entries or ``snapshot_interval`` seconds and at the stop, keyed by the log's signed
checkpoint, the verifier's code and the service signers; a start resumes from the newest usable one (its
checkpoint verified with the pinned key; the first poll checks its consistency with the log's latest, and an
inconsistent one means a split view, refused for good as any other) and folds only the entries after it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from schemas.checkpoint import Checkpoint
from schemas.errors import (
    CheckpointInconsistent,
    LogNotFollowed,
    LogStale,
    LogUntrusted,
    LogUnwitnessed,
    SnapshotUnusable,
    TabellionError,
)
from schemas.note import VerifierKey
from schemas.policy import Policy
from schemas.statement import parse_statement
from transparency.client.follower import FollowedEntry, LogFollower, LogReadClient
from transparency.snapshots import SnapshotKey, SnapshotStore, SnapshotWriter
from verifier.checkpoints import verify_checkpoint
from verifier.did_web import service_signers
from verifier.fold import Fold, FoldEntry, IdentityState, Outcome
from verifier.fold_snapshot import copy_state
from verifier.keys import KeySet

from .trust import LogTrust, TrustRecord

log = logging.getLogger(__name__)
NO_USABLE_SNAPSHOT = "no usable snapshot of the log's state (%s); folding the log from its first entry"

Clock = Callable[[], float]


def _discard(_outcome: Outcome) -> None:
    return None


DEFAULT_MIN_POLL_INTERVAL = 0.1
"""Seconds between the starts of two long polls at least: a revocation waits at most this long more."""
PIN_INTERVAL_S = 1.0
"""At most one write of the pinned checkpoint per second (``gateway.trust``): the log grows with every batch of
action records, and any verified checkpoint serves to catch a fork at the next start."""
IDENTITY_CONTENT_PREFIX = b"application/vnd.tabellion."
ACTION_RECORD_TYPES = frozenset({b"application/vnd.tabellion.action-record+json",
                                 b"application/vnd.tabellion.action-record-batch+json"})


def changes_identity(statement: bytes) -> bool:
    """Whether the fold must see ``statement``: a Tabellion statement type other than an action record (one, or a
    batch). Action records and plain SCITT statements change no identity state (``verifier.fold``), so the gateway
    skips them. Read from the statement's protected header."""
    try:
        content_type = parse_statement(statement).content_type
    except TabellionError:
        return True  # let the fold record why it is refused
    if content_type is None:
        return True
    encoded = content_type.encode() if isinstance(content_type, str) else b""
    return encoded.startswith(IDENTITY_CONTENT_PREFIX) and encoded not in ACTION_RECORD_TYPES


@dataclass(frozen=True)
class LogPosition:
    """The verified checkpoint the state is folded up to; ``age`` is seconds since it was last verified
    to be the log's latest."""

    origin: str
    size: int
    root_hash: bytes
    age: float


class ViewSink(Protocol):
    """Where a supervisor publishes what it verified for its workers (``gateway.shared.ViewPublisher``)."""

    def publish_state(self, state: IdentityState) -> None: ...

    def publish(self, position: LogPosition | None, verified_at: float, failure: str | None = None, *,
                witness: WitnessWait | None = None) -> None: ...


@dataclass(frozen=True)
class WitnessWait:
    """With a witness policy, what the workers need to refuse as the follower would (``LogUnwitnessed``):
    ``unwitnessed``, why no checkpoint is accepted yet (else None); ``since``, when (CLOCK_MONOTONIC) the oldest
    checkpoint past the accepted one began waiting for its quorum (None: none waits); ``latest``, the log's
    latest size."""

    unwitnessed: str | None
    since: float | None
    latest: int


@dataclass(frozen=True)
class View:
    """The folded state at ``position``: read it only inside the ``snapshot()`` block that gave it."""

    state: IdentityState
    position: LogPosition


class FollowedLog:
    def __init__(
        self,
        client: LogReadClient,
        log_key: VerifierKey,
        receipt_keys: KeySet,
        *,
        poll_interval: float = 0.15,
        long_poll: float = 0.0,
        max_staleness: float = 60.0,
        clock: Clock = time.monotonic,
        page: int = 500,
        policy: Policy | None = None,
        witness_grace: float = 10.0,
        trust: LogTrust | None = None,
        min_poll_interval: float = DEFAULT_MIN_POLL_INTERVAL,
        sink: ViewSink | None = None,
        snapshots: Path | None = None,
        snapshot_every: int = 100_000,
        snapshot_interval: float = 300.0,
    ) -> None:
        """``snapshots``: the folder of this gateway's snapshots of its folded state (``transparency.snapshots``),
        so that a start folds only what the log added since; none: fold the log from its first entry."""
        self.min_poll_interval = min_poll_interval
        self._sink = sink
        self._generation = 0
        self._published_generation = -1
        self.poll_interval = poll_interval
        self.long_poll = long_poll
        self.max_staleness = max_staleness
        self._clock = clock
        self._log_key = log_key
        self._signers = service_signers(receipt_keys)  # the log signs its did:web evidence
        self._fold = self._new_fold()
        self._lock = threading.Lock()
        self._follower = LogFollower(client, log_key, receipt_keys, self._apply, page=page, policy=policy,
                                     clock=clock, receipts=False)  # entries checked against the tree, a hash each
        self.witness_grace = witness_grace
        self._unwitnessed: LogUnwitnessed | None = None  # why no checkpoint is accepted yet, with a policy
        self._pinned_at = -PIN_INTERVAL_S
        self._writer = (SnapshotWriter(SnapshotStore(snapshots), every=snapshot_every, interval=snapshot_interval)
                        if snapshots is not None else None)
        self.restored_from = 0
        self._verified: Checkpoint | None = None
        self._verified_at = 0.0
        self._failure: CheckpointInconsistent | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_problem = ""
        self._trust = trust
        self._pinned: str | None = None
        if trust is not None:
            self._remember(trust.load())
        if self._writer is not None and self._failure is None:
            self._restore(self._writer.store)

    def _new_fold(self, state: IdentityState | None = None) -> Fold:
        """Sparse: statements that cannot change identity (action records, plain SCITT statements) are not folded;
        no per-entry outcome is kept (decisions read none)."""
        return Fold(state, sparse=True, service_signers=self._signers, outcomes=_discard)

    def _remember(self, record: TrustRecord) -> None:
        """Take up what the data folder remembers: a fork verdict refuses everything from the start; a pinned
        checkpoint is the one the log's next checkpoint must be consistent with."""
        if record.fork is not None:
            self._failure = CheckpointInconsistent(
                f"the log was found forked at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(record.fork.at))}: "
                f"{record.fork.detail} (the verdict is kept in the data folder until an operator runs "
                "'tabellion gateway trust reset')"
            )
        elif record.checkpoint is not None:
            self._follower.resume(record.checkpoint, 0)  # the fold starts empty; the tree must extend the pin
            self._pinned = record.checkpoint

    # --- reading ------------------------------------------------------------------------------------------

    @contextmanager
    def snapshot(self) -> Iterator[View]:
        """The state as of the latest verified checkpoint, held still for the block; raises a 503 error when
        the gateway cannot vouch for it."""
        with self._lock:
            yield View(self._fold.state, self._position())

    def position(self) -> LogPosition:
        with self._lock:
            return self._position()

    def _position(self) -> LogPosition:
        if self._failure is not None:
            raise LogUntrusted(f"the gateway refuses every request: {self._failure.detail}")
        if self._verified is None:
            if self._unwitnessed is not None:
                raise LogUnwitnessed(self._unwitnessed.detail)
            raise LogNotFollowed("the gateway has not verified a checkpoint of the log yet")
        age = self._clock() - self._verified_at
        if age > self.max_staleness:
            raise LogStale(
                f"the last checkpoint of the log was verified {age:.1f} s ago (limit {self.max_staleness:g} s)"
                + (f"; {self._last_problem}" if self._last_problem else "")
            )
        self._follower.require_witnessed(self.witness_grace)
        checkpoint = self._verified
        return LogPosition(checkpoint.origin, checkpoint.size, checkpoint.root_hash, age)

    # --- following ----------------------------------------------------------------------------------------

    def poll(self) -> Checkpoint:
        """Verify the log's latest checkpoint and fold every entry up to it. Raises ``CheckpointInconsistent``
        (and stops trusting the log for good) on a split view; other errors leave the state as it was."""
        if self._failure is not None:
            raise self._failure
        try:
            # the first poll asks at once: a start resumed from a snapshot (or a pin) of the log's current size would
            # otherwise wait for the log to grow before it could vouch for anything
            waiting = self.long_poll if self._verified is not None else 0
            checkpoint = self._follower.poll(wait=waiting or None)
        except CheckpointInconsistent as exc:
            failure = self._follower.failure or exc
            if self._trust is not None:  # on disk before anything else: a restart must not forget it
                self._trust.record_fork(failure.detail, self._pinned)
            with self._lock:
                self._failure = failure
            self.publish()
            raise
        except LogUnwitnessed as exc:
            with self._lock:
                self._unwitnessed = exc
            self.publish()
            raise
        now = self._clock()
        if (self._trust is not None and self._follower.checkpoint_text != self._pinned
                and now - self._pinned_at >= PIN_INTERVAL_S):  # a pin a second old catches a fork as well
            self._trust.pin(self._follower.checkpoint_text)
            self._pinned, self._pinned_at = self._follower.checkpoint_text, now
        with self._lock:
            self._verified, self._verified_at = checkpoint, self._clock()
            self._last_problem = ""
            self._unwitnessed = None
        self.publish()
        self._save_if_due(checkpoint)
        return checkpoint

    # --- snapshots ----------------------------------------------------------------------------------------

    def _restore(self, store: SnapshotStore) -> None:
        """Start from the newest snapshot whose checkpoint is signed by the log's key for its size and root, and
        whose compact range hashes to that root; the first poll then proves the entries after it consistent with
        the log's latest checkpoint (and with the pinned one, when that is newer), as for any accepted one."""

        def match(key: SnapshotKey, checkpoint: str) -> None:
            try:
                signed = verify_checkpoint(checkpoint, self._log_key)
            except TabellionError as exc:
                raise SnapshotUnusable(f"its checkpoint is not one the log signed: {exc.detail}") from exc
            if (signed.size, signed.root_hash) != (key.tree_size, key.root):
                raise SnapshotUnusable("its checkpoint is not of its tree size and root")

        snapshot, why = store.newest(SnapshotKey.of(self._log_key.name, 0, b"", self._signers), match)
        if snapshot is None:
            log.info(NO_USABLE_SNAPSHOT, why)
            return
        try:
            tree = snapshot.compact_range()
        except SnapshotUnusable as exc:
            log.info(NO_USABLE_SNAPSHOT, f"{snapshot.path.name}: {exc.detail}")
            return
        resume_from = snapshot.checkpoint
        pinned = self._follower.checkpoint  # set (and verified) by _remember from the pinned checkpoint, if any
        if self._pinned is not None and pinned is not None and pinned.size > snapshot.key.tree_size:
            resume_from = self._pinned  # the entries after the snapshot must lead to the pinned checkpoint
        self._follower.resume(resume_from, snapshot.key.tree_size, tree)
        self._fold = self._new_fold(snapshot.state)
        assert self._writer is not None
        self._writer.saved(snapshot.key.tree_size)
        self.restored_from = snapshot.key.tree_size
        log.info("snapshot of the log's state at tree size %d loaded; following the log from there",
                 snapshot.key.tree_size)

    def _save_if_due(self, checkpoint: Checkpoint, *, now: bool = False) -> None:
        writer = self._writer
        if writer is None or not (writer.due(checkpoint.size) or (now and checkpoint.size > writer.saved_size)):
            return
        # called by the thread that polls: the fold and the follower are at ``checkpoint`` (a sparse fold's own
        # size stops at the last statement that could change identity)
        tree = self._follower.tree
        if tree.size != checkpoint.size:  # pragma: no cover - a poll applies every entry up to its checkpoint
            return
        with self._lock:
            state, text = copy_state(self._fold.state), self._follower.checkpoint_text
        key = SnapshotKey.of(self._log_key.name, checkpoint.size, checkpoint.root_hash, self._signers)

        def save() -> None:
            writer.store.save(key, text, state, tree.nodes)

        writer.save_in_background(checkpoint.size, save)

    def _apply(self, entries: Sequence[FollowedEntry]) -> None:
        folded = [FoldEntry(entry.index, entry.statement) for entry in entries if changes_identity(entry.statement)]
        if folded:
            with self._lock:
                for entry in folded:
                    self._fold.apply(entry)
                self._generation += 1

    def publish(self) -> None:
        """Hand the verified position (and the state, when the fold changed it) to the ``sink``, for the worker
        processes (``gateway.shared``)."""
        sink = self._sink
        if sink is None:
            return
        with self._lock:
            if self._generation != self._published_generation:
                sink.publish_state(self._fold.state)
                self._published_generation = self._generation
            checkpoint = self._verified
            position = None if checkpoint is None else LogPosition(checkpoint.origin, checkpoint.size,
                                                                   checkpoint.root_hash, 0.0)
            witness = None
            if self._follower.policy is not None:
                latest = self._follower.latest
                witness = WitnessWait(self._unwitnessed.detail if self._unwitnessed else None,
                                      self._follower.waiting_since, latest.size if latest is not None else 0)
            sink.publish(position, self._verified_at, self._failure.detail if self._failure else None,
                         witness=witness)

    def start(self) -> None:
        """Follow the log in a daemon thread until ``stop()``."""
        if self._thread is not None or self._failure is not None:
            return  # a remembered fork: nothing the log says is believed, so it is not even asked
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="gateway-log-follower", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop following; save a snapshot of the state if it grew since the last one (and the log is trusted)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        writer, checkpoint = self._writer, self._verified
        if writer is not None and checkpoint is not None and self._failure is None:
            writer.wait()
            self._save_if_due(checkpoint, now=True)
            writer.wait()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = self._clock()
            try:
                self.poll()
                if self.long_poll:  # the log held the request until it grew (or the wait ran out): ask again,
                    # but not more often than every min_poll_interval: under load the log grows with every batch
                    # of action records, and a poll per batch would be the gateway reading back its own records
                    self._stop.wait(max(0.0, self.min_poll_interval - (self._clock() - started)))
                    continue
            except CheckpointInconsistent as exc:
                log.error("stopped trusting the log: %s", exc.detail)
                return  # for good: nothing the log says from now on is believed
            except TabellionError as exc:
                if not self._stop.is_set():
                    self._problem(str(exc))
            except Exception as exc:  # noqa: BLE001 - the thread's edge: keep following, say why
                if not self._stop.is_set():
                    log.exception("following the log failed unexpectedly")
                    self._problem(f"unexpected {type(exc).__name__}: {exc}")
            self._stop.wait(self.poll_interval)

    def _problem(self, text: str) -> None:
        """Log a failed poll once per distinct reason (a log that is down for a minute is one line)."""
        with self._lock:
            repeated, self._last_problem = text == self._last_problem, text
        if not repeated:
            log.warning("cannot follow the log: %s", text)
