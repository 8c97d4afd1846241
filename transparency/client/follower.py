"""A verifying follower of the log: what issuer and gateway read their state through.

It trusts nothing it cannot check with the log's two public keys (the checkpoint note key and the receipt
key set):

1. every checkpoint is a signed note by the log's key, for the log's origin;
2. every new checkpoint is consistent with the last one it accepted (RFC 9162 consistency proof); a
   smaller tree, a different root at the same size or a failing proof is a split view or a rewrite:
   the follower stops trusting the log for good (``failure``) and every later ``poll`` raises, it
   never falls back to an older state;
3. every entry comes with its receipt, which must verify for that statement under the receipt keys,
   name the entry's own index, and have a root consistent with the accepted checkpoint (the receipts of one
   tree head share its signature, which is verified once: ``verifier.receipts.TreeHeadSignatures``);
4. entries are handed to ``apply`` strictly in log order, each exactly once.

It is synchronous and keeps no state beyond the last checkpoint and the count of entries applied: the
caller's ``apply`` (a fold) holds the rest, so a restart starts over from entry 0 or from a snapshot
the caller restores with ``resume``.

With a C2SP tlog-policy (``policy``) it accepts only checkpoints a quorum of witnesses cosigned
(``verifier.policy``): it reads the log's witnessed checkpoint (``GET /checkpoint/witnessed``; the long poll
waits on it) and its latest one, checks the chain accepted -> witnessed -> latest for consistency (a failure
is a split view, as above), accepts the witnessed one and applies its entries, never those past it. When the
log's latest checkpoint is ahead, the follower notes since when the oldest checkpoint it saw has waited for
its quorum (``unwitnessed_for``); ``require_witnessed(grace)`` turns a wait longer than ``grace`` into
``LogUnwitnessed`` (503 ``log-unwitnessed``): the log has entries — a revocation, perhaps — that no quorum
vouches the log shows everyone. Under steady load each checkpoint is witnessed within a round of cosignatures,
so the wait resets; with the quorum down it grows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from schemas.checkpoint import Checkpoint
from schemas.errors import (
    BadInput,
    CheckpointInconsistent,
    CheckpointUnwitnessed,
    ConfigurationError,
    InclusionProofInvalid,
    LogUnwitnessed,
    VerificationError,
)
from schemas.leaf import leaf_hash, statement_leaf_data
from schemas.note import VerifierKey
from schemas.policy import Policy
from schemas.proofs import ConsistencyProof
from transparency.client.http import LogEntry
from verifier.checkpoints import verify_checkpoint
from verifier.keys import KeySet
from verifier.merkle import CompactRange, verify_consistency
from verifier.policy import trusted_log_keys, verify_witnessed_checkpoint
from verifier.receipts import TreeHeadSignatures, verify_receipt


class LogReadClient(Protocol):
    """The reads a follower needs; ``HttpLogClient`` and ``LocalLogClient`` both provide them."""

    def checkpoint(self, after: int | None = None, wait: float | None = None) -> str: ...

    def consistency(self, old: int, new: int) -> ConsistencyProof: ...

    def entries(self, start: int = 0, limit: int = 100) -> list[LogEntry]: ...


@runtime_checkable
class WitnessedLogReadClient(LogReadClient, Protocol):
    """A log client that also reads the log's witnessed checkpoint (a follower with a policy needs it)."""

    def witnessed_checkpoint(self, after: int | None = None, wait: float | None = None) -> str | None: ...


@dataclass(frozen=True)
class FollowedEntry:
    """An entry whose receipt verified and whose tree is consistent with the accepted checkpoint."""

    index: int
    statement: bytes
    receipt: bytes
    receipt_tree_size: int


Apply = Callable[[Sequence[FollowedEntry]], None]


