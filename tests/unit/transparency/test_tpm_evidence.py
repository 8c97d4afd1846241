"""TPM 2.0 evidence read without a TPM (transparency.tpm): known answers recorded from swtpm
(tests/vectors/tpm/swtpm-evidence.json, tests/tpm_vectors.py), each with its negative, and MakeCredential checked
live against a running swtpm."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from tests.swtpm import SoftwareTpm
from tests.vectors import vectors_dir
from transparency.client.tpm import AGENT_KEY_ATTRIBUTES, AK_ATTRIBUTES, Tpm
from transparency.tpm.credential import IDENTITY, EndorsementKey, kdfa, kdfe, make_credential, protect
from transparency.tpm.ek_chain import PinnedRoot, walk
from transparency.tpm.errors import EnrolmentRefused, Gate, TpmSignatureInvalid, TpmStructureInvalid
from transparency.tpm.structures import (
    ALG_SHA256,
    ECC_NIST_P256,
    FIXED_PARENT,
    FIXED_TPM,
    RESTRICTED,
    SENSITIVE_DATA_ORIGIN,
    SIGN_ENCRYPT,
    ST_ATTEST_CERTIFY,
    ST_ATTEST_QUOTE,
    parse_attest,
    parse_public,
    parse_signature,
    verify_signature,
)


@pytest.fixture(scope="module")
def v() -> dict[str, Any]:
    vectors: dict[str, Any] = json.loads((vectors_dir() / "tpm" / "swtpm-evidence.json").read_text())
    return vectors


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes((data[at] ^ 0x01,)) + data[at + 1 :]


# --- TPMT_PUBLIC and names ------------------------------------------------------------------------------------


def test_the_keys_created_in_the_tpm_parse_with_their_attributes(v: dict[str, Any]) -> None:
    ak, key = parse_public(bytes.fromhex(v["ak_public"])), parse_public(bytes.fromhex(v["agent_key_public"]))
    assert ak.curve == key.curve == ECC_NIST_P256 and ak.name_alg == ALG_SHA256
    assert ak.attributes == AK_ATTRIBUTES and key.attributes == AGENT_KEY_ATTRIBUTES
    for bit in (FIXED_TPM, FIXED_PARENT, SENSITIVE_DATA_ORIGIN, SIGN_ENCRYPT):
        assert ak.has(bit) and key.has(bit)
    assert ak.has(RESTRICTED) and not key.has(RESTRICTED)
    ek = parse_public(bytes.fromhex(v["ek_public"]))
    assert isinstance(ek.public_key, rsa.RSAPublicKey) and ek.key_bits == 2048


def test_the_certified_name_is_the_name_computed_from_the_public_area(v: dict[str, Any]) -> None:
    """Name = nameAlg || SHA-256(TPMT_PUBLIC), as the TPM computed it in its TPM2_Certify."""
    certify = parse_attest(bytes.fromhex(v["certify"]["attest"]))
    key = parse_public(bytes.fromhex(v["agent_key_public"]))
    assert certify.certified_name == key.name
    assert key.name[:2] == b"\x00\x0b" and len(key.name) == 34


@pytest.mark.parametrize("cut", [1, 10, 30])
def test_a_truncated_public_area_is_refused(v: dict[str, Any], cut: int) -> None:
    with pytest.raises(TpmStructureInvalid):
        parse_public(bytes.fromhex(v["ak_public"])[:-cut])


def test_trailing_bytes_after_a_public_area_are_refused(v: dict[str, Any]) -> None:
    with pytest.raises(TpmStructureInvalid):
        parse_public(bytes.fromhex(v["ak_public"]) + b"\x00")


# --- TPMS_ATTEST and TPMT_SIGNATURE ------------------------------------------------------------------------------


def test_the_quote_carries_the_nonce_and_verifies_with_the_ak(v: dict[str, Any]) -> None:
    raw = bytes.fromhex(v["quote"]["attest"])
    quote = parse_attest(raw)
    assert quote.type == ST_ATTEST_QUOTE and quote.extra_data == bytes.fromhex(v["nonce"])
    assert [s.text() for s in quote.pcr_selection] == ["sha256:0,1,2,3,4,5,6,7"] and len(quote.pcr_digest) == 32
    ak = parse_public(bytes.fromhex(v["ak_public"]))
    verify_signature(ak, raw, parse_signature(bytes.fromhex(v["quote"]["signature"])), "quote")


def test_the_certification_verifies_with_the_ak(v: dict[str, Any]) -> None:
    raw = bytes.fromhex(v["certify"]["attest"])
    assert parse_attest(raw).type == ST_ATTEST_CERTIFY
    ak = parse_public(bytes.fromhex(v["ak_public"]))
    verify_signature(ak, raw, parse_signature(bytes.fromhex(v["certify"]["signature"])), "certification")


@pytest.mark.parametrize("at", [6, 40, 60, -1])
def test_a_changed_quote_does_not_verify(v: dict[str, Any], at: int) -> None:
    raw = _flip(bytes.fromhex(v["quote"]["attest"]), at % len(bytes.fromhex(v["quote"]["attest"])))
    ak = parse_public(bytes.fromhex(v["ak_public"]))
    with pytest.raises(TpmSignatureInvalid):
        verify_signature(ak, raw, parse_signature(bytes.fromhex(v["quote"]["signature"])), "quote")


def test_a_quote_does_not_verify_with_another_key(v: dict[str, Any]) -> None:
    other = parse_public(bytes.fromhex(v["agent_key_public"]))
    with pytest.raises(TpmSignatureInvalid):
        verify_signature(other, bytes.fromhex(v["quote"]["attest"]),
                         parse_signature(bytes.fromhex(v["quote"]["signature"])), "quote")


def test_an_attestation_without_the_tpm_magic_is_refused(v: dict[str, Any]) -> None:
    with pytest.raises(TpmStructureInvalid, match="TPM_GENERATED_VALUE"):
        parse_attest(b"\x00" + bytes.fromhex(v["quote"]["attest"])[1:])


# --- MakeCredential: byte for byte what the TPM's own TPM2_MakeCredential makes -----------------------------------


def test_make_credential_with_an_rsa_key_equals_the_tpms(v: dict[str, Any]) -> None:
    """The TPM chose the seed; recover it with the recorded private key (RSA-OAEP, label IDENTITY\\0) and our
    credential blob must be the TPM's, byte for byte; a wrong label does not decrypt."""
    item = v["make_credential_rsa"]
    private = serialization.load_pem_private_key(item["private_key_pem"].encode(), None)
    assert isinstance(private, rsa.RSAPrivateKey)
    oaep = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), IDENTITY)
    seed = private.decrypt(bytes.fromhex(item["secret"]), oaep)
    ek = EndorsementKey.from_public(parse_public(bytes.fromhex(item["public"])))
    blob = protect(ek, seed, bytes.fromhex(item["name"]), bytes.fromhex(item["credential"]))
    assert blob == bytes.fromhex(item["credential_blob"])
    assert make_credential(ek, bytes.fromhex(item["name"]), bytes.fromhex(item["credential"]),
                           seed=seed).credential_blob == blob
    assert protect(ek, seed, _flip(bytes.fromhex(item["name"]), 5), bytes.fromhex(item["credential"])) != blob
    with pytest.raises(ValueError):
        private.decrypt(bytes.fromhex(item["secret"]), padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(),
                                                                    b"IDENTITY"))


