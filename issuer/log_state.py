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
        self, client: LogReadClient, log_key: VerifierKey, receipt_keys: KeySet, events: EventSink | None = None,
        *, policy: Policy | None = None, witness_grace: float = 10.0,
    ) -> None:
        self.fold = Fold(service_signers=service_signers(receipt_keys))  # the log signs its did:web evidence
        self.events = events
        self.follower = LogFollower(client, log_key, receipt_keys, self._apply, policy=policy)
        self.witness_grace = witness_grace

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
        """Follow the log up to its latest checkpoint (raises, for good, if the log is inconsistent). With a
        witness policy, up to its latest witnessed checkpoint, and ``LogUnwitnessed`` (503) when a newer one has
        waited longer than ``witness_grace`` seconds for its quorum, or none is witnessed yet."""
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
