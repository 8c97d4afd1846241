"""Signed checkpoints: a fresh Ed25519 log key signs, the verifier accepts exactly what it signed."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from schemas.checkpoint import Checkpoint
from schemas.errors import (
    CheckpointInconsistent,
    CheckpointSignatureInvalid,
    MalformedCheckpoint,
    MalformedKey,
    MalformedNote,
    NoteSignatureInvalid,
)
from schemas.leaf import leaf_hash
from schemas.note import SIG_TYPE_COSIGNATURE_V1, Note, NoteSignature, VerifierKey, ed25519_vkey, key_id
from tests.merkle_reference import consistency_proof, mth
from verifier.checkpoints import verify_checkpoint, verify_checkpoint_consistency
from verifier.merkle import EMPTY_ROOT

ORIGIN = "tabellion.example/log"
LEAVES = [leaf_hash(hashlib.sha256(str(i).encode()).digest()) for i in range(20)]


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


class Log:
    def __init__(self, origin: str = ORIGIN) -> None:
        self.private = Ed25519PrivateKey.generate()
        self.key = ed25519_vkey(origin, _raw(self.private))

    def sign_text(self, text: str, name: str | None = None) -> str:
        sig = NoteSignature(name or self.key.name, self.key.key_id, self.private.sign(text.encode()))
        return Note(text, (sig,)).encode()

    def checkpoint(self, size: int, origin: str | None = None) -> tuple[Checkpoint, str]:
        cp = Checkpoint(origin or self.key.name, size, mth(LEAVES[:size]))
        return cp, self.sign_text(cp.body())


@pytest.fixture
def log() -> Log:
    return Log()


def test_signed_checkpoint_verifies(log: Log) -> None:
    for size in (0, 1, 7, 20):
        cp, message = log.checkpoint(size)
        assert verify_checkpoint(message, log.key) == cp
        assert verify_checkpoint(message.encode(), log.key, origin=ORIGIN) == cp


def test_extension_lines_and_other_signatures_kept(log: Log) -> None:
    cp = Checkpoint(ORIGIN, 3, mth(LEAVES[:3]), ("ext one", "ext two"))
    witness = Ed25519PrivateKey.generate()
    w_pub = _raw(witness)
    w_key = VerifierKey("w.example", key_id("w.example", SIG_TYPE_COSIGNATURE_V1, w_pub), 4, w_pub)
    note = Note(
        cp.body(),
        (
            NoteSignature(log.key.name, log.key.key_id, log.private.sign(cp.body().encode())),
            NoteSignature(w_key.name, w_key.key_id, bytes(72)),  # not checked here: not the log key
        ),
    )
    assert verify_checkpoint(note.encode(), log.key) == cp


def test_wrong_key_refused(log: Log) -> None:
    _, message = log.checkpoint(5)
    other = Log()
    with pytest.raises(CheckpointSignatureInvalid):
        verify_checkpoint(message, other.key)
    # Same name, other key material (and so another key id): no known signature.
    with pytest.raises(CheckpointSignatureInvalid):
        verify_checkpoint(message, ed25519_vkey(ORIGIN, _raw(Ed25519PrivateKey.generate())))


def test_checkpoint_errors_are_note_errors(log: Log) -> None:
    _, message = log.checkpoint(5)
    with pytest.raises(NoteSignatureInvalid):
        verify_checkpoint(message, Log().key)


def test_wrong_origin_refused(log: Log) -> None:
    _, message = log.checkpoint(5)
    with pytest.raises(CheckpointSignatureInvalid):
        verify_checkpoint(message, log.key, origin="tabellion.example/other")
    # Signed by the log key, but for another origin than the key's name.
    _, foreign = log.checkpoint(5, origin="tabellion.example/other")
    with pytest.raises(CheckpointSignatureInvalid):
        verify_checkpoint(foreign, log.key)
    with pytest.raises(CheckpointSignatureInvalid):
        verify_checkpoint(foreign, log.key, origin="tabellion.example/other")


def test_tampered_checkpoint_refused(log: Log) -> None:
    cp, message = log.checkpoint(5)
    signatures = message[len(cp.body()) :]
    tampered_size = Checkpoint(ORIGIN, 6, cp.root_hash).body()
    tampered_root = Checkpoint(ORIGIN, 5, mth(LEAVES[:4])).body()
    flipped = bytearray(cp.root_hash)
    flipped[0] ^= 1
    tampered_bit = Checkpoint(ORIGIN, 5, bytes(flipped)).body()
    for body in (tampered_size, tampered_root, tampered_bit, cp.body() + "x\n"):
        with pytest.raises(CheckpointSignatureInvalid):
            verify_checkpoint(body + signatures, log.key)


def test_signed_garbage_refused_as_malformed(log: Log) -> None:
    with pytest.raises(MalformedCheckpoint):
        verify_checkpoint(log.sign_text(f"{ORIGIN}\n5\n"), log.key)
    with pytest.raises(MalformedCheckpoint):
        verify_checkpoint(log.sign_text(f"{ORIGIN}\n05\n{base64.b64encode(bytes(32)).decode()}\n"), log.key)
    with pytest.raises(MalformedNote):
        verify_checkpoint(f"{ORIGIN}\n5\n", log.key)


def test_non_ed25519_log_key_refused(log: Log) -> None:
    _, message = log.checkpoint(5)
    cosigner = VerifierKey(ORIGIN, key_id(ORIGIN, 4, log.key.public_key), 4, log.key.public_key)
    with pytest.raises(MalformedKey):
        verify_checkpoint(message, cosigner)


# --- consistency between checkpoints ------------------------------------------------------------------


def _cp(size: int, origin: str = ORIGIN) -> Checkpoint:
    return Checkpoint(origin, size, mth(LEAVES[:size]))


@pytest.mark.parametrize(("old", "new"), [(1, 1), (1, 2), (3, 7), (4, 8), (5, 20), (20, 20), (0, 0), (0, 9)])
def test_consistent_checkpoints_accepted(old: int, new: int) -> None:
    path = consistency_proof(old, LEAVES[:new]) if old else []
    verify_checkpoint_consistency(_cp(old), _cp(new), path)


def test_inconsistent_checkpoints_refused() -> None:
    good = consistency_proof(5, LEAVES[:12])
    cases: list[tuple[Checkpoint, Checkpoint, list[bytes]]] = [
        (_cp(12), _cp(5), good),  # shrank
        (_cp(5), Checkpoint(ORIGIN, 5, mth(LEAVES[1:6])), []),  # fork: same size, other root
        (_cp(5), _cp(5), [LEAVES[0]]),  # same size with a proof
        (_cp(5), _cp(12), good[:-1]),
        (_cp(5), _cp(12), [*good, LEAVES[0]]),
        (_cp(5), _cp(12), [good[1], good[0], *good[2:]]),
        (_cp(5), Checkpoint(ORIGIN, 12, mth(LEAVES[1:13])), good),  # new tree rewrote history
        (Checkpoint(ORIGIN, 5, mth(LEAVES[1:6])), _cp(12), good),
        (_cp(5), _cp(13), good),
        (_cp(5), _cp(12, origin="tabellion.example/other"), good),  # another log
        (_cp(5), _cp(12), []),
        (Checkpoint(ORIGIN, 0, bytes(32)), _cp(12), []),  # "empty" checkpoint with a non-empty root
        (_cp(0), _cp(12), [EMPTY_ROOT]),
        (Checkpoint(ORIGIN, 0, bytes(32)), Checkpoint(ORIGIN, 0, bytes(32)), []),
    ]
    for old, new, path in cases:
        with pytest.raises(CheckpointInconsistent):
            verify_checkpoint_consistency(old, new, path)


def test_follow_a_log_from_signed_checkpoints(log: Log) -> None:
    sizes = [0, 1, 2, 5, 8, 8, 13, 20]
    trusted = verify_checkpoint(log.checkpoint(sizes[0])[1], log.key, origin=ORIGIN)
    for size in sizes[1:]:
        new = verify_checkpoint(log.checkpoint(size)[1], log.key, origin=ORIGIN)
        path = consistency_proof(trusted.size, LEAVES[:size]) if trusted.size else []
        verify_checkpoint_consistency(trusted, new, path)
        trusted = new
    assert trusted == _cp(20)
