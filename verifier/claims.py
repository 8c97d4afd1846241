"""Claims: an agent asks a namespace owner for access to a service; the owner approves, rejects or revokes.

- ``claim-submission`` is signed by the agent itself (iss == ``agent``) for a namespace registered on the log;
  its ``claim_id`` is unique within the namespace, so a replay (same claim_id, new signature) is refused.
- ``claim-approval`` / ``claim-rejection`` are signed by the namespace's owner with its current key and name
  the submission's entry id in ``claim``; only a claim still ``submitted`` can be decided (a second decision
  is refused as replayed / not pending). ``decided_by`` (the human or operator DID) is recorded and must not be
  revoked; an approval of a revoked agent's claim is refused.
- An approval by a human carries ``webauthn``, the passkey assertion (kept as logged; its signature is checked
  offline elsewhere). Its client data must be a ``webauthn.get`` whose ``challenge`` is ``decision_challenge``
  of the payload: base64url(SHA-256(RFC 8785 JSON of the payload without ``webauthn``)), unpadded.
- ``claim-revocation`` (or a ``revocation`` naming the claim's entry id) is by the owner, of an approved claim.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace
from typing import Any, Final

from schemas.errors import TransitionInvalid
from schemas.identity_statements import canonical_json
from verifier.identity_state import (
    Claim,
    ClaimDecision,
    ClaimStatus,
    DecisionKind,
    IdentityState,
    LoggedStatement,
    Scope,
)

WEBAUTHN: Final = "webauthn"
WEBAUTHN_GET: Final = "webauthn.get"
_STATUS_AFTER: Final[dict[DecisionKind, tuple[ClaimStatus, ClaimStatus]]] = {
    "approval": ("submitted", "approved"),
    "rejection": ("submitted", "rejected"),
    "revocation": ("approved", "revoked"),
}


def decision_challenge(payload: dict[str, Any]) -> str:
    """The WebAuthn challenge a human signs to approve: base64url SHA-256 of the canonical decision, unpadded."""
    decision = {k: v for k, v in payload.items() if k != WEBAUTHN}
    return _b64url(hashlib.sha256(canonical_json(decision)).digest())


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def check_webauthn_challenge(payload: dict[str, Any]) -> None:
    """Raise unless the assertion's client data is a ``webauthn.get`` over ``decision_challenge(payload)``."""
    encoded = payload[WEBAUTHN]["client_data_json"]
    try:
        client_data = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (ValueError, RecursionError) as exc:  # RecursionError: JSON nested too deeply to decode
        raise TransitionInvalid(f"webauthn client_data_json is not base64url JSON: {str(exc)[:200]}") from exc
    if not isinstance(client_data, dict):
        raise TransitionInvalid("webauthn client_data_json is not a JSON object")
    if client_data.get("type") != WEBAUTHN_GET:
        raise TransitionInvalid(f"webauthn client data type is {str(client_data.get('type'))[:40]!r}, not webauthn.get")
    if client_data.get("challenge") != decision_challenge(payload):
        raise TransitionInvalid(
            "the webauthn challenge is not base64url(SHA-256(canonical JSON of the decision without webauthn))"
        )


def check_submission(state: IdentityState, s: LoggedStatement) -> Claim:
    p = s.payload
    agent, namespace, claim_id = p["agent"], p["namespace"], p["claim_id"]
    if s.issuer != agent:
        raise TransitionInvalid(f"iss {s.issuer[:200]} is not the claiming agent {agent[:200]}")
    revoked = state.revocation_of(agent)
    if revoked is not None:
        raise TransitionInvalid(f"the agent {agent[:200]} was revoked at entry {revoked.index} ({revoked.reason})")
    if namespace not in state.namespaces:
        raise TransitionInvalid(f"namespace {namespace!r} is not registered on this log")
    used = state.claim_ids.get((namespace, claim_id))
    if used is not None:
        raise TransitionInvalid(f"claim_id {claim_id!r} was already submitted in {namespace!r} (entry {used})")
    return Claim(s.entry, s.index, claim_id, agent, namespace, p["service"], Scope.from_json(p["scope"]), s.issued_at)


def check_decision(state: IdentityState, s: LoggedStatement, kind: DecisionKind) -> Claim:
    """The claim after an approval, rejection or claim-revocation statement; raise why it cannot be."""
    p = s.payload
    if kind == "approval" and WEBAUTHN in p:
        check_webauthn_challenge(p)
    text = p.get("note") if kind == "approval" else p["reason"]
    decision = ClaimDecision(kind, s.entry, s.index, s.issuer, p["decided_by"], s.issued_at, text, p.get(WEBAUTHN))
    return decide(state, p["claim"], decision)


def decide(state: IdentityState, claim_entry: str, decision: ClaimDecision) -> Claim:
    """The claim with ``decision`` applied; only the namespace owner decides, and only from the right status."""
    claim = state.claims.get(claim_entry)
    if claim is None:
        raise TransitionInvalid(f"{claim_entry[:80]} is not an accepted claim submission on this log")
    owner = state.namespaces[claim.namespace]
    if decision.signer != owner:
        raise TransitionInvalid(
            f"{decision.signer[:200]} is not the owner of namespace {claim.namespace!r}; only {owner[:200]} decides"
        )
    before, after = _STATUS_AFTER[decision.kind]
    if claim.status != before:
        raise TransitionInvalid(
            f"claim {claim.entry} is {claim.status}, not {before}: a {decision.kind} of it is replayed or out of turn"
        )
    revoked = state.revocation_of(decision.decided_by)
    if revoked is not None:
        raise TransitionInvalid(
            f"decided_by {decision.decided_by[:200]} was revoked at entry {revoked.index} ({revoked.reason})"
        )
    if decision.kind == "approval":
        revoked = state.revocation_of(claim.agent)
        if revoked is not None:
            raise TransitionInvalid(f"the claiming agent was revoked at entry {revoked.index} ({revoked.reason})")
    return replace(claim, status=after, decisions=(*claim.decisions, decision))
