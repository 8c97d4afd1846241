"""A deliberately independent COSE_Sign1 builder for tests: raw cbor2 + cryptography, any header at all.

Used to craft statements the product's own signer would never produce (missing or wrong headers).
"""

from __future__ import annotations

from typing import Any

import cbor2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _b58(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def did_key(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "did:key:z" + _b58(b"\xed\x01" + raw)


def default_protected(key: Ed25519PrivateKey, subject: str = "urn:example:subject") -> dict[Any, Any]:
    did = did_key(key)
    return {1: -8, 4: f"{did}#{did[len('did:key:'):]}".encode(), 15: {1: did, 2: subject},
            3: "application/json"}


def sign1(
    key: Ed25519PrivateKey, protected: dict[Any, Any] | None, payload: bytes | None = b'{"hello":"world"}',
    unprotected: dict[Any, Any] | None = None, tag: int | None = 18, sign_payload: bytes | None = None,
) -> bytes:
    phdr = cbor2.dumps(default_protected(key) if protected is None else protected)
    to_sign = payload if sign_payload is None else sign_payload
    signature = key.sign(cbor2.dumps(["Signature1", phdr, b"", to_sign or b""]))
    body = [phdr, unprotected or {}, payload, signature]
    return bytes(cbor2.dumps(cbor2.CBORTag(tag, body) if tag is not None else body))
