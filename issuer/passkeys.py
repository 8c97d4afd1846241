"""Passkeys of human approvers, online, with py_webauthn (the ``webauthn`` package).

The offline check of an approval's assertion is the fold's (``verifier.claims`` with ``verifier.webauthn``, no
``webauthn`` package). At approval time the issuer also verifies it with py_webauthn, a second, independent
implementation of W3C WebAuthn §7.2, before anything is logged: expected challenge = the decision challenge,
origin, RP ID and public key from the credential's enrolment on the log, user verification required. A failure is
an ``AssertionInvalid`` (403) and the log is unchanged.

For the browser flow: ``authentication_options`` (PublicKeyCredentialRequestOptions JSON whose challenge is the
decision's), and the enrolment of a passkey with the human's consent (``verifier.claims``), in two ceremonies:
``enrolment_registration_options`` / ``verify_registration`` (the passkey is created over the enrolment request)
give the enrolment without its consent; ``consent_options`` / ``add_consent`` (the new passkey signs the
whole enrolment) complete the ``approver-enrolment`` payload for the namespace owner to sign.
"""

from __future__ import annotations

import hashlib
import json
import secrets
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
from verifier.claims import REGISTRATION, WEBAUTHN, decision_digest, enrolled_approver, enrolment_request_digest
from verifier.identity_state import IdentityState
from verifier.webauthn import b64url_decode, check_rp_origin, credential_did

ALGORITHMS: Final = [COSEAlgorithmIdentifier.EDDSA, COSEAlgorithmIdentifier.ECDSA_SHA_256,
                     COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256]
"""What the offline verifier accepts: EdDSA (-8), ES256 (-7), RS256 (-257)."""
TIMEOUT_MS: Final = 120_000
ENROLMENT: Final = "approver-enrolment"
USER_HANDLE_BYTES: Final = 32


def verify_decision(
    state: IdentityState, payload: dict[str, Any], *, statement_type: str, signer: str,
    require_user_verification: bool = True,
) -> VerifiedAuthentication | None:
    """Verify a claim decision's passkey assertion with py_webauthn against its enrolment in ``state``: a
    ``statement_type`` statement that ``signer`` signs.

    ``None`` when there is nothing to check here: no ``webauthn`` (an operator's decision), or a claim the state
    does not know (the log refuses that decision with its own reason).
    """
    claim = state.claims.get(payload["claim"])
    if WEBAUTHN not in payload or claim is None:
        return None
    approver = enrolled_approver(state, claim.namespace, payload)
    public_key = b64url_decode(approver.public_key, "public_key")
    return verify_payload_assertion(payload, approver.credential_id, public_key, statement_type=statement_type,
                                    signer=signer, rp_id=approver.rp_id, origin=approver.origin,
                                    sign_count=state.sign_counts.get(approver.entry, 0),
                                    require_user_verification=require_user_verification)


def verify_payload_assertion(payload: dict[str, Any], credential_id: str, public_key: bytes, *, statement_type: str,
                             signer: str, rp_id: str, origin: str, sign_count: int, require_user_verification: bool
                             ) -> VerifiedAuthentication:
    """py_webauthn's check of ``payload[webauthn]``, an assertion over ``decision_digest`` of the ``statement_type``
    statement ``signer`` signs with ``payload``."""
    assertion = payload[WEBAUTHN]
    response = {"authenticatorData": assertion["authenticator_data"], "clientDataJSON": assertion["client_data_json"],
                "signature": assertion["signature"]}
    if "user_handle" in assertion:
        response["userHandle"] = assertion["user_handle"]
    credential = {"id": credential_id, "rawId": credential_id, "type": "public-key",
                  "response": response, "clientExtensionResults": {}}
    challenge = decision_digest(payload, statement_type=statement_type, signer=signer)
    try:
        return verify_authentication_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp_id,
            expected_origin=origin, credential_public_key=public_key, credential_current_sign_count=sign_count,
            require_user_verification=require_user_verification,
        )
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:  # py_webauthn raises these on bad input
        raise AssertionInvalid(f"py_webauthn refuses the assertion: {str(exc)[:300]}") from exc


