"""did:key encode/resolve (verifier.did_key) against the W3C CCG did:key test vectors and base58 vectors."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

from schemas.errors import MalformedKey, SignerUnresolvable
from tests.signing import new_ed25519, new_p256
from verifier.did_key import (
    b58decode,
    b58encode,
    did_key_from_public,
    read_varint,
    resolve_did_key,
    varint,
    verification_method,
)
from verifier.keys import public_key_bytes

# draft-msporny-base58-03 §5 test vectors.
BASE58_VECTORS = [
    (b"Hello World!", "2NEpo7TZRRrLZSi2U"),
    (b"The quick brown fox jumps over the lazy dog.",
     "USm3fpXnKG5EUBx2ndxBDMPVciP5hGey2Jh4NDv6gmeo1LkMeiKrLJUUBk6Z"),
    (bytes.fromhex("0000287fb4cd"), "11233QC4"),
    (b"", ""),
    (b"\x00", "1"),
]

# w3c-ccg/did-method-key test-vectors/ed25519-x25519.json: seed -> DID and publicKeyBase58.
ED25519_VECTORS = [
    ("00" * 32, "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
     "4zvwRjXUKGfvwnParsHAS3HuSVzV5cA4McphgmoCtajS"),
    ("00" * 31 + "01", "did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG",
     "6ASf5EcmmEHTgDJ4X4ZT5vT6iHVJBXPg5AN5YoTCpGWt"),
    ("00" * 31 + "02", "did:key:z6MknGc3ocHs3zdPiJbnaaqDi58NGb4pk1Sp9WxWufuXSdxf",
     "8pM1DN3RiT8vbom5u1sNryaNT1nyL8CTTW3b5PwWXRBH"),
]

# w3c-ccg/did-method-key test-vectors/nist-curves.json: P-256 DIDs and their JWK coordinates.
P256_VECTORS = [
    ("did:key:zDnaerx9CtbPJ1q36T5Ln5wYt3MQYeGRG5ehnPAmxcf5mDZpv",
     "igrFmi0whuihKnj9R3Om1SoMph72wUGeFaBbzG2vzns", "efsX5b10x8yjyrj4ny3pGfLcY7Xby1KzgqOdqnsrJIM"),
    ("did:key:zDnaerDaTF5BXEavCrfRZEk316dpbLsfPDZ3WJ5hRTPFU2169",
     "fyNYMN0976ci7xqiSdag3buk-ZCwgXU4kz9XNkBlNUI", "hW2ojTNfH7Jbi8--CJUo3OCbH3y5n91g-IMA9MLMbTU"),
]


def b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.mark.parametrize(("raw", "text"), BASE58_VECTORS)
def test_base58_vectors(raw: bytes, text: str) -> None:
    assert b58encode(raw) == text
    assert b58decode(text) == raw


@given(st.binary(max_size=80))
def test_base58_round_trip(raw: bytes) -> None:
    assert b58decode(b58encode(raw)) == raw


@pytest.mark.parametrize("bad", ["0", "O", "I", "l", "z+", "abc def"])
def test_base58_refuses_characters_outside_the_alphabet(bad: str) -> None:
    with pytest.raises(MalformedKey, match="base58btc"):
        b58decode(bad)


def _b58decode_reference(text: str) -> bytes:
    """The character-by-character decoder ``b58decode`` replaced (its digits looked up with ``translate``)."""
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    n = 0
    for c in text:
        if c not in alphabet:
            raise MalformedKey(f"{c!r} is not a base58btc character")
        n = n * 58 + alphabet.index(c)
    zeros = len(text) - len(text.lstrip("1"))
    return b"\x00" * zeros + (n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b"")


_NEAR_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0OIl+/ \xff\u0100é😀"


@given(st.text(alphabet=st.sampled_from(_NEAR_BASE58), max_size=100) | st.text(max_size=20))
def test_base58_decode_agrees_with_the_reference(text: str) -> None:
    try:
        expected = _b58decode_reference(text)
    except MalformedKey as exc:
        with pytest.raises(MalformedKey) as refused:
            b58decode(text)
        assert refused.value.detail == exc.detail
        return
    assert b58decode(text) == expected


@pytest.mark.parametrize(("n", "encoded"), [(0, "00"), (1, "01"), (127, "7f"), (128, "8001"), (0xED, "ed01"),
                                            (0x1200, "8024"), (16384, "808001")])
def test_varint_vectors(n: int, encoded: str) -> None:
    # multiformats unsigned-varint README examples, plus the two codecs used here.
    assert varint(n) == bytes.fromhex(encoded)
    assert read_varint(bytes.fromhex(encoded) + b"\xff") == (n, len(encoded) // 2)


def test_varint_refuses_non_minimal_and_truncated() -> None:
    with pytest.raises(MalformedKey, match="minimal"):
        read_varint(b"\x81\x00")
    with pytest.raises(MalformedKey, match="truncated"):
        read_varint(b"\x80")


@pytest.mark.parametrize(("seed", "did", "public_b58"), ED25519_VECTORS)
def test_w3c_ed25519_vectors(seed: str, did: str, public_b58: str) -> None:
    public = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed)).public_key()
    assert public_key_bytes(public) == b58decode(public_b58)
    assert did_key_from_public(public) == did
    resolved = resolve_did_key(did)
    assert isinstance(resolved, Ed25519PublicKey)
    assert public_key_bytes(resolved) == b58decode(public_b58)
    vm = verification_method(did)
    assert vm == f"{did}#{did.removeprefix('did:key:')}"
    assert public_key_bytes(resolve_did_key(vm)) == b58decode(public_b58)


@pytest.mark.parametrize(("did", "x", "y"), P256_VECTORS)
def test_w3c_p256_vectors(did: str, x: str, y: str) -> None:
    resolved = resolve_did_key(did)
    assert isinstance(resolved, ec.EllipticCurvePublicKey)
    assert isinstance(resolved.curve, ec.SECP256R1)
    numbers = resolved.public_numbers()
    assert numbers.x.to_bytes(32, "big") == b64url(x)
    assert numbers.y.to_bytes(32, "big") == b64url(y)
    assert did_key_from_public(resolved) == did
    assert public_key_bytes(resolve_did_key(verification_method(did))) == public_key_bytes(resolved)


@pytest.mark.parametrize("make", [new_ed25519, new_p256])
def test_round_trip(make: Any) -> None:
    public = make().public_key()
    did = did_key_from_public(public)
    assert re.fullmatch(r"did:key:z(6Mk|Dn)[1-9A-HJ-NP-Za-km-z]+", did)
    assert public_key_bytes(resolve_did_key(did)) == public_key_bytes(public)
    assert public_key_bytes(resolve_did_key(verification_method(did))) == public_key_bytes(public)


UNSUPPORTED = [
    # nist-curves.json P-384 vector
    ("did:key:z82Lm1MpAkeJcix9K8TMiLd5NMAhnwkjjCBeWHXyu3U4oT2MVJJKXkcVBgjGhnLBn2Kaau9", "p384-pub"),
    # ed25519-x25519.json key agreement key (an X25519 key cannot sign)
    ("did:key:z6LShs9GGnqk85isEBzzshkuVWrVKsRp24GnDuHk8QWkARMW", "x25519-pub"),
]


@pytest.mark.parametrize(("did", "codec"), UNSUPPORTED)
def test_unsupported_key_types_are_refused(did: str, codec: str) -> None:
    with pytest.raises(MalformedKey, match=codec):
        resolve_did_key(did)


def _did_of_bytes(raw: bytes) -> str:
    return "did:key:z" + b58encode(raw)


ED_RAW = bytes.fromhex("ed01") + b"\x01" * 32
MALFORMED = [
    ("empty method-specific id", "did:key:", "multibase"),
    ("base64url multibase", "did:key:u7QE", "'u'"),
    ("not base58", "did:key:z6Mk0OIl", "base58btc"),
    ("path", "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp/path", "multibase"),
    ("query", "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp?x=1", "multibase"),
    ("versioned", "did:key:1:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp", "multibase"),
    ("short Ed25519 key", _did_of_bytes(ED_RAW[:-1]), "31 bytes"),
    ("long Ed25519 key", _did_of_bytes(ED_RAW + b"\x00"), "33 bytes"),
    ("uncompressed P-256 point", _did_of_bytes(bytes.fromhex("8024") + b"\x04" + b"\x01" * 32), "compressed"),
    ("P-256 point off the curve", _did_of_bytes(bytes.fromhex("8024") + b"\x02" + b"\xff" * 32), "curve"),
    ("non-minimal varint", _did_of_bytes(bytes.fromhex("ed8100") + b"\x01" * 32), "minimal"),
    ("unknown codec", _did_of_bytes(bytes.fromhex("7f") + b"\x01" * 32), "unknown"),
]


@pytest.mark.parametrize(("case", "did", "detail"), MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_did_keys_are_refused(case: str, did: str, detail: str) -> None:
    with pytest.raises(MalformedKey, match=re.escape(detail)):
        resolve_did_key(did)


DID = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("did:web:example.com", "not a did:key"),
        ("did:web:example.com#key-1", "not a did:key"),
        ("https://example.com", "not a did:key"),
        (f"{DID}#key-1", "fragment #key-1"),
        (f"{DID}#z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG", "fragment"),
        (f"{DID}#", "fragment"),
        ("did:key:" + "z" * 300, "too long"),
    ],
)
def test_unresolvable_signers(value: str, detail: str) -> None:
    with pytest.raises(SignerUnresolvable, match=re.escape(detail)):
        resolve_did_key(value)


def test_verification_method_refuses_non_did_key_and_fragments() -> None:
    with pytest.raises(SignerUnresolvable):
        verification_method("did:web:example.com")
    with pytest.raises(MalformedKey):
        verification_method(verification_method(DID))


def test_other_curves_have_no_did_key_here() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    with pytest.raises(MalformedKey):
        did_key_from_public(p384)
