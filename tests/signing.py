"""Test helpers that sign COSE with pycose, an implementation independent of the verifier.

Keys are ``cryptography`` private keys; statements are signed by pycose 1.1.0 so that what the verifier
accepts is checked against a second implementation, not against itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from pycose.keys.curves import P256, Ed25519
from pycose.keys.ec2 import EC2Key
from pycose.keys.okp import OKPKey
from pycose.messages.sign1message import Sign1Message

from schemas import cose_labels as L
from verifier.did_key import did_key_from_public, verification_method

PrivateKey = Ed25519PrivateKey | ec.EllipticCurvePrivateKey

DEFAULT_SUBJECT = "did:example:agent-1"


def new_ed25519() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def new_p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def did_of(key: PrivateKey) -> str:
    """The did:key of a private key's public half."""
    return did_key_from_public(key.public_key())


def kid_of(key: PrivateKey) -> bytes:
    """The kid a did:key signer uses: its verification method ``did:key:z…#z…``, UTF-8."""
    return verification_method(did_of(key)).encode()


def default_alg(key: PrivateKey) -> int:
    return L.ALG_EDDSA if isinstance(key, Ed25519PrivateKey) else L.ALG_ES256


def pycose_key(key: PrivateKey) -> Any:
    """The pycose key object for a ``cryptography`` private key."""
    if isinstance(key, Ed25519PrivateKey):
        d = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        x = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return OKPKey(crv=Ed25519, d=d, x=x)
    numbers = key.private_numbers()
    return EC2Key(
        crv=P256,
        d=numbers.private_value.to_bytes(32, "big"),
        x=numbers.public_numbers.x.to_bytes(32, "big"),
        y=numbers.public_numbers.y.to_bytes(32, "big"),
    )


def sign1(
    key: PrivateKey,
    protected: Mapping[Any, Any],
    payload: bytes | None,
    unprotected: Mapping[Any, Any] | None = None,
    detached_payload: bytes | None = None,
    tag: bool = True,
) -> bytes:
    """A COSE_Sign1 signed by pycose; with ``payload=None``, ``detached_payload`` is signed but not sent."""
    msg = Sign1Message(phdr=dict(protected), uhdr=dict(unprotected or {}), payload=payload)
    msg.key = pycose_key(key)
    return bytes(msg.encode(tag=tag, detached_payload=detached_payload))


def sign_statement(
    key: PrivateKey,
    payload: bytes,
    iss: str | None = None,
    sub: str = DEFAULT_SUBJECT,
    content_type: str | int | None = "application/json",
    alg: int | None = None,
    extra_protected: Mapping[Any, Any] | None = None,
    *,
    kid: bytes | None = None,
    omit: Iterable[int] = (),
    unprotected: Mapping[Any, Any] | None = None,
) -> bytes:
    """A signed statement as a did:key signer makes it (docs/architecture.md §2), signed by pycose.

    Defaults: ``iss`` is the key's did:key, ``kid`` its verification method, ``alg`` EdDSA for Ed25519 and
    ES256 for P-256. ``extra_protected`` adds or overrides protected labels, ``omit`` removes labels
    (e.g. ``omit=[L.CWT_CLAIMS]``), ``unprotected`` fills the unprotected header.
    """
    protected: dict[Any, Any] = {
        L.ALG: default_alg(key) if alg is None else alg,
        L.KID: kid_of(key) if kid is None else kid,
        L.CWT_CLAIMS: {L.CWT_ISS: did_of(key) if iss is None else iss, L.CWT_SUB: sub},
    }
    if content_type is not None:
        protected[L.CONTENT_TYPE] = content_type
    protected.update(extra_protected or {})
    for label in omit:
        protected.pop(label, None)
    return sign1(key, protected, payload, unprotected)
