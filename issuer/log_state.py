"""The issuer's only source of truth: the log, folded with the verifier's fold.

``LogState`` reads the identity state one of two ways:

- hosted in the log's own process (the embedded default), it shares the log's fold (``SharedFold`` from
  ``transparency.client.local``): the state the registration policy checks against, folded once per process,
  kept between starts by the log's snapshots (``transparency.snapshots``), each entry's outcome on disk;
- otherwise it follows the log with a ``LogFollower`` (checkpoint signatures, consistency, every receipt) and
  folds it itself.

Every accepted Tabellion entry also becomes a lifecycle event for the webhook outbox, identified by its entry
id, so deriving the same entry again enqueues the same ids (idempotent). With a shared fold the events are
derived from the logged statements and their outcomes, from the outbox's own cursor (``EventCursor``) on.
Nothing here is authoritative: drop it and follow the log again to get the same state.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from schemas.checkpoint import Checkpoint
from schemas.errors import LogCorrupted
from schemas.identity_statements import parse_payload
from schemas.note import VerifierKey
from schemas.policy import Policy
from schemas.statement import parse_statement
from transparency.client.follower import FollowedEntry, LogFollower, LogReadClient, WitnessedLogReadClient
from transparency.client.http import LogEntry
from verifier.checkpoints import verify_checkpoint, verify_checkpoint_consistency
from verifier.did_web import service_signers
from verifier.fold import Fold, FoldEntry, IdentityState, Outcome
from verifier.keys import KeySet

EventSink = Callable[[str, dict[str, Any], str], None]
"""``(event_type, data, entry_id)``: where lifecycle events go (the webhook outbox)."""
EVENT_PAGE = 500

EVENT_OF_TYPE = {
    "agent-passport": "passport.issued",
    "delegation": "delegation.granted",
    "claim-submission": "claim.submitted",
    "claim-approval": "claim.approved",
    "claim-rejection": "claim.rejected",
    "claim-revocation": "claim.revoked",
    "key-rotation": "key.rotated",
}


class SharedState(Protocol):
    """The log's own fold, shared in-process (``transparency.client.local.SharedFold``)."""

    @property
    def size(self) -> int: ...

    def reading(self) -> AbstractContextManager[IdentityState]: ...

    def checkpoint(self) -> str: ...

    def outcome(self, index: int) -> Outcome | None: ...

    def statements(self, start: int, limit: int) -> list[tuple[int, bytes]]: ...


class EventCursor(Protocol):
    """Where lifecycle events have been derived up to (the outbox keeps it with the events)."""

    def get(self) -> int | None:
        """The first entry not derived yet; ``None`` for a new outbox."""

    def set(self, size: int) -> None: ...


