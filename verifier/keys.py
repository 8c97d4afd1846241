"""Public keys as COSE sees them: COSE_Key (RFC 9052 §7, RFC 9053 §7), key thumbprints (RFC 9679), key sets.

Only the two key types Tabellion signs with are understood: Ed25519 (kty OKP, crv 6) and P-256 (kty EC2,
crv 1). Anything else is refused with ``MalformedKey`` naming what was found, never silently skipped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from schemas import cbor
from schemas import cose_labels as L
from schemas.errors import KeyUnknown, MalformedCbor, MalformedKey

PublicKey = Ed25519PublicKey | ec.EllipticCurvePublicKey
"""A verification key: Ed25519, or ECDSA on P-256 (the only curve accepted for EC2)."""

KEY_D = -4  # private key parameter of OKP and EC2 keys (RFC 9053 §7.1, §7.2); never accepted here
P256_COORDINATE_SIZE = 32
ED25519_KEY_SIZE = 32

_KTY_NAMES = {L.KTY_OKP: "OKP", L.KTY_EC2: "EC2"}
_ALG_FOR_KTY = {L.KTY_OKP: L.ALG_EDDSA, L.KTY_EC2: L.ALG_ES256}


def cose_key(pk: PublicKey, kid: bytes | None = None) -> dict[int, Any]:
    """The COSE_Key map of a public key (the required parameters, plus ``kid`` (2) when given)."""
    key = _required_params(pk)
    if kid is not None:
        if not isinstance(kid, bytes):
            raise MalformedKey("a COSE_Key kid (2) must be a byte string")
        key[L.KEY_KID] = kid
    return key


def public_key_from_cose(d: Any) -> PublicKey:
    """The public key a COSE_Key map describes; unknown kty/crv, bad lengths or a private part are refused."""
    if not isinstance(d, Mapping):
        raise MalformedKey("a COSE_Key must be a CBOR map")
    if KEY_D in d:
        raise MalformedKey("the COSE_Key carries a private key (d, -4); only public keys are accepted")
    kty = d.get(L.KEY_KTY)
    if kty not in _KTY_NAMES or isinstance(kty, bool):
        raise MalformedKey(f"COSE_Key kty (1) is {kty!r}; only OKP (1) and EC2 (2) are supported")
    alg = d.get(L.KEY_ALG)
    if alg is not None and alg != _ALG_FOR_KTY[kty]:
        raise MalformedKey(f"COSE_Key alg (3) {alg!r} does not fit a {_KTY_NAMES[kty]} key")
    crv = d.get(L.KEY_CRV)
    if kty == L.KTY_OKP:
        if crv != L.CRV_ED25519 or isinstance(crv, bool):
            raise MalformedKey(f"OKP crv (-1) is {crv!r}; only Ed25519 (6) is supported")
        x = _bstr(d, L.KEY_X, "OKP x (-2)", ED25519_KEY_SIZE)
        return Ed25519PublicKey.from_public_bytes(x)
    if crv != L.CRV_P256 or isinstance(crv, bool):
        raise MalformedKey(f"EC2 crv (-1) is {crv!r}; only P-256 (1) is supported")
    x = _bstr(d, L.KEY_X, "EC2 x (-2)", P256_COORDINATE_SIZE)
    y = d.get(L.KEY_Y)
    if isinstance(y, bool):  # point compression: y is the sign bit (RFC 9053 §7.1.1)
        point = (b"\x03" if y else b"\x02") + x
    else:
        point = b"\x04" + x + _bstr(d, L.KEY_Y, "EC2 y (-3)", P256_COORDINATE_SIZE)
    return p256_from_point(point)


def p256_from_point(point: bytes) -> ec.EllipticCurvePublicKey:
    """A P-256 key from an SEC1 point (compressed or not), refusing points that are not on the curve."""
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError as exc:
        raise MalformedKey(f"the P-256 point is not on the curve: {exc}") from exc


def thumbprint(pk: PublicKey) -> bytes:
    """RFC 9679 COSE Key Thumbprint: SHA-256 of the deterministic CBOR of the required key parameters."""
    return hashlib.sha256(cbor.encode(_required_params(pk))).digest()


def public_key_bytes(pk: PublicKey) -> bytes:
    """Raw Ed25519 public key, or the uncompressed SEC1 point of a P-256 key."""
    if isinstance(pk, Ed25519PublicKey):
        return pk.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return pk.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def _required_params(pk: PublicKey) -> dict[int, Any]:
    """The required public parameters of RFC 9679 §4: OKP {1, -1, -2}, EC2 {1, -1, -2, -3}."""
    if isinstance(pk, Ed25519PublicKey):
        return {L.KEY_KTY: L.KTY_OKP, L.KEY_CRV: L.CRV_ED25519, L.KEY_X: public_key_bytes(pk)}
    if isinstance(pk, ec.EllipticCurvePublicKey) and isinstance(pk.curve, ec.SECP256R1):
        point = public_key_bytes(pk)
        return {
            L.KEY_KTY: L.KTY_EC2,
            L.KEY_CRV: L.CRV_P256,
            L.KEY_X: point[1 : 1 + P256_COORDINATE_SIZE],
            L.KEY_Y: point[1 + P256_COORDINATE_SIZE :],
        }
    raise MalformedKey(f"{type(pk).__name__} is not an Ed25519 or P-256 public key")


def _bstr(d: Mapping[Any, Any], label: int, name: str, size: int) -> bytes:
    value = d.get(label)
    if not isinstance(value, bytes):
        raise MalformedKey(f"COSE_Key {name} is missing or not a byte string")
    if len(value) != size:
        raise MalformedKey(f"COSE_Key {name} is {len(value)} bytes; expected {size}")
    return value


@dataclass(frozen=True)
class KeySet:
    """Verification keys by kid: a log's current and retired receipt keys (``/.well-known/scitt-keys``)."""

    keys: Mapping[bytes, PublicKey]

    def __post_init__(self) -> None:
        for kid, pk in self.keys.items():
            if not isinstance(kid, bytes) or not kid:
                raise MalformedKey("every key in a key set needs a non-empty byte-string kid")
            _required_params(pk)
        object.__setattr__(self, "keys", MappingProxyType(dict(self.keys)))

    @classmethod
    def from_keys(cls, keys: Iterable[PublicKey]) -> KeySet:
        """A key set in which each key's kid is its RFC 9679 thumbprint (as Tabellion's receipts use)."""
        return cls({thumbprint(pk): pk for pk in keys})

    def get(self, kid: bytes) -> PublicKey:
        try:
            return self.keys[kid]
        except (KeyError, TypeError):
            raise KeyUnknown(f"no key with kid {_show_kid(kid)} in the key set") from None

    def __contains__(self, kid: object) -> bool:
        return kid in self.keys

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)

    def encode(self) -> bytes:
        """COSE_KeySet: a CBOR array of COSE_Key maps, each with its kid, in kid order (deterministic)."""
        return cbor.encode([cose_key(self.keys[kid], kid) for kid in sorted(self.keys)])


