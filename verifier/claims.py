"""Claims: an agent asks a namespace owner for access to a service; the owner approves, rejects or revokes.

- ``claim-submission`` is signed by the agent itself (iss == ``agent``) for a namespace registered on the log;
  its ``claim_id`` is unique within the namespace, so a replay (same claim_id, new signature) is refused.
- ``claim-approval`` / ``claim-rejection`` / ``claim-revocation`` are signed by the namespace's owner with its
  current key and name the submission's entry id in ``claim``; only a claim still ``submitted`` can be approved
  or rejected, only an ``approved`` one revoked. ``decided_by`` says whose decision it is: the owner itself
  (``decided_by`` == iss), or a human approver, whose decision carries ``webauthn``, the passkey assertion (kept as
  logged). A decision naming anyone but the signer without that human's assertion is refused
  (``human-assertion-missing``): the namespace key alone never speaks for a human. Nobody approves their own claim
  (``claim-self-approval``: ``decided_by`` is the claim's agent).
- The assertion is verified offline here (``verifier.webauthn``): its credential must be enrolled for the claim's
  namespace (``approver-enrolment``) and not revoked, ``decided_by`` must be the enrolled approver, and it must be
  a ``webauthn.get`` from the enrolled origin and RP ID, user present and verified, whose ``challenge`` is
  ``decision_digest`` of the statement: SHA-256 of the RFC 8785 JSON of ``{"iss": signer, "payload": payload
  without webauthn, "type": statement type}``, and whose signature counter is above the one of the credential's
  last logged use. The type and the signer are bound too: a rejection's payload can equal a claim revocation's,
  and a revocation's names no namespace, so the payload alone would let an assertion be logged as another
  statement, or by another operator that enrolled the same passkey.
- ``approver-enrolment`` is signed by a namespace's owner and carries the human's consent, made with the passkey
  being enrolled: ``registration``, the passkey's creation (``webauthn.create``) whose challenge is
  ``enrolment_request_digest`` (SHA-256 of the RFC 8785 JSON of ``{namespace, approver, rp_id, origin}``) and whose
  attested credential is the one enrolled; and ``webauthn``, an assertion by that credential over
  ``decision_digest`` of the whole enrolment (registration included; its signer: the namespace's owner). Nobody
  can enrol someone else's passkey.
  The ``approver`` it names is one the enrolment proves or its signer may speak for (``approver-not-entitled``
  otherwise): the did:key of the passkey's own credential key (the passkey's consent is the DID's; its
  registration's request then leaves ``approver`` out, as the key did not exist yet), the owner itself, or a
  did:web at or under the owner's own did:web. Without this rule an owner could enrol its own passkey as another
  organisation's human and log decisions in that human's name.
  An enrolment is revoked by a ``revocation`` naming its entry id (by the owner or the approver).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final

from schemas.base64url import b64url
from schemas.errors import (
    AssertionApproverMismatch,
    AssertionCredentialRevoked,
    AssertionCredentialUnknown,
    DidWebInvalid,
    TabellionError,
)
from schemas.identity_statements import canonical_json
from verifier.did_web import DID_WEB, did_web_segments
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
from verifier.refusals import Refusal, Refused
from verifier.webauthn import (
    Assertion,
    Registration,
    b64url_decode,
    check_rp_origin,
    credential_did,
    verify_assertion,
    verify_registration,
)

WEBAUTHN: Final = "webauthn"
REGISTRATION: Final = "registration"
ENROLMENT_REQUEST: Final = ("namespace", "approver", "rp_id", "origin")
_STATUS_AFTER: Final[dict[DecisionKind, tuple[ClaimStatus, ClaimStatus]]] = {
    "approval": ("submitted", "approved"),
    "rejection": ("submitted", "rejected"),
    "revocation": ("approved", "revoked"),
}


def decision_digest(payload: Mapping[str, Any], *, statement_type: str, signer: str) -> bytes:
    """The raw challenge a human's assertion signs, for a claim decision, a revocation or an approver enrolment:
    SHA-256 of the RFC 8785 JSON of ``{"iss": signer, "payload": payload without webauthn, "type":
    statement_type}``. ``signer`` is the statement's CWT ``iss`` (the namespace's owner, who logs the decision)."""
    decision = {k: v for k, v in payload.items() if k != WEBAUTHN}
    return hashlib.sha256(canonical_json({"iss": signer, "payload": decision, "type": statement_type})).digest()


def enrolment_request_digest(payload: Mapping[str, Any], *, passkey_did: str | None = None) -> bytes:
    """SHA-256 of the RFC 8785 JSON of ``{namespace, approver, rp_id, origin}``: the challenge of the passkey's
    registration (made before its credential id and key exist, so it binds who is enrolled where).

    An enrolment of the passkey's own did:key (``approver`` is ``passkey_did``, or absent from a request) is
    requested before that key exists, so its request is ``{namespace, rp_id, origin}``: the credential the
    registration attests is the approver, and the consent assertion signs the whole enrolment, ``approver``
    included."""
    request = {k: payload[k] for k in ENROLMENT_REQUEST if k in payload}
    if passkey_did is not None and request.get("approver") == passkey_did:
        del request["approver"]
    return hashlib.sha256(canonical_json(request)).digest()


def decision_challenge(payload: Mapping[str, Any], *, statement_type: str, signer: str) -> str:
    """The WebAuthn challenge a human signs to decide: ``decision_digest`` in base64url, unpadded."""
    return b64url(decision_digest(payload, statement_type=statement_type, signer=signer))


def check_submission(state: IdentityState, s: LoggedStatement) -> Claim:
    p = s.payload
    agent, namespace, claim_id = p["agent"], p["namespace"], p["claim_id"]
    if s.issuer != agent:
        raise Refused(Refusal.CLAIM_ISSUER_MISMATCH, f"iss {s.issuer[:200]} is not the claiming agent {agent[:200]}")
    revoked = state.revocation_of(agent)
    if revoked is not None:
        raise Refused(Refusal.AGENT_REVOKED,
                      f"the agent {agent[:200]} was revoked at entry {revoked.index} ({revoked.reason})")
    if namespace not in state.namespaces:
        raise Refused(Refusal.NAMESPACE_UNKNOWN, f"namespace {namespace!r} is not registered on this log")
    used = state.claim_ids.get((namespace, claim_id))
    if used is not None:
        raise Refused(Refusal.CLAIM_ID_USED,
                      f"claim_id {claim_id!r} was already submitted in {namespace!r} (entry {used})")
    return Claim(s.entry, s.index, claim_id, agent, namespace, p["service"], Scope.from_json(p["scope"]), s.issued_at)


def check_decision(state: IdentityState, s: LoggedStatement, kind: DecisionKind) -> Claim:
    """The claim after an approval, rejection or claim-revocation statement; raise why it cannot be."""
    p = s.payload
    text = p.get("note") if kind == "approval" else p["reason"]
    decision = ClaimDecision(kind, s.entry, s.index, s.issuer, p["decided_by"], s.issued_at, text, p.get(WEBAUTHN))
    claim = decide(state, p["claim"], decision)
    if WEBAUTHN in p:
        approver, sign_count = check_human_decision(state, claim.namespace, p, statement_type=f"claim-{kind}",
                                                    signer=s.issuer)
        human = replace(decision, enrolment=approver.entry, sign_count=sign_count)
        claim = replace(claim, decisions=(*claim.decisions[:-1], human))
    elif p["decided_by"] != s.issuer:
        raise Refused(
            Refusal.HUMAN_ASSERTION_MISSING,
            f"decided_by {p['decided_by'][:200]} is not the signer {s.issuer[:200]}: a decision in another's name "
            "carries that human's passkey assertion (webauthn)",
        )
    return claim


def decide(state: IdentityState, claim_entry: str, decision: ClaimDecision) -> Claim:
    """The claim with ``decision`` applied; only the namespace owner decides, and only from the right status."""
    claim = state.claims.get(claim_entry)
    if claim is None:
        raise Refused(Refusal.CLAIM_UNKNOWN, f"{claim_entry[:80]} is not an accepted claim submission on this log")
    owner = state.namespaces[claim.namespace]
    if decision.signer != owner:
        raise Refused(
            Refusal.NOT_NAMESPACE_OWNER,
            f"{decision.signer[:200]} is not the owner of namespace {claim.namespace!r}; only {owner[:200]} decides",
        )
    before, after = _STATUS_AFTER[decision.kind]
    if claim.status != before:
        raise Refused(
            Refusal.CLAIM_NOT_PENDING,
            f"claim {claim.entry} is {claim.status}, not {before}: a {decision.kind} of it is replayed or out of turn",
        )
    revoked = state.revocation_of(decision.decided_by)
    if revoked is not None:
        raise Refused(
            Refusal.DECIDER_REVOKED,
            f"decided_by {decision.decided_by[:200]} was revoked at entry {revoked.index} ({revoked.reason})",
        )
    if decision.kind == "approval" and decision.decided_by == claim.agent:
        raise Refused(
            Refusal.CLAIM_SELF_APPROVAL,
            f"{claim.agent[:200]} submitted claim {claim.entry}: another than its agent decides its approval",
        )
    if decision.kind == "approval":
        revoked = state.revocation_of(claim.agent)
        if revoked is not None:
            raise Refused(Refusal.AGENT_REVOKED,
                          f"the claiming agent was revoked at entry {revoked.index} ({revoked.reason})")
    return replace(claim, status=after, decisions=(*claim.decisions, decision))


# --- human approvers: passkeys enrolled on the log, assertions verified offline ---------------------------


def check_enrolment(state: IdentityState, s: LoggedStatement) -> tuple[Approver, int]:
    """The approver an ``approver-enrolment`` enrols, with its passkey's signature counter; raise why it cannot be."""
    p = s.payload
    namespace, approver = p["namespace"], p["approver"]
    owner = state.namespaces.get(namespace)
    if owner is None:
        raise Refused(Refusal.NAMESPACE_UNKNOWN, f"namespace {namespace!r} is not registered on this log")
    if s.issuer != owner:
        raise Refused(
            Refusal.NOT_NAMESPACE_OWNER,
            f"{s.issuer[:200]} is not the owner of namespace {namespace!r}; only {owner[:200]} enrols its approvers",
        )
    revoked = state.revocation_of(approver)
    if revoked is not None:
        raise Refused(Refusal.APPROVER_REVOKED,
                      f"approver {approver[:200]} was revoked at entry {revoked.index} ({revoked.reason})")
    try:
        credential_id = b64url_decode(p["credential_id"], "credential_id")
        public_key = b64url_decode(p["public_key"], "public_key")
        passkey_did = credential_did(public_key)
        check_rp_origin(p["rp_id"], p["origin"])
    except TabellionError as exc:
        raise Refused(Refusal.ENROLMENT_UNUSABLE, f"the enrolment cannot verify assertions: {exc.detail}") from exc
    if approver != passkey_did:
        check_approver_named(approver, signer=s.issuer)
    credential = b64url(credential_id)
    used = state.approver_credentials.get((namespace, credential))
    if used is not None:
        raise Refused(Refusal.CREDENTIAL_ALREADY_ENROLLED,
                      f"credential {credential[:60]} is already enrolled in {namespace!r} (entry {used})")
    sign_count = _check_consent(p, credential_id, public_key, s.issuer, passkey_did)
    return Approver(s.entry, s.index, namespace, approver, credential, p["public_key"], p["rp_id"], p["origin"],
                    s.issuer), sign_count


