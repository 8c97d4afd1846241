"""Claims: an agent asks a namespace owner for access to a service; the owner approves, rejects or revokes.

- ``claim-submission`` is signed by the agent itself (iss == ``agent``) for a namespace registered on the log;
  its ``claim_id`` is unique within the namespace, so a replay (same claim_id, new signature) is refused.
- ``claim-approval`` / ``claim-rejection`` are signed by the namespace's owner with its current key and name
  the submission's entry id in ``claim``; only a claim still ``submitted`` can be decided (a second decision
  is refused as replayed / not pending). ``decided_by`` (the human or operator DID) is recorded and must not be
  revoked; an approval of a revoked agent's claim is refused.
- An approval by a human carries ``webauthn``, the passkey assertion (kept as logged), verified offline here
  (``verifier.webauthn``): its credential must be enrolled for the claim's namespace (``approver-enrolment``) and
  not revoked, ``decided_by`` must be the enrolled approver, and the assertion must be a ``webauthn.get`` from the
  enrolled origin and RP ID, user present and verified, whose ``challenge`` is ``decision_challenge`` of the
  payload: base64url(SHA-256(RFC 8785 JSON of the payload without ``webauthn``)), unpadded. An approval without
  ``webauthn`` is the owner's own decision.
- ``approver-enrolment`` is signed by a namespace's owner: it enrols a human's passkey (credential id, COSE public
  key, RP ID, origin) as an approver for that namespace, once per credential. It is revoked by a ``revocation``
  naming its entry id (by the owner or the approver), or with every credential of the approver by one naming the
  approver's DID (by the approver, or the owner of a namespace that enrolled it).
- ``claim-revocation`` (or a ``revocation`` naming the claim's entry id) is by the owner, of an approved claim.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any, Final

from schemas.base64url import b64url
from schemas.errors import (
    AssertionApproverMismatch,
    AssertionCredentialRevoked,
    AssertionCredentialUnknown,
    TabellionError,
    TransitionInvalid,
)
from schemas.identity_statements import canonical_json
from verifier.identity_state import (
    Approver,
    Claim,
    ClaimDecision,
    ClaimStatus,
    DecisionKind,
    IdentityState,
    LoggedStatement,
    Scope,
)
from verifier.webauthn import Assertion, b64url_decode, check_rp_origin, credential_key, verify_assertion

WEBAUTHN: Final = "webauthn"
_STATUS_AFTER: Final[dict[DecisionKind, tuple[ClaimStatus, ClaimStatus]]] = {
    "approval": ("submitted", "approved"),
    "rejection": ("submitted", "rejected"),
    "revocation": ("approved", "revoked"),
}


def decision_digest(payload: dict[str, Any]) -> bytes:
    """SHA-256 of the RFC 8785 JSON of the decision (the payload without ``webauthn``): the raw challenge."""
    return hashlib.sha256(canonical_json({k: v for k, v in payload.items() if k != WEBAUTHN})).digest()


def decision_challenge(payload: dict[str, Any]) -> str:
    """The WebAuthn challenge a human signs to approve: base64url SHA-256 of the canonical decision, unpadded."""
    return b64url(decision_digest(payload))


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
    text = p.get("note") if kind == "approval" else p["reason"]
    decision = ClaimDecision(kind, s.entry, s.index, s.issuer, p["decided_by"], s.issued_at, text, p.get(WEBAUTHN))
    claim = decide(state, p["claim"], decision)
    if kind == "approval" and WEBAUTHN in p:
        approver, sign_count = check_human_approval(state, claim.namespace, p)
        human = replace(decision, enrolment=approver.entry, sign_count=sign_count)
        claim = replace(claim, decisions=(*claim.decisions[:-1], human))
    return claim


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


# --- human approvers: passkeys enrolled on the log, assertions verified offline ---------------------------


def check_enrolment(state: IdentityState, s: LoggedStatement) -> Approver:
    """The approver an ``approver-enrolment`` enrols; raise why it cannot be."""
    p = s.payload
    namespace, approver = p["namespace"], p["approver"]
    owner = state.namespaces.get(namespace)
    if owner is None:
        raise TransitionInvalid(f"namespace {namespace!r} is not registered on this log")
    if s.issuer != owner:
        raise TransitionInvalid(
            f"{s.issuer[:200]} is not the owner of namespace {namespace!r}; only {owner[:200]} enrols its approvers"
        )
    revoked = state.revocation_of(approver)
    if revoked is not None:
        raise TransitionInvalid(f"approver {approver[:200]} was revoked at entry {revoked.index} ({revoked.reason})")
    try:
        credential = b64url(b64url_decode(p["credential_id"], "credential_id"))
        credential_key(b64url_decode(p["public_key"], "public_key"))
        check_rp_origin(p["rp_id"], p["origin"])
    except TabellionError as exc:
        raise TransitionInvalid(f"the enrolment cannot verify assertions: {exc.detail}") from exc
    used = state.approver_credentials.get((namespace, credential))
    if used is not None:
        raise TransitionInvalid(f"credential {credential[:60]} is already enrolled in {namespace!r} (entry {used})")
    return Approver(s.entry, s.index, namespace, approver, credential, p["public_key"], p["rp_id"], p["origin"],
                    s.issuer)


def enrolled_approver(state: IdentityState, namespace: str, payload: dict[str, Any]) -> Approver:
    """The enrolment of the credential an approval's assertion names: enrolled in ``namespace``, not revoked, for
    the approval's ``decided_by``; raise which of these fails."""
    credential = b64url(b64url_decode(payload[WEBAUTHN]["credential_id"], "webauthn credential_id"))
    entry = state.approver_credentials.get((namespace, credential))
    if entry is None:
        raise AssertionCredentialUnknown(f"credential {credential[:60]} is not an enrolled approver of {namespace!r}")
    approver = state.approvers[entry]
    revoked = state.revoked.get(entry)
    if revoked is not None:
        raise AssertionCredentialRevoked(
            f"credential {credential[:60]} (enrolment {entry}) was revoked at entry {revoked.index} ({revoked.reason})"
        )
    if payload["decided_by"] != approver.approver:
        raise AssertionApproverMismatch(
            f"decided_by {payload['decided_by'][:200]} is not {approver.approver[:200]}, whom credential "
            f"{credential[:60]} was enrolled for"
        )
    return approver


def check_human_approval(state: IdentityState, namespace: str, payload: dict[str, Any]) -> tuple[Approver, int]:
    """Verify an approval's passkey assertion offline against its enrolment on the log (WebAuthn §7.2, UV required,
    the signature counter above the one of the credential's last logged approval); the approver and the counter."""
    approver = enrolled_approver(state, namespace, payload)
    verified = verify_assertion(
        Assertion.from_json(payload[WEBAUTHN]), credential_public_key=b64url_decode(approver.public_key, "public_key"),
        challenge=decision_digest(payload), rp_id=approver.rp_id, origin=approver.origin,
        stored_sign_count=state.sign_counts.get(approver.entry, 0),
    )
    return approver, verified.sign_count
