"""The six gates of ``POST /v1/enrol/submit`` (docs/tpm.md), each fail-closed with its own code.

``run_gates`` takes the parsed submission, the session its token opened and the identity state of the log, and
returns the ``agent-enrolment`` payload the service then signs and logs; any gate that fails raises its
``EnrolmentRefused`` (whatever failed inside it, a malformed structure or a bad signature, is in the detail), and
nothing is logged. In order:

G1  the EK certificate chains, through the intermediates the agent sent, to a root pinned on the log (an accepted,
    unrevoked ``trust-anchor`` of purpose ``tpm-endorsement``);
G2  ``machine_fingerprint`` is ``sha256:`` + hex SHA-256 of the EK certificate's SubjectPublicKeyInfo;
G3  the quote is a TPMS_ATTEST of type quote made by the TPM (magic), its ``extraData`` is the session's nonce,
    its signature verifies with the AK; the PCR selection and digest are recorded (not compared with reference
    values: there are none to compare with);
G4  the credential the service made at start for this EK certificate and this AK's Name was activated: the EK
    certificate and AK are the ones of the session, and the activated credential is the one made;
G5  platform ``tpm2`` (anything else, such as Apple's Secure Enclave or Windows platform attestation, is refused:
    not supported); the AK is a restricted signing key that never left its TPM (``fixedTPM``, ``fixedParent``,
    ``sensitiveDataOrigin``, ``restricted``, ``sign``, not ``decrypt``); the agent key is an unrestricted ECDSA
    P-256 signing key with ``fixedTPM``, ``fixedParent`` and ``sensitiveDataOrigin`` (created in the TPM, not
    exportable), certified by the AK with TPM2_Certify over the nonce, and the agent's did:key is that key;
G6  the operator owns the namespace, and the request carries a user-verified passkey assertion over
    ``enrolment_digest`` by an approver enrolled in that namespace (``verifier.enrolments``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn import verify_authentication_response
from webauthn.helpers.exceptions import WebAuthnException

from schemas.base64url import b64url_decode
from schemas.errors import TabellionError
from transparency.tpm.ek_chain import ChainedEk, PinnedRoot, pem_certificate, walk
from transparency.tpm.errors import EnrolmentRefused, EnrolmentRequestInvalid, Gate
from transparency.tpm.sessions import Session
from transparency.tpm.structures import (
    ALG_ECDSA,
    ALG_NULL,
    ALG_SHA256,
    DECRYPT,
    ECC_NIST_P256,
    FIXED_PARENT,
    FIXED_TPM,
    RESTRICTED,
    SENSITIVE_DATA_ORIGIN,
    SIGN_ENCRYPT,
    ST_ATTEST_CERTIFY,
    ST_ATTEST_QUOTE,
    TpmPublic,
    attribute_names,
    parse_attest,
    parse_public,
    parse_signature,
    verify_signature,
)
from verifier.did_key import did_key_from_public
from verifier.enrolments import GATES, check_operator_approval, enrolment_digest
from verifier.identity_state import IdentityState

PLATFORM_TPM2 = "tpm2"
NOT_SUPPORTED = {"apple-secure-enclave": "Apple Secure Enclave / App Attest",
                 "windows": "Windows platform attestation (TPM via Windows' attestation service)"}
AK_REQUIRED = FIXED_TPM | FIXED_PARENT | SENSITIVE_DATA_ORIGIN | RESTRICTED | SIGN_ENCRYPT
AGENT_KEY_REQUIRED = FIXED_TPM | FIXED_PARENT | SENSITIVE_DATA_ORIGIN | SIGN_ENCRYPT


@dataclass(frozen=True)
class Attestation:
    attest: bytes
    signature: bytes


@dataclass(frozen=True)
class Submission:
    """A parsed ``POST /v1/enrol/submit`` body (bytes decoded from base64url; see docs/tpm.md)."""

    token: str
    agent: str
    operator: str
    namespace: str
    platform: str
    machine_fingerprint: str
    ek_certificate: bytes
    ek_chain: tuple[bytes, ...]
    ak_public: bytes
    agent_key_public: bytes
    quote: Attestation
    certify: Attestation
    activated_credential: bytes
    webauthn: dict[str, Any]

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Submission:
        def text(name: str, limit: int = 512) -> str:
            value = body.get(name)
            if not isinstance(value, str) or not value or len(value) > limit:
                raise EnrolmentRequestInvalid(f"{name!r} must be a non-empty string of at most {limit} characters")
            return value

        def data(value: object, name: str) -> bytes:
            return b64url_decode(value, name, EnrolmentRequestInvalid)

        def attestation(name: str) -> Attestation:
            value = body.get(name)
            if not isinstance(value, dict):
                raise EnrolmentRequestInvalid(f"{name!r} must be an object with 'attest' and 'signature'")
            return Attestation(data(value.get("attest"), f"{name}.attest"),
                               data(value.get("signature"), f"{name}.signature"))

        chain = body.get("ek_chain", [])
        if not isinstance(chain, list) or len(chain) > 5:
            raise EnrolmentRequestInvalid("'ek_chain' must be a list of at most 5 base64url certificates")
        webauthn = body.get("webauthn")
        if not isinstance(webauthn, dict):
            raise EnrolmentRequestInvalid("'webauthn' must be the operator's passkey assertion (an object)")
        return cls(
            text("token"), text("agent"), text("operator"), text("namespace", 63), text("platform", 64),
            text("machine_fingerprint", 80), data(body.get("ek_certificate"), "ek_certificate"),
            tuple(data(c, "ek_chain item") for c in chain), data(body.get("ak_public"), "ak_public"),
            data(body.get("agent_key_public"), "agent_key_public"), attestation("quote"), attestation("certify"),
            data(body.get("activated_credential"), "activated_credential"), webauthn,
        )


def pinned_roots(state: IdentityState) -> list[PinnedRoot]:
    """The TPM endorsement roots pinned on the log and not revoked."""
    return [PinnedRoot(anchor.entry, pem_certificate(anchor.pem)) for anchor in state.trust_anchors.values()
            if anchor.entry not in state.revoked]


def _within(gate: Gate, what: str, exc: TabellionError) -> EnrolmentRefused:
    return EnrolmentRefused(gate, f"{what}: {exc.code}: {exc.detail}")


def gate_g1(s: Submission, state: IdentityState, now: int) -> ChainedEk:
    try:
        return walk(s.ek_certificate, list(s.ek_chain), pinned_roots(state), datetime.fromtimestamp(now, UTC))
    except EnrolmentRefused:  # G1's own refusal
        raise
    except TabellionError as exc:
        raise _within(Gate.G1, "the EK chain", exc) from exc


def gate_g2(s: Submission, chained: ChainedEk) -> None:
    try:
        expected = "sha256:" + chained.spki_sha256
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise EnrolmentRefused(Gate.G2, f"the EK certificate's public key cannot be read: {exc}") from exc
    if s.machine_fingerprint != expected:
        raise EnrolmentRefused(
            Gate.G2, f"the declared machine fingerprint {s.machine_fingerprint[:80]} is not SHA-256 of "
            f"the EK's SubjectPublicKeyInfo ({expected})")


def _public(data: bytes, what: str, gate: Gate) -> TpmPublic:
    try:
        return parse_public(data, what)
    except TabellionError as exc:
        raise _within(gate, what, exc) from exc


def _verified(ak: TpmPublic, att: Attestation, what: str, kind: int, nonce: bytes,
              gate: Gate) -> Any:
    try:
        parsed = parse_attest(att.attest, what)
        if parsed.type != kind:
            raise EnrolmentRefused(gate, f"the {what} is a TPMS_ATTEST of type 0x{parsed.type:04x}, not 0x{kind:04x}")
        verify_signature(ak, att.attest, parse_signature(att.signature, f"the {what}'s signature"), what)
    except EnrolmentRefused:
        raise
    except TabellionError as exc:
        raise _within(gate, f"the {what}", exc) from exc
    if parsed.extra_data != nonce:
        raise EnrolmentRefused(
            gate, f"the {what}'s qualifyingData is not this enrolment's nonce (a stale or foreign nonce)")
    return parsed


def gate_g3(s: Submission, session: Session) -> tuple[TpmPublic, Any]:
    ak = _public(s.ak_public, "the AK's TPMT_PUBLIC", Gate.G3)
    quote = _verified(ak, s.quote, "quote", ST_ATTEST_QUOTE, session.nonce, Gate.G3)
    if len(quote.pcr_selection) != 1 or not quote.pcr_selection[0].pcrs:
        raise EnrolmentRefused(Gate.G3, "the quote must select PCRs of exactly one bank")
    return ak, quote


def gate_g4(s: Submission, session: Session, ak: TpmPublic) -> None:
    if hashlib.sha256(s.ek_certificate).hexdigest() != session.ek_certificate_sha256:
        raise EnrolmentRefused(Gate.G4, "the EK certificate is not the one the credential was made for at start")
    if ak.name.hex() != session.ak_name:
        raise EnrolmentRefused(Gate.G4, "the AK is not the one the credential was made for at start")
    if not session.check_credential(s.activated_credential):
        raise EnrolmentRefused(Gate.G4, "the activated credential is not the one made for this EK and AK: the AK is "
                                     "not in the TPM that holds the EK")


def gate_g5(s: Submission, session: Session, ak: TpmPublic) -> tuple[TpmPublic, Any]:
    if s.platform != PLATFORM_TPM2:
        name = NOT_SUPPORTED.get(s.platform, f"platform {s.platform[:64]!r}")
        raise EnrolmentRefused(
            Gate.G5, f"{name} is not supported; only TPM 2.0 ({PLATFORM_TPM2}) attestation is checked")
    _attributes(ak, AK_REQUIRED, "the AK")
    key = _public(s.agent_key_public, "the agent key's TPMT_PUBLIC", Gate.G5)
    _attributes(key, AGENT_KEY_REQUIRED, "the agent key")
    if key.has(RESTRICTED):
        raise EnrolmentRefused(
            Gate.G5, "the agent key is restricted: it could not sign the agent's statements and requests")
    if key.curve != ECC_NIST_P256 or key.scheme not in (ALG_ECDSA, ALG_NULL) or (
            key.scheme == ALG_ECDSA and key.scheme_hash != ALG_SHA256):
        raise EnrolmentRefused(Gate.G5, "the agent key is not an ECDSA P-256 (SHA-256) key")
    certify = _verified(ak, s.certify, "certification", ST_ATTEST_CERTIFY, session.nonce, Gate.G5)
    if certify.certified_name != key.name:
        raise EnrolmentRefused(Gate.G5, "the AK certified another object than the agent key (its Name differs)")
    if not isinstance(key.public_key, ec.EllipticCurvePublicKey):
        raise EnrolmentRefused(Gate.G5, "the agent key is not an ECC key")
    did = did_key_from_public(key.public_key)
    if s.agent != did:
        raise EnrolmentRefused(Gate.G5, f"the agent {s.agent[:200]} is not the did:key of the certified key ({did})")
    return key, certify


def _attributes(public: TpmPublic, required: int, what: str) -> None:
    missing = attribute_names(required & ~public.attributes)
    if missing:
        raise EnrolmentRefused(
            Gate.G5, f"{what} lacks {', '.join(missing)}: it may have been made outside the TPM, or can leave "
            "it")
    if public.has(DECRYPT):
        raise EnrolmentRefused(Gate.G5, f"{what} is a decryption key, not only a signing key")


def request_payload(s: Submission, chained: ChainedEk, ak: TpmPublic, key: TpmPublic, quote: Any,
                    session: Session) -> dict[str, Any]:
    """The enrolment request: what ``enrolment_digest`` covers (``verifier.enrolments.ENROLMENT_REQUEST``)."""
    del chained
    return {
        "agent": s.agent, "operator": s.operator, "namespace": s.namespace, "platform": s.platform,
        "machine_fingerprint": s.machine_fingerprint,
        "ek_certificate_sha256": hashlib.sha256(s.ek_certificate).hexdigest(), "ak_name": ak.name.hex(),
        "quote_sha256": hashlib.sha256(s.quote.attest).hexdigest(),
        "certify_sha256": hashlib.sha256(s.certify.attest).hexdigest(), "agent_key_name": key.name.hex(),
        "nonce": session.nonce.hex(),
    }


def gate_g6(s: Submission, state: IdentityState, request: dict[str, Any]) -> bytes:
    if state.namespaces.get(s.namespace) != s.operator:
        raise EnrolmentRefused(Gate.G6, f"{s.operator[:200]} is not the owner of namespace {s.namespace[:63]!r} on "
                                      "this log")
    digest = enrolment_digest(request)
    try:
        entry, _ = check_operator_approval(state, s.namespace, s.webauthn, digest)
    except TabellionError as exc:
        raise _within(Gate.G6, "the operator's passkey assertion", exc) from exc
    _second_opinion(state, entry, s.webauthn, digest)
    return digest


def _second_opinion(state: IdentityState, entry: str, assertion: dict[str, Any], digest: bytes) -> None:
    """py_webauthn checks the assertion too (an independent implementation, as the issuer does for claim
    decisions); the fold checks it a third time, offline."""
    approver = state.approvers[entry]
    response = {"authenticatorData": assertion["authenticator_data"], "clientDataJSON": assertion["client_data_json"],
                "signature": assertion["signature"]}
    credential = {"id": approver.credential_id, "rawId": approver.credential_id, "type": "public-key",
                  "response": response, "clientExtensionResults": {}}
    try:
        verify_authentication_response(
            credential=credential, expected_challenge=digest, expected_rp_id=approver.rp_id,
            expected_origin=approver.origin, credential_public_key=b64url_decode(approver.public_key, "public_key"),
            credential_current_sign_count=state.sign_counts.get(entry, 0), require_user_verification=True,
        )
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:  # py_webauthn raises these on bad input
        raise EnrolmentRefused(Gate.G6, f"py_webauthn refuses the operator's assertion: {str(exc)[:300]}") from exc


def run_gates(s: Submission, session: Session, state: IdentityState, now: int) -> dict[str, Any]:
    """G1 to G6 in order; the ``agent-enrolment`` payload when all pass (module docstring)."""
    chained = gate_g1(s, state, now)
    gate_g2(s, chained)
    ak, quote = gate_g3(s, session)
    gate_g4(s, session, ak)
    key, _ = gate_g5(s, session, ak)
    request = request_payload(s, chained, ak, key, quote, session)
    digest = gate_g6(s, state, request)
    selection = quote.pcr_selection[0]
    return {
        **request, "ek_root_sha256": chained.root.sha256, "trust_anchor": chained.root.entry,
        "quote_pcr_selection": selection.text(), "quote_pcr_digest": quote.pcr_digest.hex(),
        "enrolment_digest": digest.hex(), "webauthn": s.webauthn, "gates": list(GATES), "enrolled_at": now,
    }
