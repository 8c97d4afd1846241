"""eddsa-jcs-2022 Data Integrity proofs (verifier.data_integrity) against the w3c/vc-di-eddsa test vectors.

Every intermediate of ``TestVectors/eddsa-jcs-2022`` is reproduced from keyPair.json, unsigned.json and
proofConfigJCS.json; tampered copies of signedJCS.json are refused, each with its own error; the RDFC folders
(eddsa-rdfc-2022, Ed25519Signature2020, proof-set-chain) are refused as unsupported.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from schemas.errors import (
    ProofInvalid,
    ProofOptionsInvalid,
    ProofSignatureInvalid,
    UnsupportedCryptosuite,
)
from tests.signing import new_ed25519, new_p256
from tests.vectors import vectors_dir
from verifier.data_integrity import (
    VerifiedProof,
    canonicalize,
    create_proof,
    hash_data,
    proof_configuration,
    transform,
    verify_proof,
)
from verifier.did_key import b58decode, b58encode, did_key_from_public, read_varint, verification_method

CODEC_ED25519_PRIV = 0x1300  # multicodec ed25519-priv, as in the vectors' privateKeyMultibase


def tv() -> Path:
    return vectors_dir() / "vc-di-eddsa" / "TestVectors"


def jcs_dir() -> Path:
    return tv() / "eddsa-jcs-2022"


def load(path: Path) -> Any:
    return json.loads(path.read_text("utf-8"))


def text(name: str) -> str:
    return (jcs_dir() / name).read_text("utf-8")


def private_key_from_multibase(mb: str) -> Ed25519PrivateKey:
    raw = b58decode(mb.removeprefix("z"))
    codec, n = read_varint(raw)
    assert codec == CODEC_ED25519_PRIV and len(raw) - n == 32
    return Ed25519PrivateKey.from_private_bytes(raw[n:])


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    pair = load(tv() / "keyPair.json")
    sk = private_key_from_multibase(pair["privateKeyMultibase"])
    assert did_key_from_public(sk.public_key()) == "did:key:" + pair["publicKeyMultibase"]
    return sk


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    cfg: dict[str, Any] = load(jcs_dir() / "proofConfigJCS.json")
    return cfg


@pytest.fixture(scope="module")
def unsigned() -> dict[str, Any]:
    doc: dict[str, Any] = load(tv() / "unsigned.json")
    return doc


@pytest.fixture
def signed() -> dict[str, Any]:
    doc: dict[str, Any] = load(jcs_dir() / "signedJCS.json")
    return doc


# --- every intermediate, byte for byte ---------------------------------------------------------------


def test_canonical_document(unsigned: dict[str, Any]) -> None:
    assert transform(unsigned) == text("canonDocJCS.txt").encode()


def test_canonical_proof_config(config: dict[str, Any]) -> None:
    assert proof_configuration(config) == text("proofCanonJCS.txt").encode()


def test_hashes(unsigned: dict[str, Any], config: dict[str, Any]) -> None:
    proof_hash = hashlib.sha256(proof_configuration(config)).hexdigest()
    doc_hash = hashlib.sha256(transform(unsigned)).hexdigest()
    assert proof_hash == text("proofHashJCS.txt")
    assert doc_hash == text("docHashJCS.txt")
    combined = hash_data(proof_configuration(config), transform(unsigned))
    assert combined.hex() == text("combinedHashJCS.txt") == proof_hash + doc_hash


def test_signature_hex_and_base58(key: Ed25519PrivateKey, unsigned: dict[str, Any], config: dict[str, Any]) -> None:
    signature = key.sign(hash_data(proof_configuration(config), transform(unsigned)))
    assert signature.hex() == text("sigHexJCS.txt")
    assert "z" + b58encode(signature) == text("sigBTC58JCS.txt")


def test_create_proof_gives_the_signed_document(
    key: Ed25519PrivateKey, unsigned: dict[str, Any], config: dict[str, Any]
) -> None:
    secured = create_proof(unsigned, key, config["verificationMethod"], config["created"], config["proofPurpose"])
    proof_options = {k: v for k, v in secured["proof"].items() if k != "proofValue"}
    assert proof_options == config  # the proof config of the vector, @context copied from the document
    assert secured["proof"]["proofValue"] == text("sigBTC58JCS.txt")
    # The file itself, byte for byte: same members in the same order.
    assert json.dumps(secured, indent=2) == (jcs_dir() / "signedJCS.json").read_text("utf-8")
    assert "proof" not in unsigned  # the input is not modified


def test_verify_signed_vector(signed: dict[str, Any], unsigned: dict[str, Any]) -> None:
    result = verify_proof(signed)
    assert isinstance(result, VerifiedProof)
    assert result.verification_method == signed["proof"]["verificationMethod"]
    assert result.proof_purpose == "assertionMethod"
    assert result.created == "2023-02-24T23:36:38Z" and result.expires is None
    assert result.document == unsigned
    assert did_key_from_public(result.public_key) + "#" + result.verification_method.split("#")[1] == (
        result.verification_method
    )


def test_verify_with_a_custom_resolver(signed: dict[str, Any], key: Ed25519PrivateKey) -> None:
    seen: list[str] = []

    def resolve(method: str) -> Ed25519PublicKey:
        seen.append(method)
        return key.public_key()

    verify_proof(signed, resolve_key=resolve)
    assert seen == [signed["proof"]["verificationMethod"]]
    with pytest.raises(ProofSignatureInvalid):
        verify_proof(signed, resolve_key=lambda _m: new_ed25519().public_key())


def test_round_trip_with_a_fresh_did_key() -> None:
    sk = new_ed25519()
    vm = verification_method(did_key_from_public(sk.public_key()))
    doc = {"@context": ["https://www.w3.org/ns/credentials/v2"], "type": ["VerifiableCredential"],
           "credentialSubject": {"id": "did:example:agent", "tier": "sandboxed", "n": 3}}
    secured = create_proof(doc, sk, vm, "2026-01-02T03:04:05.123Z", "authentication")
    assert verify_proof(secured, expected_purpose="authentication").document == doc
    no_context = create_proof({"a": 1}, sk, vm, "2026-01-02T03:04:05+01:00")
    assert "@context" not in no_context["proof"]
    verify_proof(no_context)


def test_extra_contexts_after_the_signed_ones_are_accepted(signed: dict[str, Any]) -> None:
    signed["@context"] = [*signed["@context"], "https://example.org/extra/v1"]
    result = verify_proof(signed)
    assert result.document["@context"] == signed["proof"]["@context"]


# --- tampered copies of signedJCS.json, each refused with its own error ------------------------------


def test_changed_credential_subject(signed: dict[str, Any]) -> None:
    signed["credentialSubject"]["alumniOf"] = "The School of Forgeries"
    with pytest.raises(ProofSignatureInvalid):
        verify_proof(signed)


def test_changed_proof_created(signed: dict[str, Any]) -> None:
    signed["proof"]["created"] = "2023-02-24T23:36:39Z"
    with pytest.raises(ProofSignatureInvalid):
        verify_proof(signed)


@pytest.mark.parametrize("bit", [0, 7, 255, 511])
def test_flipped_signature_bit(signed: dict[str, Any], bit: int) -> None:
    sig = bytearray(b58decode(signed["proof"]["proofValue"][1:]))
    sig[bit // 8] ^= 1 << (bit % 8)
    signed["proof"]["proofValue"] = "z" + b58encode(bytes(sig))
    with pytest.raises(ProofSignatureInvalid):
        verify_proof(signed)


def test_wrong_cryptosuite(signed: dict[str, Any]) -> None:
    signed["proof"]["cryptosuite"] = "ecdsa-jcs-2019"
    with pytest.raises(UnsupportedCryptosuite, match="ecdsa-jcs-2019"):
        verify_proof(signed)
    signed["proof"]["cryptosuite"] = "eddsa-jcs-2022"
    signed["proof"]["type"] = "DataIntegritySignature"
    with pytest.raises(UnsupportedCryptosuite, match="DataIntegritySignature"):
        verify_proof(signed)


def test_wrong_verification_method_key(signed: dict[str, Any]) -> None:
    other = verification_method(did_key_from_public(new_ed25519().public_key()))
    signed["proof"]["verificationMethod"] = other
    with pytest.raises(ProofSignatureInvalid, match="does not verify"):
        verify_proof(signed)


def test_verification_method_that_is_not_ed25519_or_not_a_did_key(signed: dict[str, Any]) -> None:
    signed["proof"]["verificationMethod"] = verification_method(did_key_from_public(new_p256().public_key()))
    with pytest.raises(ProofInvalid, match="P-256"):
        verify_proof(signed)
    signed["proof"]["verificationMethod"] = "did:web:example.com#key-1"
    with pytest.raises(ProofInvalid, match="does not resolve offline"):
        verify_proof(signed)


def test_purpose_mismatch(signed: dict[str, Any]) -> None:
    with pytest.raises(ProofInvalid, match="expected 'authentication'"):
        verify_proof(signed, expected_purpose="authentication")


@pytest.mark.parametrize("field", ["type", "cryptosuite", "verificationMethod", "proofPurpose", "proofValue"])
def test_missing_field(signed: dict[str, Any], field: str) -> None:
    del signed["proof"][field]
    with pytest.raises(ProofInvalid, match=f"proof {field} is missing") as info:
        verify_proof(signed)
    assert type(info.value) is ProofInvalid


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("u" + "A" * 86, "prefix 'u' is not 'z'"),
        ("z0OIl", "not base58btc"),
        ("z" + b58encode(b"\x01" * 63), "63 bytes"),
    ],
)
def test_unparseable_proof_value(signed: dict[str, Any], value: str, reason: str) -> None:
    signed["proof"]["proofValue"] = value
    with pytest.raises(ProofInvalid, match=reason):
        verify_proof(signed)


def test_context_not_signed(signed: dict[str, Any]) -> None:
    signed["@context"] = ["https://www.w3.org/ns/credentials/v2"]
    with pytest.raises(ProofInvalid, match="@context"):
        verify_proof(signed)


@pytest.mark.parametrize("created", ["2023-02-24", "2023-02-24T23:36:38", "2023-02-30T00:00:00Z", 1677281798])
def test_bad_created(signed: dict[str, Any], created: Any) -> None:
    signed["proof"]["created"] = created
    with pytest.raises(ProofInvalid, match="created"):
        verify_proof(signed)


def test_no_proof_or_not_an_object(signed: dict[str, Any]) -> None:
    del signed["proof"]
    with pytest.raises(ProofInvalid, match="no proof"):
        verify_proof(signed)
    with pytest.raises(ProofInvalid, match="JSON object"):
        verify_proof(["not", "a", "document"])  # type: ignore[arg-type]


# --- creation refuses what cannot make a proof -------------------------------------------------------


def test_create_refusals(key: Ed25519PrivateKey, signed: dict[str, Any], unsigned: dict[str, Any]) -> None:
    vm = signed["proof"]["verificationMethod"]
    with pytest.raises(ProofOptionsInvalid, match="already has a proof"):
        create_proof(signed, key, vm, "2023-02-24T23:36:38Z")
    with pytest.raises(ProofOptionsInvalid, match="dateTimeStamp"):
        create_proof(unsigned, key, vm, "yesterday")
    with pytest.raises(ProofOptionsInvalid, match="verificationMethod"):
        create_proof(unsigned, key, "", "2023-02-24T23:36:38Z")
    with pytest.raises(ProofOptionsInvalid, match="canonical JSON"):
        create_proof({"n": 2**60}, key, vm, "2023-02-24T23:36:38Z")
    with pytest.raises(ProofOptionsInvalid, match="canonical JSON"):
        canonicalize({"x": float("nan")})


# --- RDF canonicalization suites: refused as unsupported, never half-checked -------------------------


@pytest.mark.parametrize(
    "path",
    [
        "eddsa-rdfc-2022/signedDataInt.json",
        "eddsa-rdfc-2022/employ/signedDataInt.json",
        "Ed25519Signature2020/signedEdSig.json",
        "proof-set-chain/signedProofSet1.json",
    ],
)
def test_rdfc_vectors_are_unsupported(path: str) -> None:
    with pytest.raises(UnsupportedCryptosuite, match="RDF Dataset Canonicalization"):
        verify_proof(load(tv() / path))


@pytest.mark.parametrize(
    "name", ["signedProofSet2.json", "signedProofChain1.json", "signedProofChain2.json"]
)
def test_proof_sets_and_chains_are_refused(name: str) -> None:
    with pytest.raises(ProofInvalid, match="proof set"):
        verify_proof(load(tv() / "proof-set-chain" / name))


def test_rdfc_proof_with_our_cryptosuite_name_swapped_in_does_not_verify() -> None:
    doc = copy.deepcopy(load(tv() / "eddsa-rdfc-2022" / "signedDataInt.json"))
    doc["proof"]["cryptosuite"] = "eddsa-jcs-2022"
    with pytest.raises(ProofSignatureInvalid):
        verify_proof(doc)