def authentication_options(
    decision: Mapping[str, Any], rp_id: str, credential_ids: Sequence[bytes] = (), *, statement_type: str,
    signer: str, timeout_ms: int = TIMEOUT_MS,
) -> dict[str, Any]:
    """PublicKeyCredentialRequestOptions (JSON) for a human to sign ``decision`` (the payload of a
    ``statement_type`` statement that ``signer`` will sign; any ``webauthn`` in it is ignored): the challenge is its
    decision challenge, user verification required."""
    challenge = decision_digest(decision, statement_type=statement_type, signer=signer)
    options = generate_authentication_options(
        rp_id=rp_id, challenge=challenge, timeout=timeout_ms,
        allow_credentials=[PublicKeyCredentialDescriptor(id=c) for c in credential_ids],
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    value: dict[str, Any] = json.loads(options_to_json(options))
    return value


def approval_options(state: IdentityState, decision: Mapping[str, Any], statement_type: str = "claim-approval"
                     ) -> dict[str, Any]:
    """``authentication_options`` for the approver ``decision`` names, allowing each credential enrolled for them
    in the claim's namespace and not revoked (they share the RP ID of the first); the namespace's owner signs."""
    claim = state.claims.get(decision["claim"])
    enrolled = [a for a in state.approvers.values() if claim is not None and a.namespace == claim.namespace
                and a.approver == decision["decided_by"] and a.entry not in state.revoked]
    if claim is None or not enrolled:
        raise AssertionCredentialUnknown(
            f"{str(decision['decided_by'])[:200]} has no passkey enrolled for the namespace of this claim"
        )
    rp_id = enrolled[0].rp_id
    ids = [b64url_decode(a.credential_id, "credential_id") for a in enrolled if a.rp_id == rp_id]
    return authentication_options(decision, rp_id, ids, statement_type=statement_type,
                                  signer=state.namespaces[claim.namespace])


def user_id(approver: str) -> bytes:
    """The WebAuthn user handle of an approver: SHA-256 of its DID (stable, and no name in it)."""
    return hashlib.sha256(approver.encode()).digest()


def registration_options(
    *, rp_id: str, rp_name: str, approver: str | None, user_name: str, challenge: bytes | None = None,
    exclude_credential_ids: Sequence[bytes] = (), timeout_ms: int = TIMEOUT_MS,
) -> dict[str, Any]:
    """PublicKeyCredentialCreationOptions (JSON) to make a passkey for ``approver`` (its DID; ``None``: the DID will
    be the passkey's own did:key, and its user handle is random, so that it replaces no other passkey of the
    authenticator): no attestation, a discoverable credential preferred, user verification required,
    EdDSA/ES256/RS256. Keep the returned ``challenge`` for ``verify_registration`` (it is random unless given)."""
    handle = user_id(approver) if approver is not None else secrets.token_bytes(USER_HANDLE_BYTES)
    options = generate_registration_options(
        rp_id=rp_id, rp_name=rp_name, user_name=user_name, user_id=handle, challenge=challenge,
        timeout=timeout_ms, attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED, user_verification=UserVerificationRequirement.REQUIRED),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=c) for c in exclude_credential_ids],
        supported_pub_key_algs=ALGORITHMS,
    )
    value: dict[str, Any] = json.loads(options_to_json(options))
    return value


def _request(namespace: str, approver: str | None, rp_id: str, origin: str) -> dict[str, str]:
    """The enrolment request a registration signs (``verifier.claims.enrolment_request_digest``): without
    ``approver`` for a passkey to be enrolled as its own did:key (``approver`` None)."""
    request = {"namespace": namespace, "rp_id": rp_id, "origin": origin}
    return request if approver is None else request | {"approver": approver}


