"""verify_sign1 over every cose-wg/Examples vector in tests/vectors/cose-wg.

Each file has an explicit expected outcome below, and a test checks the table covers every file, so a new
vector cannot be silently ignored. Tabellion verifies EdDSA/Ed25519 and ES256/P-256 COSE_Sign1 only:
other algorithms are refused with UnsupportedAlgorithm, other curves with MalformedKey, and multi-signer
COSE_Sign (tag 98) is not a COSE_Sign1 at all.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from enum import Enum
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PublicKey
from hypothesis import given
from hypothesis import strategies as st

from schemas import cbor
from schemas import cose_labels as L
from schemas.cose_sign1 import CoseSign1, decode_sign1, sig_structure
from schemas.errors import MalformedKey, NotCoseSign1, SignatureInvalid, UnsupportedAlgorithm
from tests.vectors import vectors_dir
from verifier.cose import to_be_signed, verify_sign1
from verifier.keys import PublicKey, public_key_from_cose


class Outcome(Enum):
    VERIFIES = "verifies"
    VERIFIES_UNTAGGED = "verifies only when untagged COSE_Sign1 is allowed"
    BAD_SIGNATURE = "SignatureInvalid"
    UNSUPPORTED_ALG = "UnsupportedAlgorithm (alg is neither EdDSA nor ES256)"
    UNSUPPORTED_CURVE = "MalformedKey for the key, UnsupportedAlgorithm for the alg/key pair"
    WRONG_TAG = "NotCoseSign1 (CBOR tag is not 18)"
    COSE_SIGN = "COSE_Sign (tag 98, multi-signer): refused as a COSE_Sign1; its signatures are not checked"


EXPECTED: dict[str, Outcome] = {
    "ecdsa-examples/ecdsa-01.json": Outcome.COSE_SIGN,
    "ecdsa-examples/ecdsa-02.json": Outcome.COSE_SIGN,
    "ecdsa-examples/ecdsa-03.json": Outcome.COSE_SIGN,
    "ecdsa-examples/ecdsa-04.json": Outcome.COSE_SIGN,
    "ecdsa-examples/ecdsa-sig-01.json": Outcome.VERIFIES,
    "ecdsa-examples/ecdsa-sig-02.json": Outcome.UNSUPPORTED_CURVE,  # ES384 on P-384
    "ecdsa-examples/ecdsa-sig-03.json": Outcome.UNSUPPORTED_CURVE,  # ES512 on P-521
    "ecdsa-examples/ecdsa-sig-04.json": Outcome.UNSUPPORTED_ALG,  # ES512 on a P-256 key
    "eddsa-examples/eddsa-01.json": Outcome.COSE_SIGN,
    "eddsa-examples/eddsa-02.json": Outcome.COSE_SIGN,
    "eddsa-examples/eddsa-sig-01.json": Outcome.VERIFIES,
    "eddsa-examples/eddsa-sig-02.json": Outcome.UNSUPPORTED_CURVE,  # EdDSA on Ed448
    "sign1-tests/sign-fail-01.json": Outcome.WRONG_TAG,  # tag 998
    "sign1-tests/sign-fail-02.json": Outcome.BAD_SIGNATURE,  # payload changed
    "sign1-tests/sign-fail-03.json": Outcome.UNSUPPORTED_ALG,  # alg -999
    "sign1-tests/sign-fail-04.json": Outcome.UNSUPPORTED_ALG,  # alg "unknown"
    "sign1-tests/sign-fail-06.json": Outcome.BAD_SIGNATURE,  # protected attribute added
    "sign1-tests/sign-fail-07.json": Outcome.BAD_SIGNATURE,  # protected attribute removed
    "sign1-tests/sign-pass-01.json": Outcome.VERIFIES,  # protected h'a0', alg unprotected
    "sign1-tests/sign-pass-02.json": Outcome.VERIFIES,  # external AAD
    "sign1-tests/sign-pass-03.json": Outcome.VERIFIES_UNTAGGED,  # tag removed
}

ALG_NAMES = {"EdDSA": L.ALG_EDDSA, "ES256": L.ALG_ES256, "ES384": -35, "ES512": -36}
CURVES = {"Ed25519": (1, 6), "Ed448": (1, 7), "P-256": (2, 1), "P-384": (2, 2), "P-521": (2, 3)}
EC_CLASSES: dict[str, ec.EllipticCurve] = {"P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}


def cose_wg() -> Path:
    return vectors_dir() / "cose-wg"


def all_vector_names() -> list[str]:
    return sorted(str(p.relative_to(cose_wg())) for p in cose_wg().glob("*/*.json"))


def load(name: str) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads((cose_wg() / name).read_text()))


def b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def coordinate(jwk: dict[str, Any], name: str) -> bytes:
    return bytes.fromhex(jwk[f"{name}_hex"]) if f"{name}_hex" in jwk else b64url(jwk[name])


def vector_cose_key(jwk: dict[str, Any]) -> dict[int, Any]:
    """The vector's JWK-like key as a COSE_Key map (public part only)."""
    kty, crv = CURVES[jwk["crv"]]
    key: dict[int, Any] = {1: kty, -1: crv, -2: coordinate(jwk, "x")}
    if kty == 2:
        key[-3] = coordinate(jwk, "y")
    return key


