"""Signed checkpoints (C2SP tlog-checkpoint over signed-note) and their consistency, checked offline.

A checkpoint is trusted only after the log's Ed25519 signature on its note verifies; its text is
parsed only after that (signed-note: the text MUST be ignored until then). The log signs with a key
whose name is the checkpoint's origin line, so a signature by the log key over another origin is
refused as well.
"""

from __future__ import annotations

from collections.abc import Sequence

from schemas.checkpoint import Checkpoint, parse_checkpoint
from schemas.errors import (
    CheckpointInconsistent,
    CheckpointSignatureInvalid,
    ConsistencyProofInvalid,
    MalformedKey,
    NoteSignatureInvalid,
)
from schemas.note import SIG_TYPE_ED25519, VerifierKey
from verifier.merkle import EMPTY_ROOT, verify_consistency
from verifier.notes import verify_note


def verify_checkpoint(message: str | bytes, log_key: VerifierKey, origin: str | None = None) -> Checkpoint:
    """Verify a signed checkpoint note with the log's key and return the checkpoint.

    The note must carry a valid Ed25519 signature by ``log_key`` (other signatures, e.g. witness
    cosignatures, are ignored here: see ``verifier.notes.verify_cosignature``). The checkpoint's origin
    must be ``log_key.name`` and, when given, ``origin``. Raises ``MalformedNote`` or
    ``MalformedCheckpoint`` for bad syntax and ``CheckpointSignatureInvalid`` otherwise.
    """
    if log_key.sig_type != SIG_TYPE_ED25519:
        raise MalformedKey(f"the log key {log_key.name!r} is not an Ed25519 (type 0x01) signed-note key")
    try:
        note = verify_note(message, [log_key])
    except NoteSignatureInvalid as exc:
        raise CheckpointSignatureInvalid(exc.detail) from exc
    checkpoint = parse_checkpoint(note.text)
    if checkpoint.origin != log_key.name:
        raise CheckpointSignatureInvalid(
            f"the checkpoint for origin {checkpoint.origin[:100]!r} is signed by the key of {log_key.name!r}"
        )
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointSignatureInvalid(
            f"the checkpoint is for origin {checkpoint.origin[:100]!r}, not {origin!r}"
        )
    return checkpoint


def verify_checkpoint_consistency(old: Checkpoint, new: Checkpoint, path: Sequence[bytes]) -> None:
    """Check that ``new`` extends ``old`` (same log, append-only), with an RFC 9162 consistency proof.

    Both checkpoints must already be verified. Equal sizes need equal roots and an empty proof. The
    empty tree is a prefix of every tree: from an ``old`` of size 0 (whose root must be the empty-tree
    hash) any ``new`` is consistent with an empty proof. Raises ``CheckpointInconsistent``.
    """
    if old.origin != new.origin:
        raise CheckpointInconsistent(f"the checkpoints are of two logs: {old.origin!r} and {new.origin!r}")
    if new.size < old.size:
        raise CheckpointInconsistent(f"the log shrank from {old.size} to {new.size} leaves")
    if old.size == 0 and new.size > 0:
        if old.root_hash != EMPTY_ROOT:
            raise CheckpointInconsistent("the checkpoint of an empty log does not carry the empty-tree hash")
        if path:
            raise CheckpointInconsistent("a consistency proof from an empty log must be empty")
        return
    try:
        verify_consistency(old.size, new.size, old.root_hash, new.root_hash, path)
    except ConsistencyProofInvalid as exc:
        raise CheckpointInconsistent(
            f"the checkpoint of {new.size} leaves does not extend the one of {old.size}: {exc.detail}"
        ) from exc
