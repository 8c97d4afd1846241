"""The issuer's only source of truth: the log, followed with verification and folded with the verifier.

``LogState`` owns a ``LogFollower`` (checkpoint signatures, consistency, every receipt) and the
verifier's ``Fold``. Every accepted Tabellion entry also becomes a lifecycle event for the webhook
outbox, identified by its entry id, so a rebuild from the log re-enqueues the same ids (idempotent).
Nothing here is authoritative: drop it and follow the log again to get the same state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from schemas.checkpoint import Checkpoint
from schemas.errors import LogCorrupted
from schemas.identity_statements import parse_payload
from schemas.note import VerifierKey
from schemas.statement import parse_statement
from transparency.client.follower import FollowedEntry, LogFollower, LogReadClient
from transparency.client.http import LogEntry
from verifier.did_web import service_signers
from verifier.fold import Fold, FoldEntry, IdentityState, Outcome
from verifier.keys import KeySet

EventSink = Callable[[str, dict[str, Any], str], None]
"""``(event_type, data, entry_id)``: where lifecycle events go (the webhook outbox)."""

EVENT_OF_TYPE = {
    "agent-passport": "passport.issued",
    "delegation": "delegation.granted",
    "claim-submission": "claim.submitted",
    "claim-approval": "claim.approved",
    "claim-rejection": "claim.rejected",
    "claim-revocation": "claim.revoked",
    "key-rotation": "key.rotated",
}


class LogState:
    def __init__(
        self, client: LogReadClient, log_key: VerifierKey, receipt_keys: KeySet, events: EventSink | None = None
    ) -> None:
        self.fold = Fold(service_signers=service_signers(receipt_keys))  # the log signs its did:web evidence
        self.events = events
        self.follower = LogFollower(client, log_key, receipt_keys, self._apply)

    @property
    def state(self) -> IdentityState:
        return self.fold.state

    @property
    def checkpoint(self) -> Checkpoint:
        if self.follower.checkpoint is None:
            raise LogCorrupted("the issuer has not accepted any checkpoint of the log yet")
        return self.follower.checkpoint

    @property
    def checkpoint_text(self) -> str:
        return self.follower.checkpoint_text

    def refresh(self) -> Checkpoint:
        """Follow the log up to its latest checkpoint (raises, for good, if the log is inconsistent)."""
        return self.follower.poll()

    def outcome(self, index: int) -> Outcome:
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
