"""A software WebAuthn authenticator for tests: makes passkey credentials (ES256, EdDSA or RS256), registration
responses with ``none`` attestation and authentication assertions, byte for byte as a browser hands them to a
relying party (W3C WebAuthn Level 3 §6.1, §6.5, §7), with every field that a negative test wants to get wrong
open to change."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from schemas.base64url import b64url
from verifier.webauthn import ALG_EDDSA, ALG_ES256, ALG_RS256, FLAG_UP, FLAG_UV, Assertion

RP_ID = "issuer.example"
ORIGIN = "https://issuer.example"
FLAG_AT = 0x40
PrivateKey = Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _generate(alg: int) -> PrivateKey:
    if alg == ALG_ES256:
        return ec.generate_private_key(ec.SECP256R1())
    if alg == ALG_EDDSA:
        return Ed25519PrivateKey.generate()
    if alg == ALG_RS256:
        return rsa.generate_private_key(65537, 2048)
    raise ValueError(f"no software authenticator for alg {alg}")


@dataclass
class SoftwareAuthenticator:
    """One passkey credential; its signature counter goes up by one per assertion (``counter=False``: stays 0,
    as synced passkeys report)."""

    alg: int = ALG_ES256
    rp_id: str = RP_ID
    origin: str = ORIGIN
    counter: bool = True
    credential_id: bytes = field(default_factory=lambda: os.urandom(32))
    user_handle: bytes = field(default_factory=lambda: os.urandom(16))
    sign_count: int = 0
    key: PrivateKey | None = None

    def __post_init__(self) -> None:
        if self.key is None:
            self.key = _generate(self.alg)

    @property
    def private_key(self) -> PrivateKey:
        assert self.key is not None
        return self.key

    def cose_public_key(self) -> bytes:
        """The credential public key as its attestation carries it: a CBOR COSE_Key naming its alg."""
        public = self.private_key.public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            numbers = public.public_numbers()
            key: dict[int, Any] = {1: 2, 3: ALG_ES256, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                                   -3: numbers.y.to_bytes(32, "big")}
        elif isinstance(public, rsa.RSAPublicKey):
            n, e = public.public_numbers().n, public.public_numbers().e
            key = {1: 3, 3: ALG_RS256, -1: n.to_bytes((n.bit_length() + 7) // 8, "big"),
                   -2: e.to_bytes((e.bit_length() + 7) // 8, "big")}
        else:
            key = {1: 1, 3: ALG_EDDSA, -1: 6, -2: public.public_bytes(Encoding.Raw, PublicFormat.Raw)}
        return bytes(cbor2.dumps(key, canonical=True))

    def sign(self, data: bytes) -> bytes:
        key = self.private_key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(data, ec.ECDSA(hashes.SHA256()))  # ASN.1 DER, as authenticators return it
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return key.sign(data)

    def authenticator_data(self, flags: int, rp_id: str | None = None, attested: bytes = b"") -> bytes:
        if self.counter:
            self.sign_count += 1
        rp_id_hash = hashlib.sha256((rp_id or self.rp_id).encode()).digest()
        return rp_id_hash + bytes((flags,)) + self.sign_count.to_bytes(4, "big") + attested

    @staticmethod
    def client_data(kind: str, challenge: str, origin: str, **extra: Any) -> bytes:
        """clientDataJSON as a browser serialises it: type, challenge, origin, crossOrigin first, then the rest."""
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False, **extra},
                          separators=(",", ":")).encode()

    def get(self, challenge: bytes, *, flags: int = FLAG_UP | FLAG_UV, origin: str | None = None,
            rp_id: str | None = None, kind: str = "webauthn.get", challenge_text: str | None = None,
            **client_extra: Any) -> Assertion:
        """navigator.credentials.get(): an assertion over ``challenge`` (``challenge_text`` overrides its base64url
        in the client data)."""
        client = self.client_data(kind, challenge_text or b64url(challenge), origin or self.origin, **client_extra)
        auth = self.authenticator_data(flags, rp_id)
        signature = self.sign(auth + hashlib.sha256(client).digest())
        return Assertion(self.credential_id, auth, client, signature, self.user_handle)

    def create(self, challenge: bytes, *, flags: int = FLAG_UP | FLAG_UV, origin: str | None = None) -> dict[str, Any]:
        """navigator.credentials.create() with ``none`` attestation, as RegistrationResponseJSON."""
        attested = (bytes(16) + len(self.credential_id).to_bytes(2, "big") + self.credential_id
                    + self.cose_public_key())
        auth = self.authenticator_data(flags | FLAG_AT, attested=attested)
        client = self.client_data("webauthn.create", b64url(challenge), origin or self.origin)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth})
        cid = b64url(self.credential_id)
        return {"id": cid, "rawId": cid, "type": "public-key",
                "response": {"clientDataJSON": b64url(client), "attestationObject": b64url(attestation),
                             "transports": ["internal"]},
                "clientExtensionResults": {}, "authenticatorAttachment": "platform"}


def authentication_response(assertion: Assertion) -> dict[str, Any]:
    """An assertion as AuthenticationResponseJSON (what py_webauthn's verify_authentication_response takes)."""
    cid = b64url(assertion.credential_id)
    response = {"authenticatorData": b64url(assertion.authenticator_data),
                "clientDataJSON": b64url(assertion.client_data_json), "signature": b64url(assertion.signature)}
    if assertion.user_handle is not None:
        response["userHandle"] = b64url(assertion.user_handle)
    return {"id": cid, "rawId": cid, "type": "public-key", "response": response, "clientExtensionResults": {}}
