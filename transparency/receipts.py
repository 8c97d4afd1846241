"""Receipts (RFC 9942, vds = RFC9162_SHA256) and checkpoints, signed by the log key once per tree head.

Every receipt of one tree size has the same protected header and covers the same root, so the
signature is computed once per batch and shared; each receipt differs only in its inclusion proof.
"""

from __future__ import annotations

from schemas import cbor
from schemas import cose_labels as L
from schemas.checkpoint import Checkpoint
from schemas.cose_sign1 import sig_structure
from schemas.note import Note, NoteSignature
from schemas.proofs import InclusionProof
from schemas.receipt import receipt_protected_header
from transparency.keys import LogKey


def sign_tree_head(key: LogKey, origin: str, root: bytes, issued_at: int) -> tuple[bytes, bytes]:
    """The receipt protected header and the one signature over ``root`` shared by that head's receipts."""
    protected = cbor.encode(receipt_protected_header(L.ALG_EDDSA, key.kid, origin, issued_at))
    return protected, key.sign(sig_structure(protected, root))


_RECEIPT_START = bytes((0xC0 | L.COSE_SIGN1_TAG, 0x84))  # tag 18, an array of four
_INCLUSION_PROOFS = b"".join((cbor.head(0xA0, 1), cbor.head(0x00, L.VDP), cbor.head(0xA0, 1),
                              cbor.head(0x20, -1 - L.VDP_INCLUSION), cbor.head(0x80, 1)))  # {396: {-1: [ one proof
_NIL = b"\xf6"  # the detached payload


def assemble_receipt(protected: bytes, signature: bytes, proof: InclusionProof) -> bytes:
    """``tag18([protected, {396: {-1: [proof]}}, nil, signature])``, deterministically encoded; written out by
    hand (the sequencer assembles one per new entry), equal to ``cbor.encode`` of that structure
    (``tests/property/test_hand_written_cbor.py``)."""
    encoded = proof.encode()
    return b"".join((_RECEIPT_START, cbor.bstr_head(len(protected)), protected, _INCLUSION_PROOFS,
                     cbor.bstr_head(len(encoded)), encoded, _NIL, cbor.bstr_head(len(signature)), signature))


def sign_checkpoint(key: LogKey, checkpoint: Checkpoint) -> str:
    """The checkpoint as a C2SP signed note by the log key (key name = origin)."""
    body = checkpoint.body()
    vkey = key.note_key(checkpoint.origin)
    return Note(body, (NoteSignature(vkey.name, vkey.key_id, key.sign(body.encode())),)).encode()
