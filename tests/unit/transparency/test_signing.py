"""transparency.client.signing: statements a did:key signer makes, checked by the offline verifier."""

from __future__ import annotations

import hashlib
import stat
import time
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas import cbor
from schemas import cose_labels as L
from schemas.cose_sign1 import decode_sign1
from schemas.errors import ConfigurationError, InvalidParameter, MalformedKey, SignatureInvalid
from schemas.statement import parse_statement
from transparency.client import (
    KeyKind,
    did_of,
    generate_key,
    kid_of,
    load_private_key,
    save_private_key,
    sign_hash_envelope,
    sign_statement,
)
from verifier.did_key import did_key_from_public, verification_method
from verifier.statements import DidKeyResolver, verify_statement

KINDS: list[KeyKind] = ["ed25519", "p256"]


def _outer(statement: bytes) -> Any:
    item = cbor2.loads(statement)
    assert isinstance(item, cbor2.CBORTag)
    return item


@pytest.mark.parametrize("kind", KINDS)
def test_statement_verifies_with_the_did_key_of_its_signer(kind: KeyKind) -> None:
    key = generate_key(kind)
    before = int(time.time())
    data = sign_statement(key, b'{"a":1}', subject="did:example:agent", content_type="application/json")
    statement = verify_statement(data, DidKeyResolver())
    did = did_key_from_public(key.public_key())
    assert statement.alg == (L.ALG_EDDSA if kind == "ed25519" else L.ALG_ES256)
    assert statement.issuer == did == did_of(key)
    assert statement.kid == verification_method(did).encode() == kid_of(key)
    assert statement.subject == "did:example:agent"
    assert statement.content_type == "application/json"
    assert statement.payload == b'{"a":1}'
    claims = statement.message.protected[L.CWT_CLAIMS]
    assert before <= claims[L.CWT_IAT] <= int(time.time())
    assert set(statement.message.protected) == {L.ALG, L.KID, L.CWT_CLAIMS, L.CONTENT_TYPE}
    assert statement.message.unprotected == {}
    assert _outer(data).tag == L.COSE_SIGN1_TAG


@pytest.mark.parametrize("kind", KINDS)
def test_protected_header_is_deterministically_encoded(kind: KeyKind) -> None:
    data = sign_statement(generate_key(kind), b"x", subject="s", content_type="text/plain")
    message = decode_sign1(data)
    assert cbor.encode(dict(message.protected)) == message.protected_bytes


def test_issuer_kid_and_extra_claims_are_carried() -> None:
    key = generate_key("ed25519")
    data = sign_statement(key, b"x", subject="s", content_type=60, issuer="https://operator.example",
                          kid=b"key-1", extra_claims={L.CWT_EXP: 2_000_000_000, L.CWT_IAT: 7})
    statement = parse_statement(data)
    assert statement.issuer == "https://operator.example"
    assert statement.kid == b"key-1"
    assert statement.content_type == 60
    claims = statement.message.protected[L.CWT_CLAIMS]
    assert claims[L.CWT_EXP] == 2_000_000_000
    assert claims[L.CWT_IAT] == 7


@pytest.mark.parametrize("label", [L.CWT_ISS, L.CWT_SUB])
def test_extra_claims_cannot_set_issuer_or_subject(label: int) -> None:
    with pytest.raises(InvalidParameter):
        sign_statement(generate_key("ed25519"), b"x", subject="s", content_type="a/b",
                       extra_claims={label: "did:example:other"})


@pytest.mark.parametrize(
    "changes",
    [{"subject": ""}, {"content_type": ""}, {"issuer": ""}, {"kid": b""}, {"payload": "text, not bytes"}],
)
def test_bad_arguments_are_refused(changes: dict[str, Any]) -> None:
    args: dict[str, Any] = {"payload": b"x", "subject": "s", "content_type": "a/b"} | changes
    payload = args.pop("payload")
    with pytest.raises(InvalidParameter):
        sign_statement(generate_key("ed25519"), payload, **args)


@pytest.mark.parametrize("kind", KINDS)
def test_tampered_statement_does_not_verify(kind: KeyKind) -> None:
    data = bytearray(sign_statement(generate_key(kind), b"payload!", subject="s", content_type="a/b"))
    data[data.index(b"payload!")] ^= 1
    with pytest.raises(SignatureInvalid):
        verify_statement(bytes(data), DidKeyResolver())


@pytest.mark.parametrize("kind", KINDS)
def test_hash_envelope(kind: KeyKind) -> None:
    key = generate_key(kind)
    content = b"a large document " * 1000
    data = sign_hash_envelope(key, content, subject="s", preimage_content_type="application/pdf",
                              payload_location="https://example.com/doc.pdf")
    statement = parse_statement(data)
    verify_statement(statement, DidKeyResolver())
    assert statement.payload_hash_alg == L.HASH_SHA256
    assert statement.content_type == "application/pdf"
    assert statement.payload == hashlib.sha256(content).digest()
    protected = statement.message.protected
    assert L.CONTENT_TYPE not in protected
    assert protected[L.PAYLOAD_HASH_ALG] == -16
    assert protected[L.PREIMAGE_CONTENT_TYPE] == "application/pdf"
    assert protected[L.PAYLOAD_LOCATION] == "https://example.com/doc.pdf"


def test_hash_envelope_without_location() -> None:
    key = generate_key("ed25519")
    data = sign_hash_envelope(key, b"doc", subject="s", preimage_content_type="text/plain")
    assert L.PAYLOAD_LOCATION not in parse_statement(data).message.protected


def test_unknown_key_kind_is_refused() -> None:
    with pytest.raises(InvalidParameter):
        generate_key("rsa")  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", KINDS)
def test_key_file_round_trip(tmp_path: Path, kind: KeyKind) -> None:
    key = generate_key(kind)
    path = tmp_path / "signer.pem"
    save_private_key(key, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = load_private_key(path)
    assert did_of(loaded) == did_of(key)
    assert list(tmp_path.iterdir()) == [path], "no temporary file is left behind"


def test_existing_key_file_is_kept_unless_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "signer.pem"
    first, second = generate_key("ed25519"), generate_key("ed25519")
    save_private_key(first, path)
    with pytest.raises(ConfigurationError, match="already exists"):
        save_private_key(second, path)
    assert did_of(load_private_key(path)) == did_of(first)
    save_private_key(second, path, overwrite=True)
    assert did_of(load_private_key(path)) == did_of(second)


def test_missing_key_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read key file"):
        load_private_key(tmp_path / "absent.pem")


def _pem(key: Any, password: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    data: bytes = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    return data


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a key at all\n", "not a PEM private key"),
        (b"", "not a PEM private key"),
        (_pem(ec.generate_private_key(ec.SECP384R1())), "secp384r1"),
        (_pem(rsa.generate_private_key(65537, 2048)), "RSAPrivateKey"),
        (_pem(Ed25519PrivateKey.generate(), b"secret"), "encrypted"),
    ],
)
def test_a_file_that_is_not_a_signing_key_is_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(content)
    with pytest.raises(MalformedKey, match=message):
        load_private_key(path)


def test_a_key_of_another_curve_cannot_sign() -> None:
    with pytest.raises(MalformedKey):
        sign_statement(ec.generate_private_key(ec.SECP384R1()), b"x", subject="s", content_type="a/b")