def enrolment_registration_options(
    *, namespace: str, approver: str | None, rp_id: str, origin: str, rp_name: str, user_name: str,
    exclude_credential_ids: Sequence[bytes] = (),
) -> dict[str, Any]:
    """``registration_options`` whose challenge is the enrolment request's (``verifier.claims``): the passkey is
    created for ``approver`` (``None``: for its own did:key) in ``namespace`` at ``origin``, and its registration
    says so."""
    request = _request(namespace, approver, rp_id, origin)
    return registration_options(rp_id=rp_id, rp_name=rp_name, approver=approver, user_name=user_name,
                                challenge=enrolment_request_digest(request),
                                exclude_credential_ids=exclude_credential_ids)


def verify_registration(
    credential: Mapping[str, Any], *, namespace: str, approver: str | None, rp_id: str, origin: str,
    require_user_verification: bool = True,
) -> dict[str, Any]:
    """Verify a navigator.credentials.create() response (RegistrationResponseJSON) made with
    ``enrolment_registration_options``; answer the ``approver-enrolment`` payload with its ``registration``, still
    without the consent assertion (``consent_options``, ``add_consent``). With ``approver`` None the approver is
    the new passkey's own did:key (an RS256 passkey has none, and is refused)."""
    request = _request(namespace, approver, rp_id, origin)
    try:
        check_rp_origin(rp_id, origin)
        verified = verify_registration_response(
            credential=dict(credential), expected_challenge=enrolment_request_digest(request), expected_rp_id=rp_id,
            expected_origin=origin, require_user_verification=require_user_verification,
            supported_pub_key_algs=ALGORITHMS,
        )
        own = credential_did(verified.credential_public_key)  # and what the fold needs to verify its assertions
        if approver is None and own is None:
            raise PasskeyRegistrationInvalid("the passkey's key (RS256) has no did:key to be enrolled as; make an "
                                             "EdDSA or ES256 passkey, or name the approver")
        response = credential["response"]
        registration = {"client_data_json": str(response["clientDataJSON"]),
                        "attestation_object": str(response["attestationObject"])}
    except TabellionError as exc:
        raise PasskeyRegistrationInvalid(exc.detail) from exc
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        raise PasskeyRegistrationInvalid(f"py_webauthn refuses the registration: {str(exc)[:300]}") from exc
    payload: dict[str, Any] = enrolment_payload(namespace, approver or str(own), verified.credential_id,
                                                verified.credential_public_key, rp_id=rp_id, origin=origin)
    payload[REGISTRATION] = registration
    return payload


def consent_options(enrolment: Mapping[str, Any], *, owner: str) -> dict[str, Any]:
    """PublicKeyCredentialRequestOptions for the new passkey to sign the whole enrolment (its consent), which the
    namespace's ``owner`` will sign."""
    return authentication_options(enrolment, str(enrolment["rp_id"]),
                                  [b64url_decode(enrolment["credential_id"], "credential_id")],
                                  statement_type=ENROLMENT, signer=owner)


def add_consent(enrolment: Mapping[str, Any], assertion: Mapping[str, str],
                *, owner: str, require_user_verification: bool = True) -> dict[str, Any]:
    """The enrolment with ``webauthn``, the new passkey's assertion over it (``{credential_id, authenticator_data,
    client_data_json, signature[, user_handle]}``), checked with py_webauthn before the namespace's ``owner``
    signs it."""
    if assertion.get("credential_id") != enrolment["credential_id"]:
        raise AssertionCredentialUnknown("the consent assertion is made by another passkey than the one enrolled")
    payload = {**enrolment, WEBAUTHN: dict(assertion)}
    public_key = b64url_decode(enrolment["public_key"], "public_key")
    verify_payload_assertion(payload, str(enrolment["credential_id"]), public_key, statement_type=ENROLMENT,
                             signer=owner, rp_id=str(enrolment["rp_id"]),
                             origin=str(enrolment["origin"]), sign_count=0,
                             require_user_verification=require_user_verification)
    return payload


__all__ = [
    "ALGORITHMS", "add_consent", "approval_options", "authentication_options", "consent_options",
    "enrolment_registration_options", "registration_options", "user_id", "verify_decision", "verify_payload_assertion",
    "verify_registration",
]
