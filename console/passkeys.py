"""The console's passkey checks (py_webauthn), each against the passkeys the log holds for the namespace
(``GET /v1/approvers``): the enrolled credential, its public key, RP ID and origin, the counter of its last logged
use, and whether it was revoked.

- **Sign-in**: a discoverable-credential assertion over a random one-time challenge; UV required.
- **A decision** (approve, reject or revoke a claim; revoke an agent): an assertion over ``decision_digest`` of the
  decision's payload, by a passkey enrolled for the signed-in approver; UV required. Only then does the console sign
  with the namespace key. The issuer checks the logged decision again (py_webauthn), and the log's fold offline.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from typing import Any, Final

from webauthn import generate_authentication_options, options_to_json, verify_authentication_response
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import UserVerificationRequirement

from issuer.client import EnrolledPasskey
from issuer.passkeys import TIMEOUT_MS, authentication_options, verify_payload_assertion
from schemas.errors import (
    AssertionApproverMismatch,
    AssertionCredentialRevoked,
    AssertionCredentialUnknown,
    AssertionInvalid,
    AssertionMalformed,
)
from verifier.webauthn import b64url_decode

CHALLENGE_BYTES: Final = 32


def assertion_of(credential: object) -> dict[str, str]:
    """A browser's AuthenticationResponseJSON (``PublicKeyCredential.toJSON()``) as a decision's ``webauthn``:
    ``{credential_id, authenticator_data, client_data_json, signature[, user_handle]}``, base64url."""
    if not isinstance(credential, Mapping) or not isinstance(credential.get("response"), Mapping):
        raise AssertionMalformed("the assertion is not a PublicKeyCredential in JSON")
    response = credential["response"]
    fields = {"credential_id": credential.get("rawId") or credential.get("id"),
              "authenticator_data": response.get("authenticatorData"),
              "client_data_json": response.get("clientDataJSON"), "signature": response.get("signature")}
    if response.get("userHandle"):
        fields["user_handle"] = response["userHandle"]
    for name, value in fields.items():
        b64url_decode(value, f"webauthn {name}")  # strict unpadded base64url, or AssertionMalformed
    return {k: str(v) for k, v in fields.items()}


def enrolled(passkeys: Sequence[EnrolledPasskey], credential_id: str) -> EnrolledPasskey:
    """The passkey with this credential id, enrolled and not revoked."""
    found = next((p for p in passkeys if p.credential_id == credential_id), None)
    if found is None:
        raise AssertionCredentialUnknown(f"credential {credential_id[:60]} is not a passkey enrolled here")
    if found.revoked:
        raise AssertionCredentialRevoked(f"the passkey {credential_id[:60]} (enrolment {found.entry}) was revoked")
    return found


def signin_options(rp_id: str) -> tuple[bytes, dict[str, Any]]:
    """A random one-time challenge and the PublicKeyCredentialRequestOptions (any discoverable passkey, UV
    required)."""
    challenge = secrets.token_bytes(CHALLENGE_BYTES)
    options = generate_authentication_options(rp_id=rp_id, challenge=challenge, timeout=TIMEOUT_MS,
                                              user_verification=UserVerificationRequirement.REQUIRED)
    value: dict[str, Any] = json.loads(options_to_json(options))
    return challenge, value


def verify_signin(credential: object, challenge: bytes, passkeys: Sequence[EnrolledPasskey]) -> EnrolledPasskey:
    """The enrolled passkey that signed ``challenge``; raise why not."""
    assertion = assertion_of(credential)
    passkey = enrolled(passkeys, assertion["credential_id"])
    response = {"authenticatorData": assertion["authenticator_data"], "clientDataJSON": assertion["client_data_json"],
                "signature": assertion["signature"]}
    if "user_handle" in assertion:
        response["userHandle"] = assertion["user_handle"]
    try:
        verify_authentication_response(
            credential={"id": passkey.credential_id, "rawId": passkey.credential_id, "type": "public-key",
                        "response": response, "clientExtensionResults": {}},
            expected_challenge=challenge, expected_rp_id=passkey.rp_id, expected_origin=passkey.origin,
            credential_public_key=b64url_decode(passkey.public_key, "public_key"),
            credential_current_sign_count=passkey.sign_count, require_user_verification=True,
        )
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        raise AssertionInvalid(f"py_webauthn refuses the sign-in: {str(exc)[:300]}") from exc
    return passkey


def passkey_request_options(passkeys: Sequence[EnrolledPasskey], approver: str, payload: Mapping[str, Any],
                            rp_id: str, *, statement_type: str, signer: str) -> dict[str, Any]:
    """The WebAuthn request options for the signed-in ``approver`` to sign ``payload`` (a decision: the payload of
    a ``statement_type`` statement that ``signer``, the operator, will sign) with one of their passkeys enrolled and
    not revoked: the challenge is the decision's digest, user verification required."""
    allowed = [b64url_decode(p.credential_id, "credential_id") for p in passkeys
               if p.approver == approver and not p.revoked]
    return authentication_options(payload, rp_id, allowed, statement_type=statement_type, signer=signer)


def verify_decision(passkeys: Sequence[EnrolledPasskey], approver: str, payload: dict[str, Any],
                    credential: object, *, statement_type: str, signer: str) -> dict[str, Any]:
    """``payload`` (a decision, without ``webauthn``) with the signed-in ``approver``'s assertion over it, once
    checked: the passkey is enrolled for ``approver`` and not revoked, and it signed exactly this decision, as a
    ``statement_type`` statement of ``signer``."""
    assertion = assertion_of(credential)
    passkey = enrolled(passkeys, assertion["credential_id"])
    if passkey.approver != approver:
        raise AssertionApproverMismatch(
            f"the passkey {passkey.credential_id[:60]} is enrolled for {passkey.approver[:200]}, not for the "
            f"signed-in approver {approver[:200]}"
        )
    decided = {**payload, "webauthn": assertion}
    verify_payload_assertion(decided, passkey.credential_id, b64url_decode(passkey.public_key, "public_key"),
                             statement_type=statement_type, signer=signer,
                             rp_id=passkey.rp_id, origin=passkey.origin, sign_count=passkey.sign_count,
                             require_user_verification=True)
    return decided
