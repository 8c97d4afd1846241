"""The witness: C2SP tlog-witness ``add-checkpoint`` and the monitoring read, as a library.

``add_checkpoint`` makes the checks of the specification in its order, and answers with a cosignature only
once the new (size, root) is durably stored:

1. the body parses (400 ``malformed-witness-request``; a bad note or checkpoint: 400 too);
2. the checkpoint's origin is a log this witness knows (404 ``witness-log-unknown``);
3. the note carries a valid signature by a key the witness trusts for that origin, and every signature by
   such a key verifies; signatures by other keys are ignored (403 ``witness-checkpoint-untrusted``);
4. the old size is at most the checkpoint's size (400 ``witness-old-size-invalid``);
5. in one transaction: the old size is the size of the latest checkpoint it cosigned for the log, 0 if none
   (409 with that size as ``text/x.tlog.size``); a checkpoint of size 0 has the empty tree's root; from old
   size 0 the proof is empty; at the same size the roots are equal (and the proof empty); otherwise the
   RFC 9162 consistency proof leads from the stored root to the new one (422
   ``witness-checkpoint-inconsistent``); then the checkpoint is stored and cosigned. A checkpoint the log
   signed with another root at the cosigned size is kept as evidence of a fork (``CheckpointForked``); a
   failing proof is not, since anyone can pair the log's honest checkpoints with junk proofs (and would
   otherwise push a fork's evidence out of the bounded store, leaving honest checkpoints in its place).

So a witness never cosigns a smaller tree than one it cosigned, nor another root at the same size. Sizes
above 2^63-1 (which SQLite cannot store, and no log reaches) are refused with 400.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from schemas.checkpoint import Checkpoint, parse_checkpoint
from schemas.errors import ConsistencyProofInvalid, NoteSignatureInvalid, NotFound
from schemas.note import Note, NoteSignature, parse_note
from schemas.witness import AddCheckpoint, check_origin_hash, parse_add_checkpoint
from verifier.merkle import EMPTY_ROOT, verify_consistency
from verifier.notes import verify_note
from witness.config import WitnessConfig
from witness.cosigner import Cosigner
from witness.errors import (
    CheckpointForked,
    CheckpointNotTrusted,
    CheckpointRefused,
    OldSizeConflict,
    OldSizeInvalid,
    WitnessLogUnknown,
)
from witness.store import Cosigned, Refused, WitnessStore

MAX_SIZE = (1 << 63) - 1


class WitnessCheckpointNotFound(NotFound):
    code = "witness-checkpoint-not-found"
    title = "No checkpoint cosigned for this log"


class Witness:
    def __init__(self, config: WitnessConfig, cosigner: Cosigner, store: WitnessStore,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.cosigner = cosigner
        self.store = store
        self.clock = clock

    def add_checkpoint(self, body: bytes) -> tuple[NoteSignature, ...]:
        """Check an ``add-checkpoint`` body and return the cosignature (see the module docstring)."""
        request = parse_add_checkpoint(body)
        note = parse_note(request.checkpoint)
        origin = note.text.split("\n", 1)[0]  # to pick the keys; the text is trusted once their signature verifies
        keys = self.config.logs.get(origin)
        if keys is None:
            raise WitnessLogUnknown(f"this witness cosigns no log with origin {origin[:100]!r}")
        try:
            verify_note(request.checkpoint, keys)
        except NoteSignatureInvalid as exc:
            raise CheckpointNotTrusted(f"the checkpoint of {origin[:100]!r}: {exc.detail}") from exc
        checkpoint = parse_checkpoint(note.text)
        if checkpoint.size > MAX_SIZE:
            raise OldSizeInvalid(f"a tree of {checkpoint.size} leaves is larger than this witness stores")
        if request.old_size > checkpoint.size:
            raise OldSizeInvalid(f"the old size {request.old_size} is larger than the checkpoint's {checkpoint.size}")
        trusted = {(k.name, k.key_id) for k in keys}
        log_signatures = tuple(s for s in note.signatures if (s.name, s.key_id) in trusted)
        try:
            with self.store.transaction():
                latest = self.store.latest(origin)
                known = latest.size if latest is not None else 0
                if request.old_size != known:
                    raise OldSizeConflict(
                        f"the latest checkpoint this witness cosigned for {origin} has size {known}, not "
                        f"{request.old_size}", known,
                    )
                _check_consistent(request, checkpoint, latest)
                timestamp = max(int(self.clock()), latest.cosigned_at if latest is not None else 1, 1)
                cosignature = self.cosigner.cosign(note.text, timestamp)
                stored = Note(note.text, (*log_signatures, cosignature)).encode()
                self.store.put(Cosigned(origin, checkpoint.size, checkpoint.root_hash, stored, timestamp))
        except CheckpointForked as exc:
            self.store.refuse(Refused(origin, request.old_size, request.checkpoint, exc.detail, int(self.clock())))
            raise
        return (cosignature,)

    def checkpoint(self, digest: str) -> str:
        """The latest checkpoint cosigned for the log whose origin hashes to ``digest`` (monitoring API)."""
        cosigned = self.store.latest_by_hash(check_origin_hash(digest))
        if cosigned is None:
            raise WitnessCheckpointNotFound(f"this witness has cosigned no checkpoint of the log {digest}")
        return cosigned.checkpoint


def _check_consistent(request: AddCheckpoint, checkpoint: Checkpoint, latest: Cosigned | None) -> None:
    old, size, proof = request.old_size, checkpoint.size, request.proof
    if size == 0 and checkpoint.root_hash != EMPTY_ROOT:
        raise CheckpointRefused("a checkpoint of size 0 must carry the empty tree's root hash")
    if old == 0:
        if proof:
            raise CheckpointRefused("the consistency proof from size 0 must be empty")
        return
    if latest is None:  # old == known size, which is 0 without a record
        raise CheckpointRefused(f"no checkpoint of size {old} was cosigned")
    if old == size:
        if checkpoint.root_hash != latest.root:
            raise CheckpointForked(f"this witness cosigned another root for the tree of size {size}")
        if proof:
            raise CheckpointRefused("the consistency proof between two trees of the same size must be empty")
        return
    try:
        verify_consistency(old, size, latest.root, checkpoint.root_hash, proof)
    except ConsistencyProofInvalid as exc:
        raise CheckpointRefused(f"the checkpoint of size {size} does not extend the cosigned one of size {old}: "
                                f"{exc.detail}") from exc