def check_approver_named(approver: str, *, signer: str) -> None:
    """An approver that the enrolment's ``signer`` (the namespace's owner) may name for a passkey that is not the
    approver's own did:key: the signer itself (its signature is its consent), or a did:web at or under the signer's
    own did:web (``did_web_segments``: the same host and port, compared as hosts are, case-insensitively, then the
    signer's path segments, if any, first): a did:web operator was registered on the evidence of its own
    ``did.json``, so it controls that document's place and what lies beneath it: ``did:web:acme.example`` all of
    acme.example, ``did:web:hosting.example:u:alice`` only ``…:u:alice:…``, not another user's path on a shared host.
    Anything else is ``approver-not-entitled``: the owner would otherwise log decisions "decided_by" a DID that never
    consented (another organisation's human, an agent, a stranger)."""
    if approver == signer:
        return
    if approver.startswith(DID_WEB) and signer.startswith(DID_WEB):
        try:
            named, own = did_web_segments(approver), did_web_segments(signer)
        except DidWebInvalid as exc:
            raise Refused(Refusal.APPROVER_NOT_ENTITLED, f"approver {approver[:200]}: {exc.detail}") from exc
        if named[:len(own)] == own:
            return
    raise Refused(
        Refusal.APPROVER_NOT_ENTITLED,
        f"{signer[:200]} may not enrol a passkey as {approver[:200]}: an approver is the passkey's own did:key, the "
        "namespace's owner itself, or a did:web at or under the owner's own did:web",
    )


