"""Receipts and leaves byte for byte: other valid encodings of a receipt verify exactly as the log's own
(the shortest-form readers only take the log's encoding; everything else goes to the strict decoder),
malformed ones are refused whichever reader sees them, and the leaf of every cose-wg COSE_Sign1 vector is
the one the cbor2-encoded definition gives (known answers computed with ``cbor2.dumps(canonical=True)``).
"""

from __future__ import annotations

import dataclasses
import json
from hashlib import sha256

import pytest

from schemas import cbor
from schemas import cose_labels as L
from schemas.cose_sign1 import decode_sign1
from schemas.errors import InclusionProofInvalid, MalformedCbor, MalformedReceipt, NotCoseSign1
from schemas.leaf import leaf_data, logged_statement, statement_leaf_data
from schemas.proofs import InclusionProof
from schemas.receipt import _log_receipt, _read_receipt_strictly, parse_receipt, read_receipt
from tests.unit.verifier.hand_made_receipts import Log
from tests.vectors import vectors_dir
from verifier.receipts import verify_receipt

# --- known answers for the leaf ------------------------------------------------------------------------

LEAF_DATA = {
    "ecdsa-examples/ecdsa-sig-01.json": "73090d323b8f7545039d691b0f253074abc0f62c0cf82645d1605108e594784e",
    "ecdsa-examples/ecdsa-sig-02.json": "5689cffc0d8b5ec4a737fce6ee1f185d59354f5cc744b94a2895e5381792b258",
    "ecdsa-examples/ecdsa-sig-03.json": "2d5a0fc912fbb5334fdec5faaf5e50feb698888e37451c215c032744180d46c0",
    "ecdsa-examples/ecdsa-sig-04.json": "b7eee93d32b5e95ba5d4f48087d049c6bc008d3a37b78ac27ec3d93caa80ed40",
    "eddsa-examples/eddsa-sig-01.json": "60373f26427d1a4135b97f7f3566aaf0608e41c336bdd05503979ad221c3a4d3",
    "eddsa-examples/eddsa-sig-02.json": "d46100b72c2aad2815bc49b39b78c8e13d10d6890e6232dff43e62862b7afd78",
    "sign1-tests/sign-fail-02.json": "dd3751e8bc318502ef3c48a4224ed4ee5e460d91f3b9f10a84854c2164d0f099",
    "sign1-tests/sign-fail-03.json": "b21f6a3c0568ff610b7d5d719bbca881c79ba70f4efec65e336b9fed41b2675a",
    "sign1-tests/sign-fail-04.json": "393d8f3acc9393446fabfb76d38958f2b4bb3e6cbea520bb2ae95d7974eb433a",
    "sign1-tests/sign-fail-06.json": "7dea1145f9dbfcb8a3a0df4612ec7a70b9da85b98adc763ab470e6e7a737bf75",
    "sign1-tests/sign-fail-07.json": "9ebe856296ed89187657faf74d0a15f3160036912bf21d166be97a5cbb634bb4",
    "sign1-tests/sign-pass-01.json": "f4738f9c4063920159cd2f752f8bf3e9c719d530714801bf19850c1f78c5374f",
    "sign1-tests/sign-pass-02.json": "c257ef0376470fb18cfdae548fcee44fe0d43884d1dbcd4dec16da8eb0acc981",
    "sign1-tests/sign-pass-03.json": "2663797029c010c1a825fed92e2e74c73710765e0188bb592591f50a975e3990",
}
DETACHED_EDDSA_SIG_01 = "e4986f6c84f65224fa843d8964439acd0cc54b1b5a95ebe82cef623501ee7f40"


def _vector(name: str) -> bytes:
    text = (vectors_dir() / "cose-wg" / name).read_text()
    return bytes.fromhex(json.loads(text)["output"]["cbor"])


@pytest.mark.parametrize("name", sorted(LEAF_DATA))
def test_leaf_of_every_cose_wg_sign1_vector(name: str) -> None:
    assert leaf_data(decode_sign1(_vector(name), require_tag=False)).hex() == LEAF_DATA[name]


def test_leaf_of_a_detached_payload() -> None:
    message = dataclasses.replace(decode_sign1(_vector("eddsa-examples/eddsa-sig-01.json")), payload=None)
    assert leaf_data(message).hex() == DETACHED_EDDSA_SIG_01


# --- receipts in encodings other than the log's ----------------------------------------------------------


def _head(major: int, value: int, width: int) -> bytes:
    info = {1: 24, 2: 25, 4: 26, 8: 27}[width]
    return bytes((major | info,)) + value.to_bytes(width, "big")


