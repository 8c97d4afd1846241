"""C2SP signed notes and tlog-cosignature/v1 (tests/vectors/signed-note, c2sp-tiles).

Every vector is accepted with byte-exact key ids and signatures; each is then mutated in every way a
forger or a broken log could (signature bits, text, name, key id, wrong key) and must be refused.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from schemas.errors import MalformedKey, MalformedNote, NoteSignatureInvalid, UnsupportedAlgorithm
from schemas.note import (
    SIG_TYPE_COSIGNATURE_V1,
    SIG_TYPE_ED25519,
    Note,
    NoteSignature,
    VerifierKey,
    ed25519_vkey,
    key_id,
    parse_note,
    parse_vkey,
)
from tests.vectors import vectors_dir
from verifier.notes import cosignature_message, verify_cosignature, verify_note

VECTORS: list[dict[str, Any]] = json.loads(
    (vectors_dir() / "signed-note" / "signed_note_vectors.json").read_text()
)
TILES: dict[str, Any] = json.loads((vectors_dir() / "c2sp-tiles" / "tlog_tiles_examples.json").read_text())
IDS = [v["source"] for v in VECTORS]


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _with_signatures(text: str, *signatures: NoteSignature) -> str:
    return Note(text, signatures).encode()


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# --- the vectors, accepted byte for byte --------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_vector_key_id_is_byte_exact(vector: dict[str, Any]) -> None:
    vkey = parse_vkey(vector["vkey"])
    assert vkey.key_id == bytes.fromhex(vector["key_id_hex"])
    assert vkey.sig_type == vector["signature_type"] == SIG_TYPE_ED25519
    assert key_id(vkey.name, vkey.sig_type, vkey.public_key) == vkey.key_id
    assert ed25519_vkey(vkey.name, vkey.public_key) == vkey
    assert vkey.encode() == vector["vkey"]


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_vector_accepted(vector: dict[str, Any]) -> None:
    vkey = parse_vkey(vector["vkey"])
    for message in (vector["signed_note"], vector["signed_note"].encode()):
        note = verify_note(message, [vkey])
        assert note.text == vector["text"]
        assert note.encode() == vector["signed_note"]
        assert [(s.name, s.key_id) for s in note.signatures] == [(vkey.name, vkey.key_id)]


@pytest.mark.parametrize("vector", [v for v in VECTORS if "skey" in v], ids=lambda v: v["source"])
def test_vector_signature_reproduced_from_its_private_key(vector: dict[str, Any]) -> None:
    # PRIVATE+KEY+<name>+<hex id>+<base64(type || 32-byte Ed25519 seed)>; Ed25519 is deterministic.
    _, _, name, hex_id, blob = vector["skey"].split("+", 4)
    raw = base64.b64decode(blob)
    assert raw[0] == SIG_TYPE_ED25519
    private = Ed25519PrivateKey.from_private_bytes(raw[1:])
    vkey = parse_vkey(vector["vkey"])
    assert (name, bytes.fromhex(hex_id), _raw(private)) == (vkey.name, vkey.key_id, vkey.public_key)
    signature = private.sign(vector["text"].encode())
    signed = _with_signatures(vector["text"], NoteSignature(name, vkey.key_id, signature))
    assert signed == vector["signed_note"]


# --- the vectors, mutated: every one refused ----------------------------------------------------------


def _mutations(vector: dict[str, Any]) -> list[tuple[str, str, list[VerifierKey]]]:
    vkey = parse_vkey(vector["vkey"])
    note = parse_note(vector["signed_note"])
    (sig,) = note.signatures
    others = [parse_vkey(v["vkey"]) for v in VECTORS if v["vkey"] != vector["vkey"]]
    stranger = ed25519_vkey(vkey.name, _raw(Ed25519PrivateKey.generate()))
    cases: list[tuple[str, str, list[VerifierKey]]] = []
    for bit in (0, 7, 100, 255, 256, 511):
        flipped = replace(sig, signature=_flip(sig.signature, bit))
        cases.append((f"signature bit {bit}", _with_signatures(note.text, flipped), [vkey]))
    text = note.text
    cases += [
        ("text changed", _with_signatures(text.replace(text[0], chr(ord(text[0]) ^ 1), 1), sig), [vkey]),
        ("text extended", _with_signatures(text + "more\n", sig), [vkey]),
        ("text doubled", _with_signatures(text + text, sig), [vkey]),
        ("blank line added", _with_signatures(text + "\n", sig), [vkey]),
        ("signature truncated", _with_signatures(text, replace(sig, signature=sig.signature[:63])), [vkey]),
        ("signature extended", _with_signatures(text, replace(sig, signature=sig.signature + b"\0")), [vkey]),
        ("other name", _with_signatures(text, replace(sig, name=sig.name + "x")), [vkey]),
        ("other key id", _with_signatures(text, replace(sig, key_id=_flip(sig.key_id, 3))), [vkey]),
        ("no trusted key", vector["signed_note"], others),
        ("no keys at all", vector["signed_note"], []),
        ("same name, other key", vector["signed_note"], [stranger]),
        (
            "a second, bad signature by the known key",
            _with_signatures(text, sig, replace(sig, signature=_flip(sig.signature, 9))),
            [vkey],
        ),
    ]
    return cases


MUTATIONS = [(v["source"], *case) for v in VECTORS for case in _mutations(v)]


@pytest.mark.parametrize(
    ("source", "what", "message", "keys"), MUTATIONS, ids=[f"{m[0]}: {m[1]}" for m in MUTATIONS]
)
def test_mutated_vector_refused(source: str, what: str, message: str, keys: list[VerifierKey]) -> None:
    with pytest.raises(NoteSignatureInvalid):
        verify_note(message, keys)


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_unknown_signatures_are_ignored(vector: dict[str, Any]) -> None:
    vkey = parse_vkey(vector["vkey"])
    note = parse_note(vector["signed_note"])
    unknown = NoteSignature("someone.example/else", b"\x01\x02\x03\x04", bytes(64))
    same_name_other_id = NoteSignature(vkey.name, _flip(vkey.key_id, 0), bytes(64))
    same_id_other_name = NoteSignature("other.example", vkey.key_id, bytes(64))
    message = _with_signatures(note.text, unknown, same_name_other_id, *note.signatures, same_id_other_name)
    assert verify_note(message, [vkey]).text == vector["text"]
    # Several trusted keys: the one that signed is enough.
    others = [parse_vkey(v["vkey"]) for v in VECTORS if v is not vector]
    assert verify_note(vector["signed_note"], [*others, vkey]).text == vector["text"]


@pytest.mark.parametrize(
    "message",
    [
        "no blank line\n\u2014 k AAAA\n",
        "text\n\n",
        "text\n\n\u2014 k AAAAAAAA",
        "text\n\n- k AAAAAAAA\n",
        "text\n\n\u2014 k not!base64\n",
        "text\n\n\u2014 k AAAA\n",
        "te\x00xt\n\n\u2014 k AAAAAAAA\n",
        b"\xfftext\n\n\xe2\x80\x94 k AAAAAAAA\n",
    ],
)
def test_malformed_notes_refused(message: str | bytes) -> None:
    vkey = parse_vkey(VECTORS[0]["vkey"])
    with pytest.raises(MalformedNote):
        verify_note(message, [vkey])


def test_bad_trusted_keys_refused() -> None:
    vkey = parse_vkey(VECTORS[0]["vkey"])
    message = VECTORS[0]["signed_note"]
    with pytest.raises(UnsupportedAlgorithm):
        verify_note(message, [replace(vkey, sig_type=0x02)])
    with pytest.raises(MalformedKey):
        verify_note(message, [vkey, replace(vkey, public_key=bytes(32))])
    with pytest.raises(MalformedKey):
        verify_note(message, [replace(vkey, public_key=vkey.public_key[:31])])


# --- tlog-cosignature/v1 ----------------------------------------------------------------------------


def test_cosignature_message_matches_the_spec_example() -> None:
    body = TILES["checkpoint_example_body"]
    assert cosignature_message(body, 1679315147) == TILES["cosignature_v1_signed_message_example"].encode()


def _cosigner(name: str = "witness.example.com/w1") -> tuple[Ed25519PrivateKey, VerifierKey]:
    private = Ed25519PrivateKey.generate()
    public = _raw(private)
    kid = key_id(name, SIG_TYPE_COSIGNATURE_V1, public)
    return private, VerifierKey(name, kid, SIG_TYPE_COSIGNATURE_V1, public)


def _cosign(private: Ed25519PrivateKey, vkey: VerifierKey, text: str, timestamp: int) -> NoteSignature:
    blob = timestamp.to_bytes(8, "big") + private.sign(cosignature_message(text, timestamp))
    return NoteSignature(vkey.name, vkey.key_id, blob)


def test_cosignature_verifies_and_returns_its_time() -> None:
    log_private = Ed25519PrivateKey.generate()
    body = TILES["checkpoint_example_body"]
    log_key = ed25519_vkey("example.com/behind-the-sofa", _raw(log_private))
    log_sig = NoteSignature(log_key.name, log_key.key_id, log_private.sign(body.encode()))
    w_private, w_key = _cosigner()
    message = _with_signatures(body, log_sig, _cosign(w_private, w_key, body, 1679315147))

    note = verify_note(message, [log_key])
    assert verify_cosignature(note, w_key) == 1679315147
    # A cosigner key is a known key for verify_note too, and the log key alone is enough.
    assert verify_note(message, [w_key]).text == body
    assert verify_note(message, [log_key, w_key]).text == body
    # Two cosignatures by the same witness: both verified, the latest time returned.
    later = _with_signatures(
        body, log_sig, _cosign(w_private, w_key, body, 5), _cosign(w_private, w_key, body, 1700000000)
    )
    assert verify_cosignature(parse_note(later), w_key) == 1700000000


def test_cosignature_refusals() -> None:
    body = TILES["checkpoint_example_body"]
    w_private, w_key = _cosigner()
    good = _cosign(w_private, w_key, body, 1679315147)
    ts, sig = good.signature[:8], good.signature[8:]

    def refused(*signatures: NoteSignature, text: str = body, key: VerifierKey = w_key) -> None:
        with pytest.raises(NoteSignatureInvalid):
            verify_cosignature(Note(text, signatures), key)
        if key.sig_type == SIG_TYPE_COSIGNATURE_V1:
            with pytest.raises(NoteSignatureInvalid):
                verify_note(Note(text, signatures).encode(), [key])

    refused(replace(good, signature=(1679315148).to_bytes(8, "big") + sig))  # time changed
    refused(replace(good, signature=ts + _flip(sig, 17)))
    refused(replace(good, signature=sig))  # no timestamp
    refused(replace(good, signature=good.signature + b"\0"))
    refused(replace(good, signature=((1 << 63) | 1679315147).to_bytes(8, "big") + sig))
    refused(good, text=body.replace("20852163", "20852164"))
    refused(replace(good, key_id=_flip(good.key_id, 1)))  # not by this witness
    refused(good, replace(good, signature=ts + bytes(64)))  # a second, bad line by the same witness
    _, other_key = _cosigner()
    refused(good, key=other_key)
    # A plain Ed25519 signature (type 0x01) by the same key is not a cosignature.
    plain = NoteSignature(w_key.name, w_key.key_id, w_private.sign(body.encode()))
    refused(plain)
    with pytest.raises(MalformedKey):
        verify_cosignature(Note(body, (good,)), ed25519_vkey(w_key.name, w_key.public_key))
