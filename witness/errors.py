"""The witness's refusals, with the HTTP statuses C2SP tlog-witness fixes for ``add-checkpoint``.

Every refusal is a problem-details answer with a stable code, except ``OldSizeConflict``: the specification
fixes its body (the witness's size in decimal, ``text/x.tlog.size``), so that one answers exactly that
(``witness.app``).
"""

from __future__ import annotations

from schemas.errors import BadInput, NotFound, TabellionError


class WitnessLogUnknown(NotFound):
    """The checkpoint's origin is not a log this witness is configured for (tlog-witness: 404)."""

    code = "witness-log-unknown"
    title = "Log unknown to this witness"


class CheckpointNotTrusted(TabellionError):
    """No valid signature by a key the witness trusts for the origin, or such a signature fails (403)."""

    code = "witness-checkpoint-untrusted"
    title = "Checkpoint not signed by a trusted log key"


class OldSizeInvalid(BadInput):
    """The old size is larger than the checkpoint's size (tlog-witness: 400)."""

    code = "witness-old-size-invalid"
    title = "Old size larger than the checkpoint"


class OldSizeConflict(TabellionError):
    """The old size is not the size of the latest checkpoint the witness cosigned for this log (409)."""

    code = "witness-old-size-conflict"
    title = "Old size is not the witness's latest size"

    def __init__(self, detail: str, known_size: int) -> None:
        super().__init__(detail)
        self.known_size = known_size


class CheckpointRefused(TabellionError):
    """The checkpoint is not consistent with what the witness cosigned: a bad proof, a proof where none is
    due, another root at the same size, or an empty tree with a non-empty root (tlog-witness: 422)."""

    code = "witness-checkpoint-inconsistent"
    title = "Checkpoint not consistent with the witness's view"


class CheckpointForked(CheckpointRefused):
    """A checkpoint the log's key signed with another root at the size the witness cosigned: the one refusal
    that proves, by itself and the cosigned checkpoint, that the log forked, so the only one kept as evidence.
    (A failing proof may be the sender's, not the log's: anyone can pair a checkpoint of the log with a junk
    proof.) The same answer as its parent (422)."""


class MethodNotAllowed(TabellionError):
    code = "method-not-allowed"
    title = "Method not allowed"
