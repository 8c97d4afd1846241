"""Signed statements signed by pycose (an independent implementation) and verified by verifier.statements."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas import cbor
from schemas import cose_labels as L
from schemas.cose_sign1 import decode_sign1, sig_structure
from schemas.errors import (
    InvalidHeader,
    MissingHeader,
    NotCoseSign1,
    SignatureInvalid,
    SignerUnresolvable,
    UnsupportedAlgorithm,
)
from schemas.statement import SignedStatement, parse_statement
from tests.signing import DEFAULT_SUBJECT, did_of, kid_of, new_ed25519, new_p256, sign1, sign_statement
from verifier.keys import PublicKey
from verifier.statements import DidKeyResolver, KeyResolver, verify_statement

PAYLOAD = b'{"hello":"world"}'
RESOLVER = DidKeyResolver()


def test_pycose_ed25519_statement_verifies() -> None:
    key = new_ed25519()
    data = sign_statement(key, PAYLOAD, did_of(key), "did:example:agent-7", "application/json")
    statement = verify_statement(data, RESOLVER)
    assert statement.issuer == did_of(key)
    assert statement.subject == "did:example:agent-7"
    assert statement.content_type == "application/json"
    assert statement.payload == PAYLOAD
    assert statement.alg == L.ALG_EDDSA
    assert statement.kid == kid_of(key)


def test_the_protected_header_is_exactly_the_documented_shape() -> None:
    key = new_ed25519()
    statement = verify_statement(sign_statement(key, PAYLOAD), RESOLVER)
    assert dict(statement.message.protected) == {
        1: -8,
        4: kid_of(key),
        15: {1: did_of(key), 2: DEFAULT_SUBJECT},
        3: "application/json",
    }


def test_pycose_es256_statement_verifies() -> None:
    key = new_p256()
    statement = verify_statement(sign_statement(key, PAYLOAD), RESOLVER)
    assert statement.alg == L.ALG_ES256
    assert statement.issuer.startswith("did:key:zDn")


def test_bare_did_kid_is_accepted() -> None:
    key = new_ed25519()
    verify_statement(sign_statement(key, PAYLOAD, kid=did_of(key).encode()), RESOLVER)


def test_a_parsed_statement_can_be_verified() -> None:
    key = new_ed25519()
    parsed = parse_statement(sign_statement(key, PAYLOAD))
    assert verify_statement(parsed, RESOLVER) is parsed


def test_the_unprotected_header_is_not_signed() -> None:
    key = new_ed25519()
    verify_statement(sign_statement(key, PAYLOAD, unprotected={99: "anything", L.RECEIPTS: []}), RESOLVER)


def test_coap_content_format_and_hash_envelope_statements_verify() -> None:
    key = new_ed25519()
    verify_statement(sign_statement(key, PAYLOAD, content_type=50), RESOLVER)
    envelope = sign_statement(
        key, hashlib.sha256(PAYLOAD).digest(), content_type=None,
        extra_protected={L.PAYLOAD_HASH_ALG: L.HASH_SHA256, L.PREIMAGE_CONTENT_TYPE: "application/json"},
    )
    statement = verify_statement(envelope, RESOLVER)
    assert statement.payload_hash_alg == L.HASH_SHA256


def test_tampered_payload_is_refused() -> None:
    msg = decode_sign1(sign_statement(new_ed25519(), PAYLOAD))
    tampered = dataclasses.replace(msg, payload=b'{"hello":"World"}').encode()
    with pytest.raises(SignatureInvalid):
        verify_statement(tampered, RESOLVER)


def test_tampered_protected_header_is_refused() -> None:
    key = new_ed25519()
    msg = decode_sign1(sign_statement(key, PAYLOAD))
    protected = dict(msg.protected)
    protected[L.CWT_CLAIMS] = {L.CWT_ISS: did_of(key), L.CWT_SUB: "did:example:someone-else"}
    pb = cbor.encode(protected)
    tampered = dataclasses.replace(msg, protected_bytes=pb, protected=protected).encode()
    with pytest.raises(SignatureInvalid):
        verify_statement(tampered, RESOLVER)


@pytest.mark.parametrize("make", [new_ed25519, new_p256])
def test_signature_by_another_key_is_refused(make: type[Ed25519PrivateKey]) -> None:
    claimed, actual = make(), make()
    data = sign_statement(actual, PAYLOAD, iss=did_of(claimed), kid=kid_of(claimed))
    with pytest.raises(SignatureInvalid):
        verify_statement(data, RESOLVER)


def test_kid_and_iss_must_name_the_same_did() -> None:
    key, other = new_ed25519(), new_ed25519()
    data = sign_statement(key, PAYLOAD, iss=did_of(other))
    with pytest.raises(SignerUnresolvable) as caught:
        verify_statement(data, RESOLVER)
    assert did_of(key) in caught.value.detail and did_of(other) in caught.value.detail


def test_kid_fragment_must_be_the_did_key_itself() -> None:
    key = new_ed25519()
    data = sign_statement(key, PAYLOAD, kid=(did_of(key) + "#key-1").encode())
    with pytest.raises(SignerUnresolvable, match="fragment"):
        verify_statement(data, RESOLVER)


def test_non_did_key_signers_are_unresolvable() -> None:
    key = new_ed25519()
    data = sign_statement(key, PAYLOAD, iss="did:web:example.com", kid=b"did:web:example.com#key-1")
    with pytest.raises(SignerUnresolvable, match="not a did:key"):
        verify_statement(data, RESOLVER)


def test_non_text_kid_is_unresolvable() -> None:
    data = sign_statement(new_ed25519(), PAYLOAD, kid=b"\xff\xfe")
    with pytest.raises(SignerUnresolvable, match="UTF-8"):
        verify_statement(data, RESOLVER)


def test_x5chain_only_statement_needs_trust_anchors() -> None:
    key = new_ed25519()
    data = sign_statement(key, PAYLOAD, extra_protected={L.X5CHAIN: b"\x30\x82 not a real certificate"},
                          omit=[L.KID])
    with pytest.raises(SignerUnresolvable, match="no trust anchors configured for x5chain"):
        verify_statement(data, RESOLVER)


@pytest.mark.parametrize(
    ("omit", "error", "detail"),
    [
        ([L.ALG], MissingHeader, "alg"),
        ([L.KID], MissingHeader, "neither kid"),
        ([L.CWT_CLAIMS], MissingHeader, "CWT claims"),
        ([L.CONTENT_TYPE], MissingHeader, "content type"),
    ],
)
def test_missing_headers_are_refused(omit: list[int], error: type[Exception], detail: str) -> None:
    # pycose needs alg to sign, so a statement without alg is signed by hand.
    key = new_ed25519()
    if L.ALG in omit:
        protected = {L.KID: kid_of(key), L.CWT_CLAIMS: {1: did_of(key), 2: "s"}, L.CONTENT_TYPE: "text/plain"}
        data = _sign_by_hand(key, protected, PAYLOAD)
    else:
        data = sign_statement(key, PAYLOAD, omit=omit)
    with pytest.raises(error, match=detail):
        verify_statement(data, RESOLVER)


def test_missing_iss_or_sub_is_refused() -> None:
    key = new_ed25519()
    with pytest.raises(MissingHeader, match="iss"):
        verify_statement(sign_statement(key, PAYLOAD, extra_protected={L.CWT_CLAIMS: {2: "s"}}), RESOLVER)
    with pytest.raises(MissingHeader, match="sub"):
        verify_statement(sign_statement(key, PAYLOAD, extra_protected={L.CWT_CLAIMS: {1: did_of(key)}}),
                         RESOLVER)
    # pycose refuses to sign a text kid, so this one is signed by hand.
    protected = {L.ALG: L.ALG_EDDSA, L.KID: "text kid", L.CWT_CLAIMS: {1: did_of(key), 2: "s"},
                 L.CONTENT_TYPE: "text/plain"}
    with pytest.raises(InvalidHeader, match="kid"):
        verify_statement(_sign_by_hand(key, protected, PAYLOAD), RESOLVER)


def test_unsupported_algorithm_is_refused() -> None:
    key = new_p256()
    data = _sign_by_hand_p384_alg(key)
    with pytest.raises(UnsupportedAlgorithm, match="-35"):
        verify_statement(data, RESOLVER)


def test_alg_that_does_not_fit_the_did_key_is_refused() -> None:
    # EdDSA signature by an Ed25519 key, but kid/iss name a P-256 did:key.
    signer, p256 = new_ed25519(), new_p256()
    protected = {L.ALG: L.ALG_EDDSA, L.KID: kid_of(p256), L.CWT_CLAIMS: {1: did_of(p256), 2: "s"},
                 L.CONTENT_TYPE: "text/plain"}
    with pytest.raises(UnsupportedAlgorithm, match="Ed25519"):
        verify_statement(_sign_by_hand(signer, protected, PAYLOAD), RESOLVER)


def test_detached_and_untagged_statements_are_refused() -> None:
    key = new_ed25519()
    protected = {L.ALG: L.ALG_EDDSA, L.KID: kid_of(key), L.CWT_CLAIMS: {1: did_of(key), 2: "s"},
                 L.CONTENT_TYPE: "text/plain"}
    with pytest.raises(NotCoseSign1, match="detached"):
        verify_statement(sign1(key, protected, None, detached_payload=PAYLOAD), RESOLVER)
    with pytest.raises(NotCoseSign1, match="tagged"):
        verify_statement(sign1(key, protected, PAYLOAD, tag=False), RESOLVER)


@dataclass(frozen=True)
class TableResolver:
    """A consumer-defined resolver: kid -> key, as a registry of known signers would be."""

    keys: dict[bytes, PublicKey]

    def resolve(self, statement: SignedStatement) -> PublicKey:
        if statement.kid not in self.keys:
            raise SignerUnresolvable(f"unknown signer {statement.issuer}")
        return self.keys[statement.kid]


def test_any_key_resolver_can_be_plugged_in() -> None:
    key = new_ed25519()
    resolver: KeyResolver = TableResolver({b"operator-1": key.public_key()})
    data = sign_statement(key, PAYLOAD, iss="https://operator.example", kid=b"operator-1")
    assert verify_statement(data, resolver).issuer == "https://operator.example"
    with pytest.raises(SignerUnresolvable):
        verify_statement(sign_statement(key, PAYLOAD, kid=b"operator-2"), resolver)


def _sign_by_hand(key: Ed25519PrivateKey, protected: Mapping[int, object], payload: bytes) -> bytes:
    pb = cbor.encode(protected)
    signature = key.sign(sig_structure(pb, payload))
    return cbor.encode(cbor.tag(L.COSE_SIGN1_TAG, [pb, {}, payload, signature]))


def _sign_by_hand_p384_alg(key: object) -> bytes:
    # The signature bytes do not matter: the alg is refused before any key is looked at.
    protected = {L.ALG: -35, L.KID: b"did:key:z#z", L.CWT_CLAIMS: {1: "did:key:z", 2: "s"},
                 L.CONTENT_TYPE: "text/plain"}
    return cbor.encode(cbor.tag(L.COSE_SIGN1_TAG, [cbor.encode(protected), {}, PAYLOAD, b"\x00" * 96]))