def _bstr(content: bytes, width: int = 2) -> bytes:
    return _head(0x40, len(content), width) + content


@pytest.fixture(scope="module")
def log() -> Log:
    return Log.of(11)


def _parts(log: Log, index: int) -> tuple[bytes, bytes, bytes]:
    """The protected header, proof and signature of the log's receipt for leaf ``index``."""
    item = cbor.decode(log.receipt(index)).value
    return item[0], item[1][L.VDP][L.VDP_INCLUSION][0], item[3]


def _other_encodings(log: Log, index: int) -> dict[str, bytes]:
    protected, proof, signature = _parts(log, index)
    size, leaf, path = cbor.decode(proof)
    vdp_head = b"\xa1\x19\x01\x8c\xa1\x20"
    wide_proof = (b"\x83" + _head(0x00, size, 8) + _head(0x00, leaf, 4) + _head(0x80, len(path), 1)
                  + b"".join(_bstr(node, 1 if n % 2 else 4) for n, node in enumerate(path)))
    return {
        "indefinite outer array": b"\xd2\x9f" + cbor.encode(protected) + cbor.encode(
            {L.VDP: {L.VDP_INCLUSION: [proof]}}) + b"\xf6" + cbor.encode(signature) + b"\xff",
        "wide byte-string heads": b"\xd2\x84" + _bstr(protected) + vdp_head + b"\x81" + _bstr(proof, 4)
        + b"\xf6" + _bstr(signature, 8),
        "another unprotected label": cbor.encode(cbor.tag(18, [protected, {
            L.VDP: {L.VDP_INCLUSION: [proof]}, 99: ["x", {1: b"\xff"}]}, None, signature])),
        "two inclusion proofs": cbor.encode(cbor.tag(18, [protected, {
            L.VDP: {L.VDP_INCLUSION: [proof, proof]}}, None, signature])),
        "indefinite proof list": b"\xd2\x84" + cbor.encode(protected) + vdp_head + b"\x9f" + cbor.encode(proof)
        + b"\xff\xf6" + cbor.encode(signature),
        "proof with wide heads": cbor.encode(cbor.tag(18, [protected, {
            L.VDP: {L.VDP_INCLUSION: [wide_proof]}}, None, signature])),
        "proof as an indefinite array": cbor.encode(cbor.tag(18, [protected, {L.VDP: {L.VDP_INCLUSION: [
            b"\x9f" + cbor.encode(size) + cbor.encode(leaf) + cbor.encode(path) + b"\xff"]}}, None, signature])),
    }


def test_the_logs_own_receipt_takes_the_log_layout_reader(log: Log) -> None:
    receipt = log.receipt(5)
    assert _log_receipt(receipt) is not None
    assert read_receipt(receipt) == _read_receipt_strictly(receipt)


def test_the_logs_own_statement_is_its_own_logged_form(log: Log) -> None:
    statement = log.statements[5]
    assert logged_statement(decode_sign1(statement)) == statement  # so its leaf is the hash of the bytes
    assert statement_leaf_data(statement) == leaf_data(decode_sign1(statement)) == sha256(statement).digest()


@pytest.mark.parametrize("index", [0, 5, 10])
def test_other_encodings_verify_as_the_logs_own(log: Log, index: int) -> None:
    expected = verify_receipt(log.receipt(index), log.statements[index], log.keys)
    for name, receipt in _other_encodings(log, index).items():
        assert _log_receipt(receipt) is None or read_receipt(receipt) == _read_receipt_strictly(receipt), name
        assert verify_receipt(receipt, log.statements[index], log.keys) == expected, name


# --- malformed receipts and statements, whichever reader sees them -------------------------------------------


