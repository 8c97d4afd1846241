"""Receipts built by hand (RFC 9942, vds RFC9162_SHA256) over a tiny in-test Merkle tree, verified by
verifier.receipts, and cross-checked with pycose as an independent COSE implementation."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pycose.keys.curves import Ed25519
from pycose.keys.okp import OKPKey
from pycose.messages.sign1message import Sign1Message

from schemas import cbor
from schemas import cose_labels as L
from schemas.cose_sign1 import decode_sign1
from schemas.errors import (
    InclusionProofInvalid,
    KeyUnknown,
    MalformedReceipt,
    ReceiptSignatureInvalid,
    SignatureInvalid,
    UnsupportedAlgorithm,
)
from schemas.proofs import ConsistencyProof, InclusionProof
from schemas.receipt import transparent_statement
from tests.signing import new_ed25519, new_p256
from tests.unit.verifier.hand_made_receipts import IAT, ISSUER, Log, make_receipt
from verifier.keys import KeySet, thumbprint
from verifier.receipts import VerifiedReceipt, verify_receipt, verify_transparent_statement
from verifier.statements import DidKeyResolver

# --- accepted ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", range(1, 10))
def test_every_leaf_of_small_trees_verifies(size: int) -> None:
    log = Log.of(size)
    for index in range(size):
        verified = verify_receipt(log.receipt(index), log.statements[index], log.keys)
        kid = thumbprint(log.key.public_key())
        assert verified == VerifiedReceipt(size, index, log.root, ISSUER, IAT, kid)


def test_statement_may_be_given_decoded_and_with_an_unprotected_header() -> None:
    log = Log.of(5)
    msg = decode_sign1(log.statements[3])
    with_extra = msg.encode(unprotected={L.RECEIPTS: [b"whatever"], 99: "x"})
    verify_receipt(log.receipt(3), msg, log.keys)
    verify_receipt(log.receipt(3), with_extra, log.keys)


def test_es256_receipt_verifies() -> None:
    log = Log.of(6, key=new_p256())
    assert verify_receipt(log.receipt(4), log.statements[4], log.keys).leaf_index == 4


def test_retired_keys_in_the_key_set_still_verify() -> None:
    old = Log.of(3)
    keys = KeySet.from_keys([new_ed25519().public_key(), old.key.public_key()])
    verify_receipt(old.receipt(1), old.statements[1], keys)


def test_pycose_verifies_the_hand_built_receipt() -> None:
    log = Log.of(7)
    receipt = log.receipt(2)
    decoded = decode_sign1(receipt, "receipt")  # pycose's own decoder reads arrays as lists only (not cbor2 6's)
    msg = Sign1Message(phdr_encoded=decoded.protected_bytes, payload=None)
    msg.signature = decoded.signature
    raw = log.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    msg.key = OKPKey(crv=Ed25519, x=raw)
    assert msg.payload is None
    assert msg.verify_signature(detached_payload=log.root)
    assert not msg.verify_signature(detached_payload=hashlib.sha256(b"another root").digest())


# --- refused -------------------------------------------------------------------------------------------


def test_receipt_over_a_wrong_root_is_refused() -> None:
    log = Log.of(6)
    wrong = make_receipt(log.key, hashlib.sha256(b"not the root").digest(), log.proof(2))
    with pytest.raises(ReceiptSignatureInvalid) as caught:
        verify_receipt(wrong, log.statements[2], log.keys)
    assert isinstance(caught.value.__cause__, SignatureInvalid)


def test_receipt_for_another_statement_is_refused() -> None:
    log = Log.of(6)
    with pytest.raises(ReceiptSignatureInvalid):
        verify_receipt(log.receipt(2), log.statements[3], log.keys)


def test_wrong_index_in_range_is_refused() -> None:
    log = Log.of(6)
    proof = log.proof(2)
    for index in (0, 1, 3):  # same path length: the recomputed root differs, so the signature fails
        moved = make_receipt(log.key, log.root, InclusionProof(proof.tree_size, index, proof.path))
        with pytest.raises(ReceiptSignatureInvalid):
            verify_receipt(moved, log.statements[2], log.keys)


@pytest.mark.parametrize(("size", "index"), [(6, 6), (6, 100), (0, 0)])
def test_index_outside_the_tree_is_refused(size: int, index: int) -> None:
    log = Log.of(6)
    proof = InclusionProof(size, index, log.proof(2).path)
    with pytest.raises(InclusionProofInvalid):
        verify_receipt(make_receipt(log.key, log.root, proof), log.statements[2], log.keys)


def test_wrong_path_is_refused() -> None:
    log = Log.of(6)
    proof = log.proof(2)
    flipped = (bytes([proof.path[0][0] ^ 1]) + proof.path[0][1:], *proof.path[1:])
    with pytest.raises(ReceiptSignatureInvalid):
        verify_receipt(make_receipt(log.key, log.root, InclusionProof(6, 2, flipped)), log.statements[2],
                       log.keys)
    for bad_path in (proof.path[:-1], (*proof.path, proof.path[0])):
        with pytest.raises(InclusionProofInvalid):
            verify_receipt(make_receipt(log.key, log.root, InclusionProof(6, 2, bad_path)), log.statements[2],
                           log.keys)


def test_unknown_kid_is_refused() -> None:
    log = Log.of(3)
    with pytest.raises(KeyUnknown):
        verify_receipt(log.receipt(0, kid=b"\x01" * 32), log.statements[0], log.keys)
    with pytest.raises(KeyUnknown):
        verify_receipt(log.receipt(0), log.statements[0], KeySet.from_keys([new_ed25519().public_key()]))


def test_signature_by_another_key_under_the_right_kid_is_refused() -> None:
    log = Log.of(3)
    impostor = make_receipt(new_ed25519(), log.root, log.proof(1), kid=thumbprint(log.key.public_key()))
    with pytest.raises(ReceiptSignatureInvalid):
        verify_receipt(impostor, log.statements[1], log.keys)


def test_corrupted_signature_is_refused() -> None:
    log = Log.of(3)
    item = cbor.decode(log.receipt(1)).value
    for bad in (item[3][:-1], bytes([item[3][0] ^ 1]) + item[3][1:], b""):
        forged = cbor.encode(cbor.tag(18, [item[0], item[1], None, bad]))
        with pytest.raises(ReceiptSignatureInvalid):
            verify_receipt(forged, log.statements[1], log.keys)


def test_alg_that_does_not_fit_the_key_is_refused() -> None:
    log = Log.of(3)
    with pytest.raises(UnsupportedAlgorithm):
        verify_receipt(log.receipt(1, alg=L.ALG_ES256), log.statements[1], log.keys)


def test_consistency_only_receipt_proves_no_inclusion() -> None:
    log = Log.of(3)
    consistency = ConsistencyProof(2, 3, (b"\x00" * 32,)).encode()
    receipt = log.receipt(0, vdp={L.VDP_CONSISTENCY: [consistency]})
    with pytest.raises(MalformedReceipt, match="no inclusion proof"):
        verify_receipt(receipt, log.statements[0], log.keys)


def test_attached_payload_is_refused() -> None:
    log = Log.of(3)
    item = cbor.decode(log.receipt(1)).value
    attached = cbor.encode(cbor.tag(18, [item[0], item[1], log.root, item[3]]))
    with pytest.raises(MalformedReceipt, match="detached"):
        verify_receipt(attached, log.statements[1], log.keys)


# --- transparent statements ----------------------------------------------------------------------------


def test_transparent_statement_with_two_receipts_verifies() -> None:
    log_a, log_b = Log.of(4), Log.of(1)
    statement = log_a.statements[2]
    log_b.statements = [statement]  # the same statement, logged alone in a second log
    keys = KeySet.from_keys([log_a.key.public_key(), log_b.key.public_key()])
    data = transparent_statement(decode_sign1(statement), [log_a.receipt(2), log_b.receipt(0)])
    for resolver in (None, DidKeyResolver()):
        verified = verify_transparent_statement(data, keys, resolver)
        assert [(v.tree_size, v.leaf_index) for v in verified] == [(4, 2), (1, 0)]


def test_every_receipt_of_a_transparent_statement_must_verify() -> None:
    log = Log.of(4)
    data = transparent_statement(decode_sign1(log.statements[2]), [log.receipt(2), log.receipt(1)])
    with pytest.raises(ReceiptSignatureInvalid):
        verify_transparent_statement(data, log.keys, None)


def test_transparent_statement_without_receipts_is_refused() -> None:
    log = Log.of(2)
    with pytest.raises(MalformedReceipt):
        verify_transparent_statement(log.statements[0], log.keys, None)
    empty = transparent_statement(decode_sign1(log.statements[0]), [])
    with pytest.raises(MalformedReceipt, match="empty"):
        verify_transparent_statement(empty, log.keys, None)


def test_statement_signature_is_checked_when_a_resolver_is_given() -> None:
    log = Log.of(2)
    msg = decode_sign1(log.statements[1])
    # A log may hold a statement whose signature is bad; with a resolver the statement itself is refused.
    bad = type(msg)(msg.protected_bytes, msg.protected, {}, msg.payload, bytes(64))
    log.statements[1] = bad.encode()
    data = transparent_statement(bad, [log.receipt(1)])
    assert verify_transparent_statement(data, log.keys, None)[0].leaf_index == 1
    with pytest.raises(SignatureInvalid):
        verify_transparent_statement(data, log.keys, DidKeyResolver())