def test_make_credential_with_an_ecc_key_equals_the_tpms(v: dict[str, Any]) -> None:
    """ECDH on P-256 then KDFe: with the TPM's ephemeral point and the recorded private key, the seed and so the
    credential blob are the TPM's."""
    item = v["make_credential_ecc"]
    private = serialization.load_pem_private_key(item["private_key_pem"].encode(), None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    secret = bytes.fromhex(item["secret"])
    x, y = secret[2:34], secret[36:68]
    ephemeral = ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1())
    z = private.exchange(ec.ECDH(), ephemeral.public_key())
    mine = private.public_key().public_numbers().x.to_bytes(32, "big")
    seed = kdfe(ALG_SHA256, z, IDENTITY, x, mine, 256)
    ek = EndorsementKey.from_public(parse_public(bytes.fromhex(item["public"])))
    assert protect(ek, seed, bytes.fromhex(item["name"]), bytes.fromhex(item["credential"])) == bytes.fromhex(
        item["credential_blob"])


def test_kdfa_is_hmac_counter_mode_with_the_null_terminated_label() -> None:
    """KDFa by its definition (TPM 2.0 Part 1 §11.4.10.2), computed here independently with cryptography's HMAC."""
    from cryptography.hazmat.primitives.hmac import HMAC

    key, u, vv = os.urandom(32), os.urandom(34), b""
    expected = b""
    for i in (1, 2):
        mac = HMAC(key, hashes.SHA256())
        mac.update(i.to_bytes(4, "big") + b"STORAGE\x00" + u + vv + (384).to_bytes(4, "big"))
        expected += mac.finalize()
    assert kdfa(ALG_SHA256, key, b"STORAGE", u, vv, 384) == expected[:48]