def raw_public_key(jwk: dict[str, Any]) -> Any:
    """The key built directly with cryptography, for curves that verifier.keys refuses."""
    if jwk["crv"] == "Ed448":
        return Ed448PublicKey.from_public_bytes(coordinate(jwk, "x"))
    x, y = (int.from_bytes(coordinate(jwk, n), "big") for n in "xy")
    return ec.EllipticCurvePublicNumbers(x, y, EC_CLASSES[jwk["crv"]]).public_key()


def message_alg(msg: CoseSign1) -> Any:
    return msg.protected.get(L.ALG, msg.unprotected.get(L.ALG))


def external_aad(vector: dict[str, Any]) -> bytes:
    return bytes.fromhex(vector["input"]["sign0"].get("external", ""))


def test_every_vector_file_has_an_expected_outcome() -> None:
    assert all_vector_names() == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_cose_wg_vector(name: str) -> None:
    vector = load(name)
    outcome = EXPECTED[name]
    data = bytes.fromhex(vector["output"]["cbor"])
    assert bool(vector.get("fail")) == (outcome in {Outcome.BAD_SIGNATURE, Outcome.UNSUPPORTED_ALG,
                                                     Outcome.WRONG_TAG} and name.startswith("sign1-tests"))

    if outcome is Outcome.COSE_SIGN:
        assert "sign" in vector["input"]
        for require_tag in (True, False):
            with pytest.raises(NotCoseSign1, match="98"):
                decode_sign1(data, require_tag=require_tag)
        pytest.skip("multi-signer COSE_Sign is out of scope: Tabellion signs and verifies COSE_Sign1 only")

    if outcome is Outcome.WRONG_TAG:
        for require_tag in (True, False):
            with pytest.raises(NotCoseSign1, match="998"):
                decode_sign1(data, require_tag=require_tag)
        return

    sign0 = vector["input"]["sign0"]
    if outcome is Outcome.VERIFIES_UNTAGGED:
        with pytest.raises(NotCoseSign1, match="not tagged"):
            decode_sign1(data)
        msg = decode_sign1(data, require_tag=False)
    else:
        msg = decode_sign1(data)
    alg = message_alg(msg)
    aad = external_aad(vector)

    if outcome is Outcome.UNSUPPORTED_CURVE:
        with pytest.raises(MalformedKey, match="crv"):
            public_key_from_cose(vector_cose_key(sign0["key"]))
        with pytest.raises(UnsupportedAlgorithm):
            verify_sign1(msg, alg, raw_public_key(sign0["key"]), external_aad=aad)
        return

    key: PublicKey = public_key_from_cose(vector_cose_key(sign0["key"]))
    if outcome is Outcome.UNSUPPORTED_ALG:
        with pytest.raises(UnsupportedAlgorithm):
            verify_sign1(msg, alg, key, external_aad=aad)
        return
    if outcome is Outcome.BAD_SIGNATURE:
        with pytest.raises(SignatureInvalid):
            verify_sign1(msg, alg, key, external_aad=aad)
        return

    assert outcome in {Outcome.VERIFIES, Outcome.VERIFIES_UNTAGGED}
    expected_tbs = bytes.fromhex(vector["intermediates"]["ToBeSign_hex"])
    assert to_be_signed(msg, external_aad=aad) == expected_tbs
    assert alg == ALG_NAMES[sign0["alg"]]
    verify_sign1(msg, alg, key, external_aad=aad)
    _mutations_are_refused(msg, alg, key, aad)