class LogState:
    def __init__(
        self, client: LogReadClient, log_key: VerifierKey, receipt_keys: KeySet, events: EventSink | None = None,
        *, shared: SharedState | None = None, cursor: EventCursor | None = None, policy: Policy | None = None,
        witness_grace: float = 10.0,
    ) -> None:
        self.shared = shared
        self.fold = Fold(service_signers=service_signers(receipt_keys))  # the log signs its did:web evidence
        self.events = events
        self.log_key = log_key
        if shared is not None and policy is not None:
            raise ValueError("a witness policy needs the issuer's own follower: the shared fold runs ahead of "
                             "witnessed checkpoints")
        self.follower = LogFollower(client, log_key, receipt_keys, self._apply, policy=policy)
        self.witness_grace = witness_grace
        self._cursor = cursor
        self._checkpoints: tuple[str, Checkpoint] | None = None
        self._lock = threading.RLock()
        self._derived = 0
        if shared is not None and events is not None:
            found = cursor.get() if cursor is not None else None
            # a new outbox has no subscriptions: the events of entries logged before it would go to nobody
            self._derived = shared.size if found is None else found

    @property
    def state(self) -> IdentityState:
        """The state (unlocked: a shared fold may change under it; read it inside ``view()`` instead)."""
        if self.shared is not None:
            with self.shared.reading() as state:
                return state
        return self.fold.state

    @contextmanager
    def view(self) -> Iterator[IdentityState]:
        """The state, held still for the block (a shared fold folds no batch meanwhile)."""
        if self.shared is None:
            with self._lock:  # no page is folded meanwhile
                yield self.fold.state
            return
        with self.shared.reading() as state:
            yield state

    @property
    def checkpoint(self) -> Checkpoint:
        if self.shared is not None:
            return self._shared_checkpoint()[1]
        if self.follower.checkpoint is None:
            raise LogCorrupted("the issuer has not accepted any checkpoint of the log yet")
        return self.follower.checkpoint

    @property
    def checkpoint_text(self) -> str:
        if self.shared is not None:
            return self._shared_checkpoint()[0]
        return self.follower.checkpoint_text

    def _shared_checkpoint(self) -> tuple[str, Checkpoint]:
        assert self.shared is not None
        text = self.shared.checkpoint()
        if self._checkpoints is None or self._checkpoints[0] != text:
            self._checkpoints = (text, verify_checkpoint(text, self.log_key))
        return self._checkpoints

    def refresh(self) -> Checkpoint:
        """Follow the log up to its latest checkpoint (raises, for good, if the log is inconsistent). With a
        witness policy, up to its latest witnessed checkpoint, and ``LogUnwitnessed`` (503) when a newer one has
        waited longer than ``witness_grace`` seconds for its quorum, or none is witnessed yet. Sharing the log's
        fold, the log's latest checkpoint (the fold is at it)."""
        with self._lock:  # the routes that read much run in threads (issuer.routes): one refresh at a time
            if self.shared is not None:
                checkpoint = self._shared_checkpoint()[1]
                self._derive_events(checkpoint.size)
                return checkpoint
            checkpoint = self.follower.poll()
            self.follower.require_witnessed(self.witness_grace)
            return checkpoint

    def witnessed(self, min_size: int) -> tuple[str, Checkpoint] | None:
        """A checkpoint the log's witnesses cosigned, no smaller than ``min_size`` and within the accepted one,
        for audit bundles: with a witness policy the accepted checkpoint itself; otherwise the log's witnessed
        checkpoint when the log serves one, verified with the log's key and shown consistent with the accepted
        one. ``None`` when there is none such."""
        accepted = self.checkpoint
        if self.follower.policy is not None:
            return (self.checkpoint_text, accepted) if accepted.size >= min_size else None
        client = self.follower.client
        if not isinstance(client, WitnessedLogReadClient):
            return None
        text = client.witnessed_checkpoint()
        if text is None:
            return None
        checkpoint = verify_checkpoint(text, self.follower.log_key)
        if not min_size <= checkpoint.size <= accepted.size:
            return None
        proof = client.consistency(checkpoint.size, accepted.size) if 0 < checkpoint.size < accepted.size else None
        verify_checkpoint_consistency(checkpoint, accepted, proof.path if proof is not None else ())
        return text, checkpoint

    def outcome(self, index: int) -> Outcome:
        if self.shared is not None:
            found = self.shared.outcome(index)
            if found is None:
                raise LogCorrupted(f"entry {index} has not been folded")
            return found
        return self.state.outcomes[index]

    def entry(self, index: int) -> LogEntry:
        """The logged statement at ``index`` with its receipt, read from the log (not kept here)."""
        page = self.follower.client.entries(index, 1)
        if not page or page[0].leaf_index != index:
            raise LogCorrupted(f"the log did not serve entry {index}")
        return page[0]

    def _apply(self, entries: Sequence[FollowedEntry]) -> None:
        for entry in entries:
            outcome = self.fold.apply(FoldEntry(entry.index, entry.statement))
            if self.events is not None and outcome.accepted and outcome.statement_type is not None:
                self._emit(outcome, entry.statement)

    def _derive_events(self, size: int) -> None:
        """The events of the entries folded since the cursor, from their statements and outcomes."""
        if self.shared is None or self.events is None:
            return
        while self._derived < size:
            page = self.shared.statements(self._derived, min(EVENT_PAGE, size - self._derived))
            if not page:
                break
            for index, statement in page:
                outcome = self.shared.outcome(index)
                if outcome is None:
                    raise LogCorrupted(f"entry {index} has no outcome")
                if outcome.accepted and outcome.statement_type is not None:
                    self._emit(outcome, statement)
            self._derived = page[-1][0] + 1
            if self._cursor is not None:
                self._cursor.set(self._derived)

    def _emit(self, outcome: Outcome, statement: bytes) -> None:
        assert self.events is not None and outcome.statement_type is not None
        signed = parse_statement(statement)
        payload = parse_payload(outcome.statement_type, signed.payload)
        data = {"entry": outcome.entry, "index": outcome.index, "statement_type": outcome.statement_type,
                "issuer": signed.issuer, "payload": payload}
        self.events("statement.submitted", data, outcome.entry)
        if outcome.statement_type == "revocation":
            target = str(payload.get("target", ""))
            kind = "key.revoked" if not target.startswith("did:") and len(target) != 64 else "credential.revoked"
            self.events(kind, data, outcome.entry)
        elif outcome.statement_type in EVENT_OF_TYPE:
            self.events(EVENT_OF_TYPE[outcome.statement_type], data, outcome.entry)
