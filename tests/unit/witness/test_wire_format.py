"""C2SP tlog-witness bodies and tlog-cosignature lines: the specifications' own examples, round trips, and
every malformed body refused."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from schemas.checkpoint import parse_checkpoint
from schemas.errors import MalformedWitnessRequest
from schemas.note import key_id, parse_note, parse_vkey
from schemas.witness import (
    MAX_PROOF_LINES,
    AddCheckpoint,
    encode_cosignatures,
    encode_size,
    origin_hash,
    parse_add_checkpoint,
    parse_cosignatures,
    parse_size,
)
from tests.vectors import vectors_dir
from verifier.notes import TIMESTAMP_SIZE, cosignature_message
from witness.cosigner import Cosigner

EXAMPLES: dict[str, Any] = json.loads((vectors_dir() / "c2sp-witness" / "c2sp_examples.json").read_text())


def test_add_checkpoint_example_parses() -> None:
    example = EXAMPLES["add_checkpoint_request_example"]
    request = parse_add_checkpoint(example["body"].encode())
    assert request.old_size == example["old_size"]
    assert [base64.b64encode(h).decode() for h in request.proof] == example["proof"]
    note = parse_note(request.checkpoint)
    assert len(note.signatures) == example["checkpoint_signature_lines"]
    checkpoint = parse_checkpoint(note.text)
    assert (checkpoint.origin, checkpoint.size) == (example["checkpoint_origin"], example["checkpoint_size"])
    assert base64.b64encode(checkpoint.root_hash).decode() == example["checkpoint_root"]
    assert request.encode() == example["body"].encode()  # our encoder writes the example byte for byte


def test_add_checkpoint_response_example_parses() -> None:
    example = EXAMPLES["add_checkpoint_response_example"]
    lines = parse_cosignatures(example["body"].encode())
    assert [s.name for s in lines] == example["names"]
    assert [s.key_id.hex() for s in lines] == example["key_ids_hex"]
    assert {len(s.signature) for s in lines} == {example["signature_bytes"]}
    assert encode_cosignatures(lines) == example["body"]


def test_cosigned_checkpoint_example() -> None:
    example = EXAMPLES["cosigned_checkpoint_example"]
    note = parse_note(example["note"])
    assert note.text == example["body"]
    log_line, witness_line = note.signatures
    assert (log_line.name, log_line.key_id.hex(), len(log_line.signature)) == (
        example["log"]["name"], example["log"]["key_id_hex"], example["log"]["signature_bytes"])
    cosig = example["cosignature"]
    assert (witness_line.name, witness_line.key_id.hex(), len(witness_line.signature)) == (
        cosig["name"], cosig["key_id_hex"], cosig["signature_bytes"])
    timestamp = int.from_bytes(witness_line.signature[:TIMESTAMP_SIZE], "big")
    assert timestamp == cosig["timestamp"]
    # the signed message of the specification is the one built from this cosignature's own timestamp
    assert cosignature_message(note.text, timestamp) == example["signed_message_example"].encode()


def test_conflict_body() -> None:
    assert encode_size(20852014) == b"20852014\n"
    assert parse_size(b"0\n") == 0
    assert parse_size(encode_size(2**64 - 1)) == 2**64 - 1
    for bad in (b"", b"12", b"012\n", b"-1\n", b"1 \n", b"18446744073709551616\n", b"\xff\n"):
        with pytest.raises(MalformedWitnessRequest):
            parse_size(bad)


def test_origin_hash() -> None:
    # lowercase hex SHA-256 of the origin line, as the monitoring path of tlog-witness names it
    assert origin_hash("example.com/behind-the-sofa") == hashlib.sha256(b"example.com/behind-the-sofa").hexdigest()
    assert origin_hash("caf\u00e9.example/log") == hashlib.sha256("caf\u00e9.example/log".encode()).hexdigest()
    assert origin_hash("x") == origin_hash("x").lower()


CHECKPOINT = EXAMPLES["cosigned_checkpoint_example"]["note"]
HASH = base64.b64encode(bytes(32)).decode()


@pytest.mark.parametrize(
    ("what", "body"),
    [
        ("no old line", f"\n{CHECKPOINT}"),
        ("old with leading zero", f"old 01\n\n{CHECKPOINT}"),
        ("old negative", f"old -1\n\n{CHECKPOINT}"),
        ("old with two spaces", f"old  1\n\n{CHECKPOINT}"),
        ("OLD in capitals", f"OLD 1\n\n{CHECKPOINT}"),
        ("old above 2^64-1", f"old 18446744073709551616\n\n{CHECKPOINT}"),
        ("no empty line", f"old 0\n{CHECKPOINT.replace(chr(10) + chr(10), chr(10))}"),
        ("no checkpoint", "old 0\n\n"),
        ("proof line not base64", f"old 3\nnot!base64\n\n{CHECKPOINT}"),
        ("proof line of 31 bytes", f"old 3\n{base64.b64encode(bytes(31)).decode()}\n\n{CHECKPOINT}"),
        ("64 proof lines", "old 3\n" + (HASH + "\n") * (MAX_PROOF_LINES + 1) + "\n" + CHECKPOINT),
        ("CRLF line ends", f"old 0\r\n\r\n{CHECKPOINT}"),
    ],
)
def test_malformed_requests_refused(what: str, body: str) -> None:
    with pytest.raises(MalformedWitnessRequest):
        parse_add_checkpoint(body.encode())


def test_not_utf8_refused() -> None:
    with pytest.raises(MalformedWitnessRequest):
        parse_add_checkpoint(b"old 0\n\n\xff" + CHECKPOINT.encode())


def test_63_proof_lines_accepted() -> None:
    body = "old 3\n" + (HASH + "\n") * MAX_PROOF_LINES + "\n" + CHECKPOINT
    assert len(parse_add_checkpoint(body.encode()).proof) == MAX_PROOF_LINES


@pytest.mark.parametrize("body", [b"", b"\n", b"- w AAAAAAAA\n", "\u2014 w AAAAAAAA".encode(), b"\xff\n"])
def test_malformed_cosignature_answers_refused(body: bytes) -> None:
    with pytest.raises(MalformedWitnessRequest):
        parse_cosignatures(body)


@given(
    old=st.integers(0, 2**64 - 1),
    proof=st.lists(st.binary(min_size=32, max_size=32), max_size=MAX_PROOF_LINES),
)
def test_request_round_trip(old: int, proof: list[bytes]) -> None:
    request = AddCheckpoint(old, tuple(proof), CHECKPOINT)
    assert parse_add_checkpoint(request.encode()) == request


def test_cosigner_vkey_matches_the_key_id_rule() -> None:
    """tlog-cosignature: key id = SHA-256(name || "\\n" || 0x04 || public key)[:4], vkey type 0x04."""
    cosigner = Cosigner("witness.example/w1", Ed25519PrivateKey.generate())
    vkey = parse_vkey(cosigner.vkey.encode())
    assert vkey.sig_type == 0x04
    assert vkey.key_id == key_id("witness.example/w1", 0x04, vkey.public_key)
    assert vkey.key_id == hashlib.sha256(b"witness.example/w1\n\x04" + vkey.public_key).digest()[:4]