def _mutations_are_refused(msg: CoseSign1, alg: int, key: PublicKey, aad: bytes) -> None:
    sig = msg.signature
    flipped_first, flipped_last = bytes([sig[0] ^ 1]) + sig[1:], sig[:-1] + bytes([sig[-1] ^ 0x80])
    for bad_sig in (sig[:-1], sig + b"\x00", flipped_first, flipped_last):
        with pytest.raises(SignatureInvalid):
            verify_sign1(_with(msg, signature=bad_sig), alg, key, external_aad=aad)
    assert msg.payload is not None
    with pytest.raises(SignatureInvalid):
        verify_sign1(_with(msg, payload=msg.payload + b"!"), alg, key, external_aad=aad)
    with pytest.raises(SignatureInvalid):
        verify_sign1(msg, alg, key, external_aad=aad + b"x")
    other = L.ALG_ES256 if alg == L.ALG_EDDSA else L.ALG_EDDSA
    with pytest.raises(UnsupportedAlgorithm):
        verify_sign1(msg, other, key, external_aad=aad)


def _with(msg: CoseSign1, **changes: Any) -> CoseSign1:
    return dataclasses.replace(msg, **changes)


def test_protected_alg_must_match_the_requested_alg() -> None:
    vector = load("eddsa-examples/eddsa-sig-01.json")
    msg = decode_sign1(bytes.fromhex(vector["output"]["cbor"]))
    key = public_key_from_cose(vector_cose_key(vector["input"]["sign0"]["key"]))
    with pytest.raises(UnsupportedAlgorithm, match="protected header names alg -8"):
        verify_sign1(msg, L.ALG_ES256, key)


def test_detached_payload_is_required_when_payload_is_nil() -> None:
    vector = load("eddsa-examples/eddsa-sig-01.json")
    msg = decode_sign1(bytes.fromhex(vector["output"]["cbor"]))
    key = public_key_from_cose(vector_cose_key(vector["input"]["sign0"]["key"]))
    assert msg.payload is not None
    detached = _with(msg, payload=None)
    with pytest.raises(NotCoseSign1, match="detached"):
        verify_sign1(detached, L.ALG_EDDSA, key)
    verify_sign1(detached, L.ALG_EDDSA, key, detached_payload=msg.payload)


@given(
    st.dictionaries(st.integers(-300, 300), st.binary(max_size=300), max_size=3),
    st.sampled_from([0, 1, 23, 24, 255, 256, 65535, 65536, 70000]),
    st.binary(max_size=40),
)
def test_hand_written_sig_structure_equals_schemas(hdr: dict[int | str, Any], size: int, aad: bytes) -> None:
    protected = cbor.encode(hdr) if hdr else b""
    payload = b"\x5a" * size
    msg = CoseSign1(protected, hdr, {}, payload, b"")
    assert to_be_signed(msg, external_aad=aad) == sig_structure(protected, payload, aad)
    detached = dataclasses.replace(msg, payload=None)
    assert to_be_signed(detached, b"root", aad) == sig_structure(protected, b"root", aad)
