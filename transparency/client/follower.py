"""A verifying follower of the log: what issuer and gateway read their state through.

It trusts nothing it cannot check with the log's two public keys (the checkpoint note key and the receipt
key set):

1. every checkpoint is a signed note by the log's key, for the log's origin;
2. every new checkpoint is consistent with the last one it accepted (RFC 9162 consistency proof); a
   smaller tree, a different root at the same size or a failing proof is a split view or a rewrite:
   the follower stops trusting the log for good (``failure``) and every later ``poll`` raises, it
   never falls back to an older state;
3. every entry comes with its receipt, which must verify for that statement under the receipt keys,
   name the entry's own index, and have a root consistent with the accepted checkpoint;
4. entries are handed to ``apply`` strictly in log order, each exactly once.

It is synchronous and keeps no state beyond the last checkpoint and the count of entries applied: the
caller's ``apply`` (a fold) holds the rest, so a restart starts over from entry 0 or from a snapshot
the caller restores with ``resume``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from schemas.checkpoint import Checkpoint
from schemas.errors import BadInput, CheckpointInconsistent, InclusionProofInvalid, VerificationError
from schemas.leaf import leaf_hash, statement_leaf_data
from schemas.note import VerifierKey
from schemas.proofs import ConsistencyProof
from transparency.client.http import LogEntry
from verifier.checkpoints import verify_checkpoint
from verifier.keys import KeySet
from verifier.merkle import CompactRange, verify_consistency
from verifier.receipts import verify_receipt


class LogReadClient(Protocol):
    """The reads a follower needs; ``HttpLogClient`` and ``LocalLogClient`` both provide them."""

    def checkpoint(self, after: int | None = None, wait: float | None = None) -> str: ...

    def consistency(self, old: int, new: int) -> ConsistencyProof: ...

    def entries(self, start: int = 0, limit: int = 100) -> list[LogEntry]: ...


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
        receipts: bool = True,
    ) -> None:
        self.receipts = receipts
        self._range = CompactRange()
        self.client = client
        self.log_key = log_key
        self.receipt_keys = receipt_keys
        self.apply = apply
        self.page = page
        self.checkpoint: Checkpoint | None = None
        self.checkpoint_text = ""
        self.size = 0
        self.failure: CheckpointInconsistent | None = None

    def resume(self, checkpoint_text: str, size: int) -> None:
        """Start from a checkpoint and entry count the caller kept (its fold holds entries ``0..size-1``)."""
        checkpoint = verify_checkpoint(checkpoint_text, self.log_key)
        if size > checkpoint.size:
            raise CheckpointInconsistent(f"{size} entries applied, more than the checkpoint's {checkpoint.size}")
        if not self.receipts and size:
            raise CheckpointInconsistent("a follower checking the tree resumes from 0 entries applied")
        self.checkpoint, self.checkpoint_text, self.size = checkpoint, checkpoint_text, size

    def poll(self, wait: float | None = None) -> Checkpoint:
        """Accept the log's latest checkpoint if it is consistent, then apply every entry up to it.

        With ``wait`` a long poll: the log answers as soon as it has grown past the entries applied (at once
        after ``resume``, or after a catch-up cut short), or after ``wait`` seconds, so a follower learns of a
        new entry — a revocation, say — at once.
        """
        if self.failure is not None:
            raise self.failure
        # a long poll answers at once while entries are still to be applied (after ``resume``, say)
        text = self.client.checkpoint() if wait is None else self.client.checkpoint(self.size, wait)
        new = verify_checkpoint(text, self.log_key)
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
        return new

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
        verified = verify_receipt(entry.receipt, entry.statement, self.receipt_keys)
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

