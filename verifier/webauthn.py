"""Offline verification of a WebAuthn authentication assertion (W3C WebAuthn Level 3 §7.2).

Pure and dependency-light (``cryptography`` and ``schemas.cbor``; no ``webauthn`` package): given the assertion as
the browser returned it, the credential's COSE public key and the relying party it was enrolled for, check

- clientDataJSON: a UTF-8 JSON object whose ``type`` is ``webauthn.get``, whose ``challenge`` is the base64url
  (unpadded) of the expected challenge, whose ``origin`` is the enrolled origin, and which is not cross-origin;
- authenticatorData: ``rpIdHash`` = SHA-256(rp_id), flag UP set and (by default) UV set, BS only with BE;
- the signature over ``authenticatorData || SHA-256(clientDataJSON)`` under the credential key: ES256 (-7, an
  ASN.1 DER ECDSA signature on P-256, as WebAuthn sends it), EdDSA (-8, Ed25519) or RS256 (-257, PKCS#1 v1.5).

Every failure raises a specific ``AssertionInvalid``; nothing returns a bool. The signature counter is returned,
not judged: an approval's challenge is bound to a one-time decision, and synced passkeys always report 0.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from schemas import cbor
from schemas.base64url import b64url
from schemas.base64url import b64url_decode as _b64url_decode
from schemas.errors import (
    AssertionChallengeMismatch,
    AssertionKeyUnsupported,
    AssertionMalformed,
    AssertionOriginMismatch,
    AssertionRpIdMismatch,
    AssertionSignatureInvalid,
    AssertionSignCountNotIncreasing,
    AssertionTypeMismatch,
    AssertionUserNotPresent,
    AssertionUserNotVerified,
    TabellionError,
)
from verifier.did_key import did_key_from_public
from verifier.keys import public_key_from_cose

ALG_ES256: Final = -7
ALG_EDDSA: Final = -8
ALG_RS256: Final = -257
WEBAUTHN_GET: Final = "webauthn.get"
FLAG_UP: Final = 0x01
FLAG_UV: Final = 0x04
FLAG_BE: Final = 0x08
FLAG_BS: Final = 0x10
AUTH_DATA_MIN: Final = 37  # rpIdHash (32) || flags (1) || signCount (4)
RSA_MIN_BITS: Final = 2048
_KTY_RSA: Final = 3
_RSA_N, _RSA_E = -1, -2
_ES256: Final = ec.ECDSA(hashes.SHA256())

CredentialPublicKey = Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey


def b64url_decode(text: object, what: str) -> bytes:
    """Strict unpadded base64url (RFC 4648 §5); ``AssertionMalformed`` otherwise."""
    return _b64url_decode(text, what, AssertionMalformed)


@dataclass(frozen=True)
class Assertion:
    """An AuthenticatorAssertionResponse with its credential id (as a claim-approval's ``webauthn`` carries it)."""

    credential_id: bytes
    authenticator_data: bytes
    client_data_json: bytes
    signature: bytes
    user_handle: bytes | None = None

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Assertion:
        """From ``{credential_id, authenticator_data, client_data_json, signature[, user_handle]}``, base64url."""
        handle = value.get("user_handle")
        return cls(
            b64url_decode(value.get("credential_id"), "webauthn credential_id"),
            b64url_decode(value.get("authenticator_data"), "webauthn authenticator_data"),
            b64url_decode(value.get("client_data_json"), "webauthn client_data_json"),
            b64url_decode(value.get("signature"), "webauthn signature"),
            None if handle is None else b64url_decode(handle, "webauthn user_handle"),
        )

    def to_json(self) -> dict[str, str]:
        value = {"credential_id": b64url(self.credential_id), "authenticator_data": b64url(self.authenticator_data),
                 "client_data_json": b64url(self.client_data_json), "signature": b64url(self.signature)}
        if self.user_handle is not None:
            value["user_handle"] = b64url(self.user_handle)
        return value


@dataclass(frozen=True)
class AuthenticatorData:
    """The fixed part of authenticatorData (WebAuthn §6.1); attested data and extensions are not parsed."""

    rp_id_hash: bytes
    flags: int
    sign_count: int

    @classmethod
    def parse(cls, data: bytes) -> AuthenticatorData:
        if len(data) < AUTH_DATA_MIN:
            raise AssertionMalformed(f"authenticatorData is {len(data)} bytes; it has at least {AUTH_DATA_MIN}")
        parsed = cls(data[:32], data[32], int.from_bytes(data[33:37], "big"))
        if parsed.backed_up and not parsed.backup_eligible:
            raise AssertionMalformed("authenticatorData sets BS (backed up) without BE (backup eligible)")
        return parsed

    @property
    def user_present(self) -> bool:
        return bool(self.flags & FLAG_UP)

    @property
    def user_verified(self) -> bool:
        return bool(self.flags & FLAG_UV)

    @property
    def backup_eligible(self) -> bool:
        return bool(self.flags & FLAG_BE)

    @property
    def backed_up(self) -> bool:
        return bool(self.flags & FLAG_BS)


@dataclass(frozen=True)
class CredentialKey:
    """A credential public key and the COSE algorithm it signs with."""

    alg: int
    key: CredentialPublicKey

    def verify(self, signature: bytes, data: bytes) -> None:
        try:
            if self.alg == ALG_ES256 and isinstance(self.key, ec.EllipticCurvePublicKey):
                self.key.verify(signature, data, _ES256)  # DER, as WebAuthn sends ES256 signatures
            elif self.alg == ALG_EDDSA and isinstance(self.key, Ed25519PublicKey):
                self.key.verify(signature, data)
            elif self.alg == ALG_RS256 and isinstance(self.key, rsa.RSAPublicKey):
                self.key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
            else:  # credential_key never builds such a pair
                raise AssertionKeyUnsupported(f"alg {self.alg} does not fit a {type(self.key).__name__}")
        except InvalidSignature:
            raise AssertionSignatureInvalid(
                f"the assertion signature does not verify under the credential's {_ALG_NAMES[self.alg]} key"
            ) from None


_ALG_NAMES: Final = {ALG_ES256: "ES256", ALG_EDDSA: "EdDSA", ALG_RS256: "RS256"}


def credential_key(cose_key: bytes) -> CredentialKey:
    """The key of a credential public key (the CBOR COSE_Key from its attestation); it must name its ``alg``."""
    try:
        value = cbor.decode(cose_key, "the credential public key")
    except TabellionError as exc:
        raise AssertionKeyUnsupported(exc.detail) from exc
    if not isinstance(value, dict):
        raise AssertionKeyUnsupported("the credential public key is not a COSE_Key map")
    alg = value.get(3)
    if alg not in _ALG_NAMES or isinstance(alg, bool):
        raise AssertionKeyUnsupported(f"COSE_Key alg (3) is {alg!r}; ES256 (-7), EdDSA (-8) and RS256 (-257) are")
    if alg == ALG_RS256:
        return CredentialKey(alg, _rsa_key(value))
    try:
        key = public_key_from_cose(value)
    except TabellionError as exc:
        raise AssertionKeyUnsupported(f"the credential public key is refused: {exc.detail}") from exc
    return CredentialKey(alg, key)


def credential_did(cose_key: bytes) -> str | None:
    """The did:key of a credential public key (``p256-pub``, 0x1200, with its 33-byte compressed point;
    ``ed25519-pub``, 0xed, with its 32 bytes): the DID for which the passkey's signature is the controller's.
    ``None`` for an RS256 key, which no did:key names here."""
    key = credential_key(cose_key).key
    return None if isinstance(key, rsa.RSAPublicKey) else did_key_from_public(key)


def _rsa_key(value: dict[Any, Any]) -> rsa.RSAPublicKey:
    n, e = value.get(_RSA_N), value.get(_RSA_E)
    if value.get(1) != _KTY_RSA or not isinstance(n, bytes) or not isinstance(e, bytes):
        raise AssertionKeyUnsupported("an RS256 COSE_Key is kty RSA (3) with byte strings n (-1) and e (-2)")
    numbers = rsa.RSAPublicNumbers(int.from_bytes(e, "big"), int.from_bytes(n, "big"))
    try:
        key = numbers.public_key()
    except ValueError as exc:
        raise AssertionKeyUnsupported(f"the RSA key is invalid: {exc}") from exc
    if key.key_size < RSA_MIN_BITS:
        raise AssertionKeyUnsupported(f"the RSA key has {key.key_size} bits; at least {RSA_MIN_BITS} are needed")
    return key


def check_rp_origin(rp_id: str, origin: str) -> None:
    """An RP ID must be the origin's host or a registrable suffix of it (WebAuthn §5.1.4.1 step 8, simplified:
    no public-suffix list); the origin is ``https://host[:port]``, or ``http://localhost[:port]``."""
    try:
        parts = urlsplit(origin)
        host = parts.hostname or ""
        _ = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        raise AssertionOriginMismatch(f"origin {origin[:200]!r} is not a URL origin: {exc}") from exc
    if not host or parts.path or parts.query or parts.fragment or parts.username is not None:
        raise AssertionOriginMismatch(f"origin {origin[:200]!r} is not scheme://host[:port]")
    if not (parts.scheme == "https" or (parts.scheme == "http" and host == "localhost")):
        raise AssertionOriginMismatch(f"origin {origin[:200]!r} is neither https nor http://localhost")
    if host != rp_id and not host.endswith("." + rp_id):
        raise AssertionOriginMismatch(f"RP ID {rp_id[:200]!r} is not the host of origin {origin[:200]!r} or its suffix")


@dataclass(frozen=True)
class VerifiedAssertion:
    credential_id: bytes
    sign_count: int
    user_verified: bool
    backed_up: bool


def client_data(assertion: Assertion | bytes) -> dict[str, Any]:
    """The clientDataJSON of an assertion (or given as bytes), decoded (WebAuthn §7.2 steps 9-10)."""
    raw = assertion.client_data_json if isinstance(assertion, Assertion) else assertion
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise AssertionMalformed(f"webauthn client_data_json is not base64url JSON: {str(exc)[:200]}") from exc
    if not isinstance(value, dict):
        raise AssertionMalformed("webauthn client_data_json is not a JSON object")
    return value


def verify_assertion(
    assertion: Assertion,
    *,
    credential_public_key: bytes,
    challenge: bytes,
    rp_id: str,
    origin: str,
    require_user_verification: bool = True,
    stored_sign_count: int = 0,
) -> VerifiedAssertion:
    """Verify ``assertion`` per WebAuthn §7.2 against an enrolled credential; raise the first check that fails.

    ``challenge`` is the raw challenge (the client data carries its base64url); ``rp_id`` and ``origin`` are the
    ones the credential was enrolled for. Whether ``assertion.credential_id`` is that credential is the caller's
    lookup (step 5-6). ``stored_sign_count`` is the credential's counter as last accepted (step 22): when it or
    the assertion's counter is nonzero, the assertion's must be greater, else the authenticator may be a clone
    and the assertion is refused. Authenticators without a counter (most synced passkeys) always send 0.
    """
    key = credential_key(credential_public_key)
    _check_client_data(client_data(assertion), WEBAUTHN_GET, challenge, origin)
    auth = AuthenticatorData.parse(assertion.authenticator_data)
    _check_authenticator(auth, rp_id, require_user_verification)
    key.verify(assertion.signature, assertion.authenticator_data + hashlib.sha256(assertion.client_data_json).digest())
    if (auth.sign_count or stored_sign_count) and auth.sign_count <= stored_sign_count:
        raise AssertionSignCountNotIncreasing(
            f"the authenticator's signature counter is {auth.sign_count}, not above {stored_sign_count}, the last one "
            "accepted for this credential: the authenticator may have been cloned"
        )
    return VerifiedAssertion(assertion.credential_id, auth.sign_count, auth.user_verified, auth.backed_up)


def _check_client_data(data: dict[str, Any], kind: str, challenge: bytes, origin: str) -> None:
    """WebAuthn §7.1 steps 7-9 / §7.2 steps 11-13: the ceremony type, the challenge, the origin, same-origin."""
    got_kind = data.get("type")
    if got_kind != kind:
        raise AssertionTypeMismatch(f"the webauthn client data type is {str(got_kind)[:40]!r}, not {kind}")
    got = data.get("challenge")
    if got != b64url(challenge):
        raise AssertionChallengeMismatch(
            f"the webauthn challenge is not the one expected: the client data has {str(got)[:90]!r}, "
            f"expected {b64url(challenge)!r}"
        )
    if data.get("origin") != origin:
        raise AssertionOriginMismatch(f"the client data origin is {str(data.get('origin'))[:200]!r}, not {origin!r}")
    if data.get("crossOrigin") is True or "topOrigin" in data:
        raise AssertionOriginMismatch("a cross-origin ceremony (made in a frame of another origin) is not accepted")


def _check_authenticator(auth: AuthenticatorData, rp_id: str, require_user_verification: bool) -> None:
    """The RP ID hash and the user present / verified flags (§7.1 steps 13-15, §7.2 steps 15-17)."""
    if auth.rp_id_hash != hashlib.sha256(rp_id.encode()).digest():
        raise AssertionRpIdMismatch(f"authenticatorData's rpIdHash is not SHA-256 of the RP ID {rp_id[:200]!r}")
    if not auth.user_present:
        raise AssertionUserNotPresent("authenticatorData does not set UP: the user was not present")
    if require_user_verification and not auth.user_verified:
        raise AssertionUserNotVerified("authenticatorData does not set UV: the user was not verified (PIN/biometric)")


# --- registration (navigator.credentials.create), W3C WebAuthn Level 3 §7.1 ----------------------------------

WEBAUTHN_CREATE: Final = "webauthn.create"
FLAG_AT: Final = 0x40
_AAGUID_LEN: Final = 16


@dataclass(frozen=True)
class Registration:
    """An AuthenticatorAttestationResponse as an approver-enrolment's ``registration`` carries it."""

    client_data_json: bytes
    attestation_object: bytes

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Registration:
        """From ``{client_data_json, attestation_object}``, base64url."""
        return cls(
            b64url_decode(value.get("client_data_json"), "registration client_data_json"),
            b64url_decode(value.get("attestation_object"), "registration attestation_object"),
        )

    def to_json(self) -> dict[str, str]:
        return {"client_data_json": b64url(self.client_data_json),
                "attestation_object": b64url(self.attestation_object)}


@dataclass(frozen=True)
class RegisteredCredential:
    credential_id: bytes
    public_key: bytes  # the CBOR COSE_Key exactly as the authenticator data carries it
    attestation_format: str
    sign_count: int


def verify_registration(
    registration: Registration, *, challenge: bytes, rp_id: str, origin: str, require_user_verification: bool = True
) -> RegisteredCredential:
    """Check a passkey registration per WebAuthn §7.1 steps 5-16 and return the credential it created.

    The client data must be a ``webauthn.create`` over ``challenge`` from ``origin``; the authenticator data must
    hash ``rp_id``, set UP, UV (by default) and AT, and carry the attested credential (id and COSE key). The
    attestation statement (step 19-21: the authenticator's provenance) is not evaluated; Tabellion takes the
    credential holder's consent from a signature by the credential itself (an assertion), not from attestation.
    """
    _check_client_data(client_data(registration.client_data_json), WEBAUTHN_CREATE, challenge, origin)
    try:
        attestation = cbor.decode(registration.attestation_object, "the attestation object")
    except TabellionError as exc:
        raise AssertionMalformed(exc.detail) from exc
    if not isinstance(attestation, dict) or not isinstance(attestation.get("authData"), bytes) or not isinstance(
        attestation.get("fmt"), str
    ):
        raise AssertionMalformed("the attestation object is not a map with text fmt and byte string authData")
    data: bytes = attestation["authData"]
    auth = AuthenticatorData.parse(data)
    _check_authenticator(auth, rp_id, require_user_verification)
    if not auth.flags & FLAG_AT:
        raise AssertionMalformed("the registration's authenticatorData does not set AT: it attests no credential")
    start = AUTH_DATA_MIN + _AAGUID_LEN
    if len(data) < start + 2:
        raise AssertionMalformed("the attested credential data is truncated")
    length = int.from_bytes(data[start : start + 2], "big")
    credential_id = data[start + 2 : start + 2 + length]
    if len(credential_id) != length or not 16 <= length <= 1023:
        raise AssertionMalformed(f"the attested credential id is {len(credential_id)} bytes, not 16 to 1023")
    try:
        public_key = cbor.first_item(data[start + 2 + length :], "the attested credential public key")
    except TabellionError as exc:
        raise AssertionMalformed(exc.detail) from exc
    credential_key(public_key)
    return RegisteredCredential(credential_id, public_key, attestation["fmt"], auth.sign_count)
