"""Signed identity statements, built and signed where the signer's key is (operator CLI, agents, tests).

Each function returns a COSE_Sign1 signed statement whose payload is the RFC 8785 canonical JSON of
its type (validated against the type's JSON Schema before signing), ``iss`` = the signer's identity
DID and ``kid`` = the verification method of the key that signs. An identity keeps its DID across key
rotations (for an operator, the did:key of its first key), so ``Signer`` carries both.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas import cose_labels as L
from schemas.base64url import b64url
from schemas.errors import InvalidParameter
from schemas.identity_statements import content_type, encode_payload
from transparency.client.signing import Signing, did_of, sign_statement
from verifier.claims import decision_challenge
from verifier.data_integrity import create_proof
from verifier.did_key import multibase_of
from verifier.fold import key_digest, witness_message
from verifier.passports import TIER_CAPS, format_timestamp, passport_verification_method, unsigned_passport


def multikey_of(key: Signing) -> str:
    return multibase_of(key.public_key())


@dataclass(frozen=True)
class Signer:
    """A signing key and the identity it signs for (``did`` defaults to the key's own did:key)."""

    key: Signing  # Ed25519 or P-256, held here or in a TPM (transparency.client.tpm.TpmSigner)
    did: str = ""

    @property
    def ed25519(self) -> Ed25519PrivateKey:
        """The key, for what only Ed25519 signs (eddsa-jcs-2022 proofs, task-bound token requests)."""
        if not isinstance(self.key, Ed25519PrivateKey):
            raise InvalidParameter(f"{self.identity[:200]} signs with a P-256 key; this needs an Ed25519 key")
        return self.key

    @property
    def identity(self) -> str:
        return self.did or did_of(self.key)

    def sign(self, statement_type: str, payload: dict[str, Any], *, subject: str | None = None,
             issued_at: int | None = None) -> bytes:
        claims = {L.CWT_IAT: int(time.time()) if issued_at is None else issued_at}
        return sign_statement(self.key, encode_payload(statement_type, payload), subject=subject or self.identity,
                              content_type=content_type(statement_type), issuer=self.identity, extra_claims=claims)


def operator_registration(operator: Signer, namespace: str, next_key: Ed25519PrivateKey,
                          witnesses: Sequence[str] = (), witness_threshold: int = 0) -> bytes:
    """Register ``operator`` as owner of ``namespace``, committing to ``next_key`` (pre-rotation)."""
    return operator.sign("operator-registration", {
        "operator": operator.identity, "namespace": namespace, "key": multikey_of(operator.key),
        "next_key_digest": key_digest(multikey_of(next_key)), "witnesses": list(witnesses),
        "witness_threshold": witness_threshold,
    })


def key_rotation(controller: str, new_key: Ed25519PrivateKey, *, sequence: int, previous: str,
                 next_key: Ed25519PrivateKey, witness_keys: Sequence[Ed25519PrivateKey] = ()) -> bytes:
    """Rotate ``controller`` to its committed ``new_key`` (which signs), committing to ``next_key``.

    ``previous`` is the entry id of the controller's last key event; each witness key signs the rotation.
    """
    payload: dict[str, Any] = {
        "controller": controller, "sequence": sequence, "previous": previous, "key": multikey_of(new_key),
        "next_key_digest": key_digest(multikey_of(next_key)), "witness_signatures": [],
    }
    message = witness_message(payload)
    payload["witness_signatures"] = [{"witness": did_of(w), "signature": b64url(w.sign(message))} for w in witness_keys]
    return Signer(new_key, controller).sign("key-rotation", payload)


@dataclass(frozen=True)
class PassportRequest:
    agent: str
    tier: str
    machine_fingerprint: str
    jurisdiction: str
    policy_bundle: str
    status_list: str
    status_index: int
    lifetime: int | None = None  # seconds; default and maximum: the tier's cap


def agent_passport(operator: Signer, request: PassportRequest, *, now: int | None = None) -> bytes:
    """Issue an agent passport: the VC 2.0 credential with its eddsa-jcs-2022 proof by the operator's key."""
    cap = TIER_CAPS.get(request.tier)
    if cap is None:
        raise InvalidParameter(f"substrate tier {request.tier!r} is not one of {', '.join(TIER_CAPS)}")
    start = int(time.time()) if now is None else now
    unsigned = unsigned_passport(
        credential_id=f"urn:uuid:{uuid.uuid4()}", operator=operator.identity, agent=request.agent,
        tier=request.tier, valid_from=start, valid_until=start + (request.lifetime or cap),
        machine_fingerprint=request.machine_fingerprint, jurisdiction=request.jurisdiction,
        policy_bundle=request.policy_bundle, status_list=request.status_list, status_index=request.status_index,
    )
    method = passport_verification_method(operator.identity, multikey_of(operator.key))
    credential = create_proof(unsigned, operator.ed25519, method, format_timestamp(start))
    return operator.sign("agent-passport", {"credential": credential}, subject=request.agent, issued_at=start)


def delegation(principal: Signer, agent: str, scope: dict[str, list[str]], *, not_after: int, max_depth: int,
               parent: str | None = None) -> bytes:
    return principal.sign("delegation", {"principal": principal.identity, "agent": agent, "parent": parent,
                                         "scope": scope, "not_after": not_after, "max_depth": max_depth},
                          subject=agent)


def claim_submission(agent: Signer, claim_id: str, namespace: str, service: str,
                     scope: dict[str, list[str]]) -> bytes:
    return agent.sign("claim-submission", {"claim_id": claim_id, "agent": agent.identity, "namespace": namespace,
                                           "service": service, "scope": scope})


def approval_payload(claim: str, decided_by: str, note: str | None = None) -> dict[str, Any]:
    """The decision a human approves; its ``decision_challenge`` is what their passkey signs."""
    payload: dict[str, Any] = {"claim": claim, "decided_by": decided_by}
    if note is not None:
        payload["note"] = note
    return payload


def claim_approval(owner: Signer, claim: str, *, decided_by: str | None = None, note: str | None = None,
                   webauthn: dict[str, str] | None = None) -> bytes:
    """Approve a claim; ``webauthn`` is a passkey assertion over ``decision_challenge`` of the decision."""
    payload = approval_payload(claim, decided_by or owner.identity, note)
    if webauthn is not None:
        payload["webauthn"] = webauthn
    return owner.sign("claim-approval", payload)


DECISION_TYPES = {"approval": "claim-approval", "rejection": "claim-rejection", "revocation": "claim-revocation"}


def decision_payload(kind: str, claim: str, decided_by: str, text: str | None = None) -> dict[str, Any]:
    """The payload of a claim decision (``approval``, ``rejection`` or ``revocation``) by ``decided_by``, without its
    ``webauthn``: what a human's passkey signs (``decision_challenge``). ``text`` is the approval's note, or the
    rejection's or revocation's reason (a revocation's is an RFC 5280 reason code)."""
    if kind not in DECISION_TYPES:
        raise InvalidParameter(f"a claim decision is one of {', '.join(DECISION_TYPES)}, not {kind[:40]!r}")
    if kind == "approval":
        return approval_payload(claim, decided_by, text)
    return {"claim": claim, "decided_by": decided_by, "reason": text or "privilegeWithdrawn"}


def claim_decision(owner: Signer, kind: str, payload: dict[str, Any]) -> bytes:
    """The owner's statement of a decision ``payload`` (``decision_payload``, with the human's ``webauthn``)."""
    return owner.sign(DECISION_TYPES[kind], payload)


def claim_rejection(owner: Signer, claim: str, reason: str) -> bytes:
    return owner.sign("claim-rejection", {"claim": claim, "decided_by": owner.identity, "reason": reason})


def claim_revocation(owner: Signer, claim: str, reason: str = "privilegeWithdrawn") -> bytes:
    return owner.sign("claim-revocation", {"claim": claim, "decided_by": owner.identity, "reason": reason})


def agent_consent(agent: Signer, operator: str) -> bytes:
    """The agent (signing with its own did:key) accepts ``operator`` as its controller: only that operator may then
    issue it passports, grant it root delegations or revoke its DID."""
    return agent.sign("agent-consent", {"agent": agent.identity, "operator": operator})


def revocation(signer: Signer, target: str, reason: str, *, decided_by: str | None = None,
               webauthn: dict[str, Any] | None = None) -> bytes:
    """Revoke ``target``; a revocation a human decided in the signer's name names them (``decided_by``) and
    carries their passkey assertion over the payload (``webauthn``)."""
    payload: dict[str, Any] = {"target": target, "reason": reason}
    if decided_by is not None:
        payload["decided_by"] = decided_by
    if webauthn is not None:
        payload["webauthn"] = webauthn
    return signer.sign("revocation", payload)


def enrolment_payload(namespace: str, approver: str, credential_id: bytes, public_key: bytes, *, rp_id: str,
                      origin: str) -> dict[str, str]:
    """An approver-enrolment payload: the passkey (credential id, CBOR COSE_Key) of ``approver`` (a DID)."""
    return {"namespace": namespace, "approver": approver, "credential_id": b64url(credential_id),
            "public_key": b64url(public_key), "rp_id": rp_id, "origin": origin}


def approver_enrolment(owner: Signer, enrolment: dict[str, Any]) -> bytes:
    """Enrol a human's passkey as an approver of the owner's namespace (``enrolment_payload``; the subject is the
    approver); its revocation names this statement's entry id."""
    return owner.sign("approver-enrolment", enrolment, subject=enrolment["approver"])


__all__ = [
    "DECISION_TYPES", "PassportRequest", "Signer", "agent_consent", "agent_passport", "approval_payload",
    "approver_enrolment", "claim_approval", "claim_decision", "claim_rejection", "claim_revocation",
    "claim_submission", "decision_challenge", "decision_payload", "delegation", "enrolment_payload", "key_rotation",
    "multikey_of", "operator_registration", "revocation",
]
