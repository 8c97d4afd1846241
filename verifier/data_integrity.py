"""W3C Data Integrity proofs with the eddsa-jcs-2022 cryptosuite, created and verified offline.

Written from *Data Integrity EdDSA Cryptosuites v1.0* (W3C Recommendation, 15 May 2025) §3.3 and
*Verifiable Credential Data Integrity 1.0* §2.1 (proofs) and §4 (algorithms):

- transformation (§3.3.3): the unsecured document (the document without ``proof``) as RFC 8785 canonical JSON;
- proof configuration (§3.3.5): the proof options (``type`` DataIntegrityProof, ``cryptosuite`` eddsa-jcs-2022,
  ``created``, ``verificationMethod``, ``proofPurpose`` and, when the document has one, its ``@context``,
  as §3.3.1 step 2 asks) as RFC 8785 canonical JSON;
- hashing (§3.3.4): ``SHA-256(canonical proof configuration) || SHA-256(canonical document)``;
- serialization (§3.3.6): the Ed25519 (pure EdDSA, RFC 8032) signature of those 64 bytes, carried in
  ``proofValue`` as multibase base58btc (``z`` prefix).

Only a single proof is understood. eddsa-rdfc-2022 and Ed25519Signature2020 need RDF Dataset
Canonicalization of the JSON-LD document (and a JSON-LD processor with its contexts); they are refused with
``UnsupportedCryptosuite``, never half-checked. Proof sets and chains (a list under ``proof``) are refused too.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from schemas.datetimes import check_date_time_stamp
from schemas.errors import (
    MalformedKey,
    ProofInvalid,
    ProofOptionsInvalid,
    ProofSignatureInvalid,
    SignerUnresolvable,
    UnsupportedCryptosuite,
    shown,
)
from schemas.identity_statements import canonical_json
from verifier.did_key import MULTIBASE_BASE58BTC, b58decode, b58encode, resolve_did_key

PROOF_TYPE: Final = "DataIntegrityProof"
CRYPTOSUITE: Final = "eddsa-jcs-2022"
ED25519_SIGNATURE_SIZE: Final = 64
CONTEXT: Final = "@context"

# Cryptosuites and legacy proof types whose transformation is RDF Dataset Canonicalization (RDFC-1.0).
_NEEDS_RDF_CANONICALIZATION: Final = frozenset(
    {"eddsa-rdfc-2022", "ecdsa-rdfc-2019", "Ed25519Signature2020", "Ed25519Signature2018"}
)
_REQUIRED_PROOF_FIELDS: Final = ("type", "cryptosuite", "verificationMethod", "proofPurpose", "proofValue")

KeyResolver = Callable[[str], Ed25519PublicKey]
"""Maps a proof's ``verificationMethod`` to the Ed25519 key it names, raising when it cannot."""


@dataclass(frozen=True)
class VerifiedProof:
    """What a verified eddsa-jcs-2022 proof establishes.

    ``document`` is the verified document of §3.3.2: the secured document without its ``proof``, with the
    ``@context`` the proof signed, decoded (on first use) from ``canonical_document``, the exact bytes the proof
    signed: a value of its own, which nothing the caller does to the secured document changes. ``created`` and
    ``expires`` are the proof's own dateTimeStamps (checked for form, not against a clock: whether they are
    acceptable now is the caller's policy).
    """

    verification_method: str
    public_key: Ed25519PublicKey
    proof_purpose: str
    created: str | None
    expires: str | None
    canonical_document: bytes

    @functools.cached_property
    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.canonical_document)
        return document