class LogFollower:
    """``receipts=False`` checks entries against the tree instead of one by one: the follower keeps a compact range
    of every leaf it applied (``verifier.merkle.CompactRange``), and each page of entries must either complete
    the checkpoint's root or be proved consistent with it (one consistency proof per page) before it is applied.
    As strong as receipts (every entry is bound to a signed checkpoint) at a hash per entry instead of a signature
    check; such entries' ``receipt`` is passed on unchecked."""

    def __init__(
        self, client: LogReadClient, log_key: VerifierKey, receipt_keys: KeySet, apply: Apply, *, page: int = 500,
        policy: Policy | None = None, clock: Callable[[], float] = time.monotonic, receipts: bool = True,
    ) -> None:
        if policy is not None:
            trusted_log_keys(policy, log_key)  # a policy that lists logs must list this one
            if not isinstance(client, WitnessedLogReadClient):
                raise ConfigurationError("following a log under a witness policy needs a client that reads "
                                         "its witnessed checkpoint")
        self.receipts = receipts
        self._range = CompactRange()
        self.client = client
        self.log_key = log_key
        self.receipt_keys = receipt_keys
        self.apply = apply
        self.page = page
        self.policy = policy
        self.clock = clock
        self.checkpoint: Checkpoint | None = None
        self.checkpoint_text = ""
        self.size = 0
        self.failure: CheckpointInconsistent | None = None
        self.heads = TreeHeadSignatures()  # the receipts of one tree head share its signature: verified once
        self.latest: Checkpoint | None = None  # the log's latest checkpoint as last seen (with a policy)
        self._waiting: tuple[int, float] | None = None  # (size, first seen) of the oldest unwitnessed checkpoint

    def resume(self, checkpoint_text: str, size: int, tree: CompactRange | None = None) -> None:
        """Start from a checkpoint and entry count the caller kept (its fold holds entries ``0..size-1``). A
        follower checking the tree needs the compact range of those entries (``tree``, of ``size`` leaves; the
        caller has checked it against a signed root), with which the next page's consistency is proved."""
        checkpoint = verify_checkpoint(checkpoint_text, self.log_key)
        if size > checkpoint.size:
            raise CheckpointInconsistent(f"{size} entries applied, more than the checkpoint's {checkpoint.size}")
        if not self.receipts:
            tree = tree or CompactRange()
            if tree.size != size:
                raise CheckpointInconsistent(f"a compact range of {tree.size} leaves for {size} entries applied")
            if size == checkpoint.size and tree.root() != checkpoint.root_hash:
                raise CheckpointInconsistent(f"the entries applied do not hash to the root of the tree of {size}")
            self._range = tree.copy()
        self.checkpoint, self.checkpoint_text, self.size = checkpoint, checkpoint_text, size

    @property
    def tree(self) -> CompactRange:
        """The compact range of the entries applied (kept only when checking entries against the tree)."""
        return self._range.copy()

    def poll(self, wait: float | None = None) -> Checkpoint:
        """Accept the log's latest checkpoint if it is consistent, then apply every entry up to it.

        With ``wait`` a long poll: the log answers as soon as it has grown past the entries applied (at once
        after ``resume``, or after a catch-up cut short), or after ``wait`` seconds, so a follower learns of a
        new entry — a revocation, say — at once.
        """
        if self.failure is not None:
            raise self.failure
        if self.policy is not None:
            return self._poll_witnessed(wait)
        # a long poll answers at once while entries are still to be applied (after ``resume``, say)
        text = self.client.checkpoint() if wait is None else self.client.checkpoint(self.size, wait)
        new = verify_checkpoint(text, self.log_key)
        self._accept(new, text)
        return new

    def _accept(self, new: Checkpoint, text: str) -> None:
        try:
            self._check_consistent(new)
        except VerificationError as exc:
            raise self._distrust(
                f"its checkpoint of size {new.size} is not consistent with the accepted one of size "
                f"{self.checkpoint.size if self.checkpoint else 0}: {exc.detail}"
            ) from exc
        self.checkpoint, self.checkpoint_text = new, text
        try:
            self._catch_up(new)
        except VerificationError as exc:
            raise self._distrust(f"entry {self.size} does not check out: {exc.detail}") from exc

    def _poll_witnessed(self, wait: float | None) -> Checkpoint:
        """With a policy: accept the log's newest witnessed checkpoint, then check its latest one extends it."""
        assert self.policy is not None and isinstance(self.client, WitnessedLogReadClient)
        if wait is not None and self.checkpoint is not None:  # long poll: until the witnessed one grows
            witnessed_text = self.client.witnessed_checkpoint(self.checkpoint.size, wait)
        else:
            witnessed_text = self.client.witnessed_checkpoint()
        latest_text = self.client.checkpoint()
        latest = verify_checkpoint(latest_text, self.log_key)
        witnessed = self._witnessed(witnessed_text)
        accepted = self.checkpoint
        if witnessed is not None and witnessed_text is not None and (
            accepted is None or witnessed.size > accepted.size
            or (witnessed.size == accepted.size and witnessed_text != self.checkpoint_text)  # more cosignatures
        ):
            self._accept(witnessed, witnessed_text)
        try:
            self._check_consistent(latest)  # the latest extends what was accepted (witnessed)
        except VerificationError as exc:
            raise self._distrust(
                f"its latest checkpoint of size {latest.size} is not consistent with its witnessed one of size "
                f"{self.checkpoint.size if self.checkpoint else 0}: {exc.detail}"
            ) from exc
        self.latest = latest
        self._note_waiting(latest)
        if self.checkpoint is None:
            raise LogUnwitnessed(f"the log {self.log_key.name!r} has no checkpoint witnessed by the quorum "
                                 f"({self.policy.describe_quorum()}) yet")
        return self.checkpoint

    def _witnessed(self, text: str | None) -> Checkpoint | None:
        """The log's witnessed checkpoint if it meets this follower's quorum (which may be stricter than the
        log's own); a signature that fails is an error, too few cosignatures is only not witnessed yet."""
        if text is None or self.policy is None:
            return None
        try:
            return verify_witnessed_checkpoint(text, self.policy, self.log_key).checkpoint
        except CheckpointUnwitnessed:
            return None

    def _note_waiting(self, latest: Checkpoint) -> None:
        accepted = self.checkpoint.size if self.checkpoint is not None else -1
        if latest.size <= accepted:
            self._waiting = None
        elif self._waiting is None or self._waiting[0] <= accepted:
            self._waiting = (latest.size, self.clock())  # the oldest checkpoint still waiting for its quorum

    def unwitnessed_for(self) -> float:
        """Seconds the oldest checkpoint of the log seen past the accepted (witnessed) one has waited (0: none)."""
        waiting = self._waiting
        return 0.0 if waiting is None else self.clock() - waiting[1]

    @property
    def waiting_since(self) -> float | None:
        """When (on ``clock``) the oldest checkpoint of the log seen past the accepted one was first seen; None:
        none waits."""
        return None if self._waiting is None else self._waiting[1]

    def require_witnessed(self, grace: float) -> None:
        """Raise ``LogUnwitnessed`` when the log's newer checkpoints have waited for their quorum over ``grace``."""
        if self.policy is not None:
            accepted = self.checkpoint.size if self.checkpoint is not None else 0
            latest = self.latest.size if self.latest is not None else accepted
            require_witnessed(self.policy, self.unwitnessed_for(), grace, latest, accepted)

    def _distrust(self, why: str) -> CheckpointInconsistent:
        """Stop trusting the log for good; a log-unreachable or malformed answer does not get here."""
        self.failure = CheckpointInconsistent(f"the log {self.log_key.name!r} is no longer trusted: {why}")
        return self.failure

    def _check_consistent(self, new: Checkpoint) -> None:
        old = self.checkpoint
        if old is None or old.size == 0:
            return
        if new.size < old.size:
            raise CheckpointInconsistent(f"the tree shrank from {old.size} to {new.size}")
        if new.size == old.size:
            if new.root_hash != old.root_hash:
                raise CheckpointInconsistent(f"two different roots for the tree of {new.size}")
            return
        proof = self.client.consistency(old.size, new.size)
        verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof.path)

    def _catch_up(self, checkpoint: Checkpoint) -> None:
        if not self.receipts:
            self._catch_up_by_tree(checkpoint)
            return
        consistent_roots: dict[int, bytes] = {checkpoint.size: checkpoint.root_hash}
        while self.size < checkpoint.size:
            page = self.client.entries(self.size, min(self.page, checkpoint.size - self.size))
            if not page:
                raise CheckpointInconsistent(f"the log serves no entry {self.size} below its checkpoint size")
            followed = [self._verified(e, self.size + i, checkpoint, consistent_roots) for i, e in enumerate(page)]
            self.apply(followed)
            self.size += len(followed)

    def _catch_up_by_tree(self, checkpoint: Checkpoint) -> None:
        while self.size < checkpoint.size:
            page = self.client.entries(self.size, min(self.page, checkpoint.size - self.size))
            if not page:
                raise CheckpointInconsistent(f"the log serves no entry {self.size} below its checkpoint size")
            grown = self._range.copy()
            for i, entry in enumerate(page):
                if entry.leaf_index != self.size + i:
                    raise CheckpointInconsistent(
                        f"the log served entry {entry.leaf_index} where {self.size + i} was due")
                try:
                    grown.append(leaf_hash(statement_leaf_data(entry.statement)))
                except BadInput as exc:
                    raise CheckpointInconsistent(
                        f"entry {entry.leaf_index} is not a signed statement: {exc.detail}") from exc
            if grown.size > checkpoint.size:
                raise CheckpointInconsistent(f"the log served entries beyond its checkpoint of {checkpoint.size}")
            if grown.size == checkpoint.size:
                if grown.root() != checkpoint.root_hash:
                    raise CheckpointInconsistent(f"the entries up to {grown.size} do not hash to the checkpoint's root")
            else:
                proof = self.client.consistency(grown.size, checkpoint.size)
                verify_consistency(grown.size, checkpoint.size, grown.root(), checkpoint.root_hash, proof.path)
            self.apply([FollowedEntry(e.leaf_index, e.statement, e.receipt, 0) for e in page])
            self._range = grown
            self.size = grown.size

    def _verified(
        self, entry: LogEntry, expected: int, checkpoint: Checkpoint, roots: dict[int, bytes]
    ) -> FollowedEntry:
        if entry.leaf_index != expected:
            raise CheckpointInconsistent(f"the log served entry {entry.leaf_index} where {expected} was due")
        verified = verify_receipt(entry.receipt, entry.statement, self.receipt_keys, self.heads)
        if verified.leaf_index != entry.leaf_index:
            raise InclusionProofInvalid(
                f"the receipt of entry {entry.leaf_index} proves leaf {verified.leaf_index}"
            )
        size = verified.tree_size
        if size > checkpoint.size:
            raise CheckpointInconsistent(f"a receipt for tree size {size} is beyond the checkpoint {checkpoint.size}")
        known = roots.get(size)
        if known is None:
            proof = self.client.consistency(size, checkpoint.size)
            verify_consistency(size, checkpoint.size, verified.root, checkpoint.root_hash, proof.path)
            roots[size] = verified.root
        elif known != verified.root:
            raise CheckpointInconsistent(f"two different roots for the tree of {size} in receipts")
        return FollowedEntry(entry.leaf_index, entry.statement, entry.receipt, size)


def require_witnessed(policy: Policy, waited: float, grace: float, latest: int, accepted: int) -> None:
    """Raise ``LogUnwitnessed`` when the log's checkpoint of size ``latest`` has waited ``waited`` seconds, over
    ``grace``, for the quorum of ``policy``; ``accepted`` is the last witnessed size (also for the workers of a
    gateway, which read these from the view their supervisor publishes)."""
    if waited > grace:
        raise LogUnwitnessed(
            f"the log's checkpoint of size {latest} has waited {waited:.1f} s (limit {grace:g} s) for the "
            f"cosignatures of its witness quorum ({policy.describe_quorum()}); the last witnessed size is {accepted}"
        )
