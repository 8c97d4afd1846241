"""A checkpoint checked against a C2SP tlog-policy (https://c2sp.org/tlog-policy): signed by one of the
policy's logs and cosigned by witnesses as its quorum requires. Offline; the policy is parsed by
``schemas.policy``.

The steps:

1. the log's signature: the note must carry a valid Ed25519 signature by a trusted log key whose name is the
   checkpoint's origin (``verifier.checkpoints.verify_checkpoint``). The trusted log keys are the policy's
   ``log`` lines; a caller that knows the log from elsewhere (a follower with a pinned key) passes it, and a
   policy that lists logs must then list that key too;
2. the cosignatures: for every witness of the policy, the lines with its name and key id are tlog-cosignature/v1
   cosignatures that must all verify (signed-note: a bad signature by a known key refuses the whole note);
   lines by anyone else are ignored;
3. the quorum: a witness has witnessed the checkpoint when its cosignature verified; a group when at least k
   of its members have; the checkpoint is valid when the quorum has (``none``: always).

Cosignature timestamps are returned, not judged: the verifier reads no clock (a caller may refuse one from the
future). Raises ``CheckpointSignatureInvalid`` (step 1), ``NoteSignatureInvalid`` (step 2),
``CheckpointUnwitnessed`` (step 3).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from schemas.checkpoint import Checkpoint
from schemas.errors import CheckpointSignatureInvalid, CheckpointUnwitnessed, MalformedPolicy
from schemas.note import Note, VerifierKey, parse_note
from schemas.policy import NONE, Policy
from verifier.checkpoints import verify_checkpoint
from verifier.notes import verify_cosignature


@dataclass(frozen=True)
class WitnessedCheckpoint:
    """A checkpoint the policy accepts: signed by ``log_key``, cosigned by ``cosigners`` (policy name -> the
    cosignature's timestamp, POSIX seconds)."""

    checkpoint: Checkpoint
    log_key: VerifierKey
    cosigners: Mapping[str, int]


def trusted_log_keys(policy: Policy, log_key: VerifierKey | None) -> tuple[VerifierKey, ...]:
    if log_key is None:
        if not policy.logs:
            raise MalformedPolicy("the policy lists no log, and no log key was given")
        return policy.log_keys()
    if policy.logs and log_key not in policy.log_keys():
        raise MalformedPolicy(f"the log key {log_key.name}+{log_key.key_id.hex()} is not one of the policy's logs")
    return (log_key,)


def verify_log_signature(message: str | bytes, policy: Policy, log_key: VerifierKey | None = None
                         ) -> tuple[Checkpoint, VerifierKey]:
    """Step 1 alone: the checkpoint and the trusted log key that signed it."""
    keys = trusted_log_keys(policy, log_key)
    origin = parse_note(message).text.split("\n", 1)[0]  # which key to try; the text is trusted only once verified
    candidates = [k for k in keys if k.name == origin] or list(keys[:1])
    failures = []
    for key in candidates:
        try:
            return verify_checkpoint(message, key), key
        except CheckpointSignatureInvalid as exc:
            failures.append(exc.detail)
    raise CheckpointSignatureInvalid("; ".join(failures))


def witnesses_of(note: Note, policy: Policy) -> dict[str, int]:
    """Step 2: every policy witness that cosigned ``note`` (all its lines verified), with the latest time."""
    found: dict[str, int] = {}
    present = {(s.name, s.key_id) for s in note.signatures}
    for name, witness in policy.witnesses.items():
        if (witness.vkey.name, witness.vkey.key_id) in present:
            found[name] = verify_cosignature(note, witness.vkey)
    return found


def quorum_met(policy: Policy, cosigned: Collection[str], name: str | None = None) -> bool:
    """Step 3: has ``name`` (the quorum by default) witnessed the checkpoint, given who cosigned it?"""
    name = policy.quorum if name is None else name
    if name == NONE:
        return True
    group = policy.groups.get(name)
    if group is None:
        return name in cosigned
    return sum(quorum_met(policy, cosigned, member) for member in group.members) >= group.threshold


def verify_witnessed_checkpoint(message: str | bytes, policy: Policy, log_key: VerifierKey | None = None,
                                origin: str | None = None) -> WitnessedCheckpoint:
    """Verify a cosigned checkpoint note against ``policy`` (see the module docstring)."""
    checkpoint, key = verify_log_signature(message, policy, log_key)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointSignatureInvalid(f"the checkpoint is for origin {checkpoint.origin[:100]!r}, not {origin!r}")
    note = parse_note(message)
    cosigned = witnesses_of(note, policy)
    if not quorum_met(policy, cosigned):
        who = ", ".join(sorted(cosigned)) or "no policy witness"
        raise CheckpointUnwitnessed(
            f"the checkpoint of {checkpoint.origin} at size {checkpoint.size} is cosigned by {who}; the quorum "
            f"needs {policy.describe_quorum()}"
        )
    return WitnessedCheckpoint(checkpoint, key, cosigned)