def canonicalize(value: Any) -> bytes:
    """RFC 8785 JSON Canonicalization Scheme bytes of a JSON value (refused: floats out of range, huge ints), through
    Python's C encoder where that writes JCS (``schemas.identity_statements.canonical_json``)."""
    try:
        return canonical_json(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise ProofOptionsInvalid(f"the value cannot be RFC 8785 canonical JSON: {exc}") from exc


def transform(unsecured_document: Mapping[str, Any]) -> bytes:
    """§3.3.3 Transformation: the canonical JSON of the document without its proof."""
    if not _is_mapping(unsecured_document):
        raise ProofOptionsInvalid("a Data Integrity document must be a JSON object")
    if "proof" in unsecured_document:
        raise ProofOptionsInvalid("the document to transform still carries a proof")
    return canonicalize(unsecured_document)


def proof_configuration(options: Mapping[str, Any]) -> bytes:
    """§3.3.5 Proof Configuration: the canonical JSON of the proof options (without ``proofValue``)."""
    if not _is_mapping(options):
        raise ProofOptionsInvalid("proof options must be a JSON object")
    if options.get("type") != PROOF_TYPE or options.get("cryptosuite") != CRYPTOSUITE:
        raise ProofOptionsInvalid(
            f"proof options must have type {PROOF_TYPE} and cryptosuite {CRYPTOSUITE}; "
            f"got {shown(options.get('type'))} and {shown(options.get('cryptosuite'))}"
        )
    if "proofValue" in options:
        raise ProofOptionsInvalid("proof options must not carry a proofValue")
    if "created" in options:
        check_date_time_stamp(options["created"], "proof created", ProofOptionsInvalid)
    return canonicalize(options)


def hash_data(canonical_proof_config: bytes, canonical_document: bytes) -> bytes:
    """§3.3.4 Hashing: SHA-256 of the proof configuration, then SHA-256 of the document (64 bytes)."""
    return hashlib.sha256(canonical_proof_config).digest() + hashlib.sha256(canonical_document).digest()


def create_proof(
    document: Mapping[str, Any],
    private_key: Ed25519PrivateKey,
    verification_method: str,
    created: str,
    proof_purpose: str = "assertionMethod",
) -> dict[str, Any]:
    """§3.3.1 Create Proof: a copy of ``document`` with an eddsa-jcs-2022 ``proof`` added.

    ``verification_method`` names ``private_key``'s public key (for a did:key signer, ``did:key:z…#z…``);
    ``created`` is an XML Schema dateTimeStamp such as ``2023-02-24T23:36:38Z``.
    """
    if not isinstance(document, Mapping):
        raise ProofOptionsInvalid("the document to secure must be a JSON object")
    if "proof" in document:
        raise ProofOptionsInvalid("the document already has a proof; proof sets and chains are not supported")
    if not isinstance(private_key, Ed25519PrivateKey):
        raise ProofOptionsInvalid(f"eddsa-jcs-2022 signs with an Ed25519 key, not {type(private_key).__name__}")
    for name, value in (("verificationMethod", verification_method), ("proofPurpose", proof_purpose)):
        if not isinstance(value, str) or not value:
            raise ProofOptionsInvalid(f"proof {name} must be a non-empty string")
    check_date_time_stamp(created, "proof created", ProofOptionsInvalid)
    unsecured = copy.deepcopy(dict(document))
    proof: dict[str, Any] = {
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "created": created,
        "verificationMethod": verification_method,
        "proofPurpose": proof_purpose,
    }
    if CONTEXT in unsecured:  # §3.3.1 step 2: the proof carries the document's @context
        proof[CONTEXT] = copy.deepcopy(unsecured[CONTEXT])
    data = hash_data(proof_configuration(proof), transform(unsecured))
    proof["proofValue"] = MULTIBASE_BASE58BTC + b58encode(private_key.sign(data))
    return {**unsecured, "proof": proof}


def verify_proof(
    secured: Mapping[str, Any],
    resolve_key: KeyResolver | None = None,
    expected_purpose: str = "assertionMethod",
) -> VerifiedProof:
    """§3.3.2 Verify Proof (with the checks of Data Integrity §4.2): raise unless the proof binds the document.

    ``resolve_key`` maps the proof's verificationMethod to its Ed25519 key; by default only did:key
    verification methods resolve (offline, ``verifier.did_key``). Raises ``UnsupportedCryptosuite`` for any
    other proof type or cryptosuite, ``ProofSignatureInvalid`` when the signature does not verify, and
    ``ProofInvalid`` naming the defect for anything else (missing fields, purpose, @context, proofValue).
    """
    if not _is_mapping(secured):
        raise ProofInvalid("a secured document must be a JSON object")
    proof = secured.get("proof")
    if proof is None:
        raise ProofInvalid("the document has no proof")
    if isinstance(proof, list):
        raise ProofInvalid(
            f"the document carries a proof set of {len(proof)} proofs; only a single proof is supported"
        )
    if not _is_mapping(proof):
        raise ProofInvalid("proof must be a JSON object")
    _refuse_rdf_canonicalization(proof)
    for name in _REQUIRED_PROOF_FIELDS:
        if not isinstance(proof.get(name), str) or not proof[name]:
            raise ProofInvalid(f"proof {name} is missing or not a non-empty string")
    if proof["type"] != PROOF_TYPE:
        raise UnsupportedCryptosuite(f"proof type {shown(proof['type'])} is not supported; only {PROOF_TYPE} is")
    if proof["cryptosuite"] != CRYPTOSUITE:
        raise UnsupportedCryptosuite(
            f"cryptosuite {shown(proof['cryptosuite'])} is not supported; only {CRYPTOSUITE} is"
        )
    if proof["proofPurpose"] != expected_purpose:
        raise ProofInvalid(
            f"proof purpose is {shown(proof['proofPurpose'])}; expected {shown(expected_purpose)}"
        )
    for name in ("created", "expires"):
        if name in proof:
            check_date_time_stamp(proof[name], f"proof {name}", ProofInvalid)
    signature = _decode_proof_value(proof["proofValue"])

    # new top-level objects, their members shared with ``secured`` (read, never changed: the document returned is
    # decoded from the canonical bytes)
    unsecured = {k: v for k, v in secured.items() if k != "proof"}
    options = {k: v for k, v in proof.items() if k != "proofValue"}
    if CONTEXT in options:
        unsecured[CONTEXT] = _signed_context(secured.get(CONTEXT), options[CONTEXT])
    try:
        configuration = proof_configuration(options)
        document = transform(unsecured)
        data = hash_data(configuration, document)
    except ProofOptionsInvalid as exc:
        raise ProofInvalid(exc.detail) from exc

    method = proof["verificationMethod"]
    key = (resolve_key or _resolve_did_key)(method)
    if not isinstance(key, Ed25519PublicKey):
        raise ProofInvalid(f"verification method {method[:120]} is not an Ed25519 key; eddsa-jcs-2022 needs one")
    try:
        key.verify(signature, data)
    except InvalidSignature:
        raise ProofSignatureInvalid(
            f"the eddsa-jcs-2022 signature by {method[:120]} does not verify over the document and proof options"
        ) from None
    return VerifiedProof(
        verification_method=method,
        public_key=key,
        proof_purpose=proof["proofPurpose"],
        created=proof.get("created"),
        expires=proof.get("expires"),
        canonical_document=document,
    )


def _refuse_rdf_canonicalization(proof: Mapping[str, Any]) -> None:
    for name in (proof.get("type"), proof.get("cryptosuite")):
        if isinstance(name, str) and name in _NEEDS_RDF_CANONICALIZATION:
            raise UnsupportedCryptosuite(
                f"{name} is not supported: it signs the RDF Dataset Canonicalization (RDFC-1.0) of the JSON-LD "
                f"document, which Tabellion does not implement; only {PROOF_TYPE} with {CRYPTOSUITE} is"
            )


def _decode_proof_value(value: str) -> bytes:
    if not value.startswith(MULTIBASE_BASE58BTC):
        raise ProofInvalid(f"proofValue multibase prefix {value[0]!r} is not 'z' (base58btc)")
    try:
        signature = b58decode(value[1:])
    except MalformedKey as exc:
        raise ProofInvalid(f"proofValue is not base58btc: {exc.detail}") from exc
    if len(signature) != ED25519_SIGNATURE_SIZE:
        raise ProofInvalid(f"proofValue decodes to {len(signature)} bytes; an Ed25519 signature is 64")
    return signature


def _signed_context(document_context: Any, proof_context: Any) -> Any:
    """§3.3.2 step 4: the document's @context must start with the proof's, in order; the proof's is signed."""
    signed = _as_list(proof_context, "proof @context")
    present = [] if document_context is None else _as_list(document_context, "document @context")
    if present[: len(signed)] != signed:
        raise ProofInvalid("the document's @context does not start with the @context values the proof signed")
    return proof_context


def _as_list(context: Any, what: str) -> list[Any]:
    if isinstance(context, list):
        return context
    if isinstance(context, str | Mapping):
        return [context]
    raise ProofInvalid(f"{what} must be a string, an object or a list")


def _resolve_did_key(method: str) -> Ed25519PublicKey:
    try:
        key = resolve_did_key(method)
    except (SignerUnresolvable, MalformedKey) as exc:
        raise ProofInvalid(f"verification method does not resolve offline: {exc.detail}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ProofInvalid(f"verification method {method[:120]} is a P-256 key; eddsa-jcs-2022 needs Ed25519")
    return key


def _is_mapping(value: Any) -> bool:
    """``isinstance(value, Mapping)``, with a ``dict`` (what JSON decodes to) answered without the ABC's check."""
    return type(value) is dict or isinstance(value, Mapping)