def _malformed(log: Log, index: int) -> dict[str, tuple[bytes, type[Exception], str]]:
    protected, proof, signature = _parts(log, index)
    receipt = log.receipt(index)
    size, leaf, path = cbor.decode(proof)

    def with_protected(h: bytes) -> bytes:
        return cbor.encode(cbor.tag(18, [h, {L.VDP: {L.VDP_INCLUSION: [proof]}}, None, signature]))

    def with_proof(p: bytes) -> bytes:
        return cbor.encode(cbor.tag(18, [protected, {L.VDP: {L.VDP_INCLUSION: [p]}}, None, signature]))

    short_hash = InclusionProof(size, leaf, (*path[:-1], path[-1][:31])).encode()
    return {
        # what is not one well-formed CBOR item is refused by the strict decoder as such
        "a trailing byte": (receipt + b"\x00", MalformedCbor, "trailing"),
        "a trailing break": (receipt + b"\xff", MalformedCbor, "trailing"),
        "one byte short": (receipt[:-1], MalformedCbor, "well-formed"),
        "a stray break in another label": (
            receipt[:2] + cbor.encode(protected) + b"\xa2\x18\x63\x81\xff" + receipt[2 + len(cbor.encode(protected))
                                                                                      + 1:],
            MalformedCbor, "stray break"),
        "a trailing byte in the proof": (with_proof(proof + b"\x00"), MalformedReceipt, "trailing"),
        "a stray break in the proof path": (
            with_proof(proof[:-34] + b"\xff"), MalformedReceipt, "stray break"),
        "a 31-byte hash": (with_proof(short_hash), MalformedReceipt, "32-byte hash"),
        "a proof one hash short": (
            with_proof(InclusionProof(size, leaf, path[:-1]).encode()), InclusionProofInvalid, "hashes, not"),
        "a text-string proof": (
            cbor.encode(cbor.tag(18, [protected, {L.VDP: {L.VDP_INCLUSION: ["x"]}}, None, signature])),
            MalformedReceipt, "byte string"),
        "an attached payload": (
            cbor.encode(cbor.tag(18, [protected, {L.VDP: {L.VDP_INCLUSION: [proof]}}, b"", signature])),
            MalformedReceipt, "detached"),
        "a protected header that is not a map": (
            cbor.encode(cbor.tag(18, [cbor.encode([1]), {L.VDP: {L.VDP_INCLUSION: [proof]}}, None, signature])),
            MalformedReceipt, "does not encode a map"),
        "a repeated label": (  # RFC 9052 §3: each label once per header map; cbor2 would keep the last
            b"\xd2\x84" + cbor.encode(protected) + b"\xa2" + 2 * (cbor.encode(L.VDP) + cbor.encode(
                {L.VDP_INCLUSION: [proof]})) + b"\xf6" + cbor.encode(signature),
            MalformedCbor, "repeats a key"),
        "a repeated label in the protected header": (
            with_protected(b"\xa5\x01\x26" + protected[1:]), MalformedCbor, "repeats a key"),
        "a protected header with trailing bytes": (
            cbor.encode(cbor.tag(18, [protected + b"\x00", {L.VDP: {L.VDP_INCLUSION: [proof]}}, None, signature])),
            MalformedReceipt, "trailing"),
    }


@pytest.mark.parametrize("case", [
    "a trailing byte", "a trailing break", "one byte short", "a stray break in another label",
    "a trailing byte in the proof", "a stray break in the proof path", "a 31-byte hash",
    "a proof one hash short", "a text-string proof", "an attached payload",
    "a protected header that is not a map", "a protected header with trailing bytes", "a repeated label",
    "a repeated label in the protected header",
])
def test_malformed_receipts_are_refused(log: Log, case: str) -> None:
    receipt, error, message = _malformed(log, 3)[case]
    with pytest.raises(error, match=message):
        verify_receipt(receipt, log.statements[3], log.keys)
    if error is not InclusionProofInvalid:  # the rest is refused while parsing
        with pytest.raises(error, match=message):
            parse_receipt(receipt)


def test_the_stray_break_case_really_holds_a_lone_break(log: Log) -> None:
    receipt, _, _ = _malformed(log, 3)["a stray break in another label"]
    with pytest.raises(MalformedCbor, match="stray break"):
        cbor.decode(receipt)


@pytest.mark.parametrize(("suffix", "error"), [(b"\x00", MalformedCbor), (b"\xff", MalformedCbor)])
def test_a_statement_with_trailing_bytes_is_refused(log: Log, suffix: bytes, error: type[Exception]) -> None:
    with pytest.raises(error, match="trailing"):
        verify_receipt(log.receipt(2), log.statements[2] + suffix, log.keys)


def test_a_statement_with_a_stray_break_is_refused(log: Log) -> None:
    message = decode_sign1(log.statements[2])
    bad = cbor.encode(cbor.tag(18, [message.protected_bytes, {7: [1]}, message.payload, message.signature]))
    bad = bad.replace(b"\xa1\x07\x81\x01", b"\xa1\x07\x81\xff")
    with pytest.raises(MalformedCbor, match="stray break"):
        verify_receipt(log.receipt(2), bad, log.keys)
    with pytest.raises(NotCoseSign1):
        verify_receipt(log.receipt(2), cbor.encode(cbor.tag(18, [message.protected_bytes, {}, 1, b""])), log.keys)