def test_our_credential_is_activated_by_the_real_tpm(software_tpm: SoftwareTpm) -> None:
    """Made from the EK certificate's key alone (no TPM), activated by swtpm; for another name it is not."""
    from cryptography import x509

    with Tpm(software_tpm.tcti) as tpm:
        ek_key = x509.load_der_x509_certificate(tpm.ek_certificate()).public_key()
        ak_blob = tpm.create(AK_ATTRIBUTES)
        ak = tpm.load(ak_blob)
        secret = os.urandom(32)
        made = make_credential(EndorsementKey.from_certificate_key(ek_key), parse_public(ak_blob.public).name, secret)
        assert tpm.activate_credential(ak, made.credential_blob, made.secret) == secret
        other = make_credential(EndorsementKey.from_certificate_key(ek_key),
                                parse_public(tpm.create(AGENT_KEY_ATTRIBUTES).public).name, secret)
        with pytest.raises(Exception, match="integrity|refused"):
            tpm.activate_credential(ak, other.credential_blob, other.secret)


# --- G1: the EK chain ---------------------------------------------------------------------------------------


def _chain(v: dict[str, Any]) -> tuple[bytes, list[bytes], PinnedRoot]:
    return (base64.b64decode(v["ek_certificate"]), [base64.b64decode(c) for c in v["ek_chain"]],
            PinnedRoot("e" * 64, base64.b64decode(v["root"])))


@contextmanager
def refused_at_g1(match: str | None = None) -> Iterator[None]:
    with pytest.raises(EnrolmentRefused, match=match) as caught:
        yield
    assert caught.value.gate is Gate.G1 and caught.value.code == "enrolment-ek-chain-untrusted"


def test_the_ek_certificate_chains_to_the_pinned_local_ca(v: dict[str, Any]) -> None:
    ek, intermediates, root = _chain(v)
    chained = walk(ek, intermediates, [root], datetime.now(UTC))
    assert chained.root == root
    ek_public = parse_public(bytes.fromhex(v["ek_public"])).public_key
    assert chained.certificate.public_key().public_numbers() == ek_public.public_numbers()  # type: ignore[union-attr]


def test_an_ek_chain_to_an_unpinned_root_is_refused(v: dict[str, Any]) -> None:
    ek, intermediates, _ = _chain(v)
    with refused_at_g1("not issued by"):  # a root of the same name, with another key
        walk(ek, intermediates, [PinnedRoot("f" * 64, _other_root())], datetime.now(UTC))
    with refused_at_g1("not a root pinned"):  # the intermediate's root is not pinned
        walk(ek, intermediates, [PinnedRoot("f" * 64, _other_root("another root"))], datetime.now(UTC))
    with refused_at_g1("no TPM endorsement root"):
        walk(ek, intermediates, [], datetime.now(UTC))


def test_an_ek_chain_missing_its_intermediate_is_refused(v: dict[str, Any]) -> None:
    ek, _, root = _chain(v)
    with refused_at_g1():
        walk(ek, [], [root], datetime.now(UTC))


def test_an_ek_certificate_outside_its_validity_is_refused(v: dict[str, Any]) -> None:
    ek, intermediates, root = _chain(v)
    with refused_at_g1("valid from"):
        walk(ek, intermediates, [root], datetime.now(UTC) - timedelta(days=3650))


def test_an_ek_certificate_with_a_changed_signature_is_refused(v: dict[str, Any]) -> None:
    ek, intermediates, root = _chain(v)
    with refused_at_g1("not issued by"):
        walk(_flip(ek, len(ek) - 3), intermediates, [root], datetime.now(UTC))


def _other_root(common_name: str = "swtpm-localca-rootca") -> bytes:
    """A self-signed CA certificate with the local CA's intermediate's issuer name, but another key."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(1).not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    return certificate.public_bytes(serialization.Encoding.DER)