def parse_key_set(data: bytes) -> KeySet:
    """Decode a COSE_KeySet (``[+ COSE_Key]``); every key needs a distinct kid (2)."""
    try:
        items = cbor.decode(data, "COSE key set")
    except MalformedCbor as exc:
        raise MalformedKey(exc.detail) from exc
    if not isinstance(items, list | tuple) or not items:
        raise MalformedKey("a COSE key set must be a non-empty CBOR array of COSE_Key maps")
    keys: dict[bytes, PublicKey] = {}
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise MalformedKey(f"key set entry {i} is not a COSE_Key map")
        kid = item.get(L.KEY_KID)
        if not isinstance(kid, bytes) or not kid:
            raise MalformedKey(f"key set entry {i} has no kid (2) byte string")
        if kid in keys:
            raise MalformedKey(f"key set entry {i} repeats kid {_show_kid(kid)}")
        try:
            keys[kid] = public_key_from_cose(item)
        except MalformedKey as exc:
            raise MalformedKey(f"key set entry {i} (kid {_show_kid(kid)}): {exc.detail}") from exc
    return KeySet(keys)


def _show_kid(kid: object) -> str:
    if isinstance(kid, bytes):
        return kid.hex() if len(kid) <= 64 else kid[:64].hex() + "…"
    return repr(kid)[:80]