def _check_consent(p: dict[str, Any], credential_id: bytes, public_key: bytes, signer: str,
                   passkey_did: str | None) -> int:
    """The human's consent to an enrolment: the passkey was created for this enrolment request, and signed the
    whole enrolment. Returns the passkey's signature counter."""
    registered = verify_registration(Registration.from_json(p[REGISTRATION]),
                                     challenge=enrolment_request_digest(p, passkey_did=passkey_did),
                                     rp_id=p["rp_id"], origin=p["origin"])
    if registered.credential_id != credential_id or registered.public_key != public_key:
        raise Refused(Refusal.ENROLMENT_REGISTRATION_INVALID,
                      "the registration attests another credential than the one the enrolment names")
    assertion = Assertion.from_json(p[WEBAUTHN])
    if assertion.credential_id != credential_id:
        raise Refused(Refusal.ENROLMENT_REGISTRATION_INVALID,
                      "the enrolment's assertion is made by another credential than the one enrolled")
    challenge = decision_digest(p, statement_type="approver-enrolment", signer=signer)
    verified = verify_assertion(assertion, credential_public_key=public_key, challenge=challenge,
                                rp_id=p["rp_id"], origin=p["origin"], stored_sign_count=registered.sign_count)
    return verified.sign_count


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


def check_human_decision(state: IdentityState, namespace: str, payload: dict[str, Any], *, statement_type: str,
                         signer: str) -> tuple[Approver, int]:
    """Verify a decision's passkey assertion offline against its enrolment on the log (WebAuthn §7.2, UV required,
    over ``decision_digest`` of this statement type, signer and payload, the signature counter above the one of the
    credential's last logged approval); the approver and the counter."""
    approver = enrolled_approver(state, namespace, payload)
    verified = verify_assertion(
        Assertion.from_json(payload[WEBAUTHN]), credential_public_key=b64url_decode(approver.public_key, "public_key"),
        challenge=decision_digest(payload, statement_type=statement_type, signer=signer), rp_id=approver.rp_id,
        origin=approver.origin,
        stored_sign_count=state.sign_counts.get(approver.entry, 0),
    )
    return approver, verified.sign_count
