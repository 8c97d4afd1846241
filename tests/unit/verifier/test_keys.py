"""COSE_Key, RFC 9679 thumbprints and key sets (verifier.keys)."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pycose.keys.cosekey import CoseKey
from pycose.keys.curves import P256
from pycose.keys.curves import Ed25519 as PycoseEd25519
from pycose.keys.ec2 import EC2Key
from pycose.keys.okp import OKPKey

from schemas import cbor
from schemas.errors import KeyUnknown, MalformedKey
from tests.signing import new_ed25519, new_p256
from verifier.keys import KeySet, cose_key, parse_key_set, public_key_bytes, public_key_from_cose, thumbprint

# RFC 9679 §6: the EC2 P-256 example key, its deterministic encoding, and its SHA-256 thumbprint.
RFC9679_X = bytes.fromhex("65eda5a12577c2bae829437fe338701a10aaa375e1bb5b5de108de439c08551d")
RFC9679_Y = bytes.fromhex("1e52ed75701163f7f9e40ddf9f341b3dc9ba860af7e0ca7ca7e9eecd0084d19c")
RFC9679_ENCODED = bytes.fromhex(
    "A40102200121582065EDA5A12577C2BAE829437FE338701A10AAA375E1BB5B5DE"
    "108DE439C08551D2258201E52ED75701163F7F9E40DDF9F341B3DC9BA860AF7E0"
    "CA7CA7E9EECD0084D19C"
)
RFC9679_THUMBPRINT = bytes.fromhex("496bd8afadf307e5b08c64b0421bf9dc01528a344a43bda88fadd1669da253ec")

# RFC 8032 §7.1 TEST 1 public key (also the cose-wg EdDSA example key).
RFC8032_X = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")


def rfc9679_key() -> ec.EllipticCurvePublicKey:
    key = public_key_from_cose({1: 2, -1: 1, -2: RFC9679_X, -3: RFC9679_Y})
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


def test_rfc9679_example_thumbprint() -> None:
    key = rfc9679_key()
    assert cbor.encode(cose_key(key)) == RFC9679_ENCODED
    assert thumbprint(key) == RFC9679_THUMBPRINT


def test_rfc9679_thumbprint_ignores_kid_and_other_parameters() -> None:
    # The RFC's example COSE_Key carries kid = its own thumbprint; the thumbprint is the same without it.
    with_kid = {1: 2, -1: 1, -2: RFC9679_X, -3: RFC9679_Y, 2: RFC9679_THUMBPRINT, 3: -7}
    assert thumbprint(public_key_from_cose(with_kid)) == RFC9679_THUMBPRINT


def test_okp_thumbprint_is_sha256_of_the_three_required_parameters() -> None:
    key = Ed25519PublicKey.from_public_bytes(RFC8032_X)
    # {1: 1, -1: 6, -2: h'…'} written out byte by byte: map(3), 1:1, -1:6, -2: bstr(32).
    expected_cbor = bytes.fromhex("a3" "0101" "2006" "215820") + RFC8032_X
    assert cbor.encode(cose_key(key)) == expected_cbor
    assert thumbprint(key) == hashlib.sha256(expected_cbor).digest()


def test_thumbprint_is_independent_of_point_compression() -> None:
    compressed = public_key_from_cose({1: 2, -1: 1, -2: RFC9679_X, -3: False})
    assert thumbprint(compressed) == RFC9679_THUMBPRINT


@pytest.mark.parametrize("make", [new_ed25519, new_p256])
def test_cose_key_round_trip(make: Any) -> None:
    public = make().public_key()
    encoded = cose_key(public, kid=b"k1")
    assert encoded[2] == b"k1"
    decoded = public_key_from_cose(cbor.decode(cbor.encode(encoded)))
    assert public_key_bytes(decoded) == public_key_bytes(public)
    assert thumbprint(decoded) == thumbprint(public)


def test_pycose_encoded_keys_decode_to_the_same_key() -> None:
    ed = new_ed25519().public_key()
    okp = OKPKey(crv=PycoseEd25519, x=public_key_bytes(ed))
    assert public_key_bytes(public_key_from_cose(cbor.decode(okp.encode()))) == public_key_bytes(ed)
    p256 = new_p256().public_key()
    point = public_key_bytes(p256)
    ec2 = EC2Key(crv=P256, x=point[1:33], y=point[33:])
    assert public_key_bytes(public_key_from_cose(cbor.decode(ec2.encode()))) == point


def test_pycose_decodes_our_cose_keys() -> None:
    ed = new_ed25519().public_key()
    decoded: Any = CoseKey.decode(cbor.encode(cose_key(ed, kid=b"ed")))
    assert isinstance(decoded, OKPKey)
    assert decoded.x == public_key_bytes(ed)
    assert decoded.kid == b"ed"


BAD_KEYS: list[tuple[str, Any, str]] = [
    ("not a map", [1, 1], "map"),
    ("RSA kty", {1: 3, -1: b"\x01\x00\x01", -2: b"\x00" * 256}, "kty"),
    ("symmetric kty", {1: 4, -1: b"\x00" * 16}, "kty"),
    ("text kty", {1: "OKP", -1: 6, -2: RFC8032_X}, "kty"),
    ("bool kty", {1: True, -1: 6, -2: RFC8032_X}, "kty"),
    ("missing kty", {-1: 6, -2: RFC8032_X}, "kty"),
    ("X25519", {1: 1, -1: 4, -2: RFC8032_X}, "crv"),
    ("Ed448", {1: 1, -1: 7, -2: b"\x00" * 57}, "crv"),
    ("P-384", {1: 2, -1: 2, -2: b"\x00" * 48, -3: b"\x00" * 48}, "crv"),
    ("P-256 on OKP", {1: 1, -1: 1, -2: RFC8032_X}, "crv"),
    ("Ed25519 on EC2", {1: 2, -1: 6, -2: RFC9679_X, -3: RFC9679_Y}, "crv"),
    ("short Ed25519 x", {1: 1, -1: 6, -2: RFC8032_X[:31]}, "31 bytes"),
    ("long Ed25519 x", {1: 1, -1: 6, -2: RFC8032_X + b"\x00"}, "33 bytes"),
    ("missing x", {1: 1, -1: 6}, "x (-2)"),
    ("text x", {1: 1, -1: 6, -2: RFC8032_X.hex()}, "x (-2)"),
    ("short P-256 y", {1: 2, -1: 1, -2: RFC9679_X, -3: RFC9679_Y[1:]}, "31 bytes"),
    ("missing y", {1: 2, -1: 1, -2: RFC9679_X}, "y (-3)"),
    ("point off the curve", {1: 2, -1: 1, -2: RFC9679_X, -3: RFC9679_X}, "not on the curve"),
    ("private key", {1: 1, -1: 6, -2: RFC8032_X, -4: b"\x00" * 32}, "private"),
    ("alg mismatch", {1: 1, -1: 6, -2: RFC8032_X, 3: -7}, "alg"),
]


@pytest.mark.parametrize(("case", "key", "detail"), BAD_KEYS, ids=[c[0] for c in BAD_KEYS])
def test_bad_cose_keys_are_refused(case: str, key: Any, detail: str) -> None:
    with pytest.raises(MalformedKey, match=re.escape(detail)):
        public_key_from_cose(key)


def test_other_curves_are_refused_when_encoding() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    with pytest.raises(MalformedKey):
        cose_key(p384)  # a P-384 key is an EllipticCurvePublicKey, so only the runtime check refuses it
    with pytest.raises(MalformedKey):
        thumbprint(p384)


def test_key_set_from_keys_uses_thumbprints_and_round_trips() -> None:
    ed, p = new_ed25519().public_key(), new_p256().public_key()
    keys = KeySet.from_keys([ed, p])
    assert set(keys) == {thumbprint(ed), thumbprint(p)}
    assert len(keys) == 2 and thumbprint(ed) in keys
    assert keys.get(thumbprint(ed)) is ed
    parsed = parse_key_set(keys.encode())
    assert set(parsed) == set(keys)
    for kid in keys:
        assert public_key_bytes(parsed.get(kid)) == public_key_bytes(keys.get(kid))
    assert parsed.encode() == keys.encode()


def test_key_set_encoding_is_a_cose_key_set() -> None:
    ed = Ed25519PublicKey.from_public_bytes(RFC8032_X)
    encoded = KeySet({b"11": ed}).encode()
    assert cbor.decode(encoded) == [{1: 1, -1: 6, -2: RFC8032_X, 2: b"11"}]


def test_unknown_kid_raises_key_unknown() -> None:
    keys = KeySet.from_keys([new_ed25519().public_key()])
    with pytest.raises(KeyUnknown, match="00ff"):
        keys.get(b"\x00\xff")


def test_key_set_is_frozen() -> None:
    keys = KeySet.from_keys([new_ed25519().public_key()])
    with pytest.raises(dataclasses.FrozenInstanceError):
        keys.keys = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        keys.keys[b"x"] = new_ed25519().public_key()  # type: ignore[index]


def test_key_set_refuses_empty_kids() -> None:
    with pytest.raises(MalformedKey):
        KeySet({b"": new_ed25519().public_key()})


ED_KEY = {1: 1, -1: 6, -2: RFC8032_X}
BAD_KEY_SETS: list[tuple[str, bytes, str]] = [
    ("garbage", b"\xff\x00", "CBOR"),
    ("trailing bytes", cbor.encode([{**ED_KEY, 2: b"a"}]) + b"\x00", "trailing"),
    ("a map, not an array", cbor.encode({**ED_KEY, 2: b"a"}), "array"),
    ("empty array", cbor.encode([]), "non-empty"),
    ("entry not a map", cbor.encode([1]), "entry 0"),
    ("entry without kid", cbor.encode([ED_KEY]), "kid"),
    ("text kid", cbor.encode([{**ED_KEY, 2: "a"}]), "kid"),
    ("duplicate kid", cbor.encode([{**ED_KEY, 2: b"a"}, {**ED_KEY, 2: b"a"}]), "repeats"),
    ("bad key", cbor.encode([{1: 1, -1: 7, -2: RFC8032_X, 2: b"a"}]), "Ed25519"),
]


@pytest.mark.parametrize(("case", "data", "detail"), BAD_KEY_SETS, ids=[c[0] for c in BAD_KEY_SETS])
def test_bad_key_sets_are_refused(case: str, data: bytes, detail: str) -> None:
    with pytest.raises(MalformedKey, match=re.escape(detail)):
        parse_key_set(data)


def test_key_set_kid_need_not_be_a_thumbprint() -> None:
    key = Ed25519PrivateKey.generate().public_key()
    parsed = parse_key_set(cbor.encode([cose_key(key, kid=b"log-2024")]))
    assert public_key_bytes(parsed.get(b"log-2024")) == public_key_bytes(key)
