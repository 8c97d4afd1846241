"""Passkeys of human approvers, online, with py_webauthn (the ``webauthn`` package).

The offline check of an approval's assertion is the fold's (``verifier.claims`` with ``verifier.webauthn``, no
``webauthn`` package). At approval time the issuer also verifies it with py_webauthn, a second, independent
implementation of W3C WebAuthn §7.2, before anything is logged: expected challenge = the decision challenge,
origin, RP ID and public key from the credential's enrolment on the log, user verification required. A failure is
an ``AssertionInvalid`` (403) and the log is unchanged.

For the browser flow: ``authentication_options`` (PublicKeyCredentialRequestOptions JSON whose challenge is the
decision's) and ``registration_options`` / ``verify_registration`` (enrolling a passkey, which yields the
``approver-enrolment`` payload for the namespace owner to sign).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.authentication.verify_authentication_response import VerifiedAuthentication
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from issuer.statements import enrolment_payload
from schemas.errors import AssertionCredentialUnknown, AssertionInvalid, PasskeyRegistrationInvalid, TabellionError
from verifier.claims import WEBAUTHN, decision_digest, enrolled_approver
from verifier.identity_state import IdentityState
from verifier.webauthn import b64url_decode, check_rp_origin, credential_key

ALGORITHMS: Final = [COSEAlgorithmIdentifier.EDDSA, COSEAlgorithmIdentifier.ECDSA_SHA_256,
                     COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256]
"""What the offline verifier accepts: EdDSA (-8), ES256 (-7), RS256 (-257)."""
TIMEOUT_MS: Final = 120_000


def verify_approval(
    state: IdentityState, payload: dict[str, Any], *, require_user_verification: bool = True
) -> VerifiedAuthentication | None:
    """Verify a claim approval's passkey assertion with py_webauthn against its enrolment in ``state``.

    ``None`` when there is nothing to check here: no ``webauthn`` (an operator's decision), or a claim the state
    does not know (the log refuses that approval with its own reason).
    """
    claim = state.claims.get(payload["claim"])
    if WEBAUTHN not in payload or claim is None:
        return None
    approver = enrolled_approver(state, claim.namespace, payload)
    assertion = payload[WEBAUTHN]
    response = {"authenticatorData": assertion["authenticator_data"], "clientDataJSON": assertion["client_data_json"],
                "signature": assertion["signature"]}
    if "user_handle" in assertion:
        response["userHandle"] = assertion["user_handle"]
    credential = {"id": approver.credential_id, "rawId": approver.credential_id, "type": "public-key",
                  "response": response, "clientExtensionResults": {}}
    try:
        return verify_authentication_response(
            credential=credential, expected_challenge=decision_digest(payload), expected_rp_id=approver.rp_id,
            expected_origin=approver.origin, credential_public_key=b64url_decode(approver.public_key, "public_key"),
            credential_current_sign_count=state.sign_counts.get(approver.entry, 0),
            require_user_verification=require_user_verification,
        )
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:  # py_webauthn raises these on bad input
        raise AssertionInvalid(f"py_webauthn refuses the assertion: {str(exc)[:300]}") from exc


def authentication_options(
    decision: Mapping[str, Any], rp_id: str, credential_ids: Sequence[bytes] = (), *, timeout_ms: int = TIMEOUT_MS
) -> dict[str, Any]:
    """PublicKeyCredentialRequestOptions (JSON) for a human to sign ``decision`` (a claim-approval payload; any
    ``webauthn`` in it is ignored): the challenge is its decision challenge, user verification required."""
    options = generate_authentication_options(
        rp_id=rp_id, challenge=decision_digest(dict(decision)), timeout=timeout_ms,
        allow_credentials=[PublicKeyCredentialDescriptor(id=c) for c in credential_ids],
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    value: dict[str, Any] = json.loads(options_to_json(options))
    return value


def approval_options(state: IdentityState, decision: Mapping[str, Any]) -> dict[str, Any]:
    """``authentication_options`` for the approver ``decision`` names, allowing each credential enrolled for them
    in the claim's namespace and not revoked (they share the RP ID of the first)."""
    claim = state.claims.get(decision["claim"])
    enrolled = [a for a in state.approvers.values() if claim is not None and a.namespace == claim.namespace
                and a.approver == decision["decided_by"] and a.entry not in state.revoked]
    if claim is None or not enrolled:
        raise AssertionCredentialUnknown(
            f"{str(decision['decided_by'])[:200]} has no passkey enrolled for the namespace of this claim"
        )
    rp_id = enrolled[0].rp_id
    ids = [b64url_decode(a.credential_id, "credential_id") for a in enrolled if a.rp_id == rp_id]
    return authentication_options(decision, rp_id, ids)


def user_id(approver: str) -> bytes:
    """The WebAuthn user handle of an approver: SHA-256 of its DID (stable, and no name in it)."""
    return hashlib.sha256(approver.encode()).digest()


def registration_options(
    *, rp_id: str, rp_name: str, approver: str, user_name: str, challenge: bytes | None = None,
    exclude_credential_ids: Sequence[bytes] = (), timeout_ms: int = TIMEOUT_MS,
) -> dict[str, Any]:
    """PublicKeyCredentialCreationOptions (JSON) to make a passkey for ``approver`` (its DID): no attestation,
    a discoverable credential preferred, user verification required, EdDSA/ES256/RS256. Keep the returned
    ``challenge`` for ``verify_registration`` (it is random unless given)."""
    options = generate_registration_options(
        rp_id=rp_id, rp_name=rp_name, user_name=user_name, user_id=user_id(approver), challenge=challenge,
        timeout=timeout_ms, attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED, user_verification=UserVerificationRequirement.REQUIRED),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=c) for c in exclude_credential_ids],
        supported_pub_key_algs=ALGORITHMS,
    )
    value: dict[str, Any] = json.loads(options_to_json(options))
    return value


def verify_registration(
    credential: Mapping[str, Any] | str, *, expected_challenge: bytes, namespace: str, approver: str, rp_id: str,
    origin: str, require_user_verification: bool = True,
) -> dict[str, str]:
    """Verify a navigator.credentials.create() response with py_webauthn; answer the ``approver-enrolment``
    payload that enrols the new passkey for ``approver`` in ``namespace`` (the owner signs and submits it)."""
    try:
        check_rp_origin(rp_id, origin)
        verified = verify_registration_response(
            credential=dict(credential) if isinstance(credential, Mapping) else credential,
            expected_challenge=expected_challenge, expected_rp_id=rp_id, expected_origin=origin,
            require_user_verification=require_user_verification, supported_pub_key_algs=ALGORITHMS,
        )
        credential_key(verified.credential_public_key)  # what the fold will need to verify its assertions
    except TabellionError as exc:
        raise PasskeyRegistrationInvalid(exc.detail) from exc
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        raise PasskeyRegistrationInvalid(f"py_webauthn refuses the registration: {str(exc)[:300]}") from exc
    return enrolment_payload(namespace, approver, verified.credential_id, verified.credential_public_key,
                             rp_id=rp_id, origin=origin)


__all__ = [
    "ALGORITHMS", "approval_options", "authentication_options", "registration_options", "user_id",
    "verify_approval", "verify_registration",
]
