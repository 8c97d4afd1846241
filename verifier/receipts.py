"""RFC 9942 receipts (vds = RFC9162_SHA256) and transparent statements (RFC 9943), verified offline.

A receipt's signature covers, as its detached payload, the Merkle root that its inclusion proof recomputes
from the statement's leaf hash (docs/architecture.md §2). The receipt carries no root, so a wrong path or index
of the right shape shows up as a signature that does not verify: the signature, not the proof, is what
binds the leaf to the log.
"""

from __future__ import annotations

from typing import NamedTuple

from schemas.cose_sign1 import CoseSign1, decode_sign1
from schemas.errors import MalformedReceipt, ReceiptSignatureInvalid, SignatureInvalid
from schemas.leaf import leaf_data, leaf_hash, statement_leaf_data
from schemas.receipt import receipt_to_verify, receipts_of
from verifier.cose import sig_structure_of, verify_over
from verifier.keys import KeySet, PublicKey
from verifier.merkle import root_from_inclusion_proof
from verifier.statements import KeyResolver, verify_statement


class VerifiedReceipt(NamedTuple):
    """What a verified receipt proves: the statement is leaf ``leaf_index`` of the tree (``tree_size``,
    ``root``) that the log ``issuer`` signed with key ``kid`` at ``issued_at`` (seconds since the epoch)."""

    tree_size: int
    leaf_index: int
    root: bytes
    issuer: str
    issued_at: int
    kid: bytes


class TreeHeadSignatures:
    """The receipt signatures a follower has verified. The log signs one receipt signature per tree head, shared
    by every receipt issued at that size, so a follower that reads many entries of one batch meets the same
    signature over the same root again and again: it is verified once. A signature counts as verified only for
    the same key id, protected header (algorithm, issuer, time), signature bytes and recomputed root, so the
    answer is the one a verification would give again; the inclusion proof of every receipt is still recomputed.
    Bounded: the oldest are forgotten first."""

    def __init__(self, limit: int = 1024) -> None:
        self.limit = limit
        self._seen: dict[tuple[bytes, bytes, bytes, bytes], None] = {}

    def verify(self, alg: int, key: PublicKey, kid: bytes, protected: bytes, signature: bytes, root: bytes) -> None:
        memo = (kid, protected, signature, root)
        if memo in self._seen:
            return
        verify_over(alg, key, signature, sig_structure_of(protected, root))
        self._seen[memo] = None
        if len(self._seen) > self.limit:
            self._seen.pop(next(iter(self._seen)), None)


def verify_receipt(
    receipt: bytes, statement: bytes | CoseSign1, keys: KeySet, heads: TreeHeadSignatures | None = None
) -> VerifiedReceipt:
    """Verify that ``receipt`` proves ``statement`` is in the log whose receipt keys are ``keys``.

    The statement's unprotected header (for instance its receipts) is not part of the leaf. Only the first
    inclusion proof is used: a receipt for one statement has one leaf. Raises ``KeyUnknown`` for a kid not in
    ``keys``, ``InclusionProofInvalid`` for a proof of the wrong shape, ``ReceiptSignatureInvalid`` when the
    signature does not cover the recomputed root. With ``heads``, a tree head's signature that verified for an
    earlier receipt (the same signature over the same root) is not verified again.
    """
    r = receipt_to_verify(receipt)  # what parse_receipt checks, without building its values
    key = keys.get(r.kid)
    data = leaf_data(statement) if isinstance(statement, CoseSign1) else statement_leaf_data(statement)
    tree_size, leaf_index, path = r.inclusion
    root = root_from_inclusion_proof(leaf_index, tree_size, leaf_hash(data), path)
    try:
        if heads is not None:
            heads.verify(r.alg, key, r.kid, r.protected_bytes, r.signature, root)
        else:
            verify_over(r.alg, key, r.signature, sig_structure_of(r.protected_bytes, root))
    except SignatureInvalid as exc:
        raise ReceiptSignatureInvalid(
            f"the receipt signature does not cover the root that its inclusion proof of leaf "
            f"{leaf_index} in a tree of {tree_size} recomputes for this statement ({exc.detail})"
        ) from exc
    return VerifiedReceipt(tree_size, leaf_index, root, r.issuer, r.issued_at, r.kid)


def verify_transparent_statement(
    data: bytes, keys: KeySet, resolver: KeyResolver | None
) -> list[VerifiedReceipt]:
    """Verify every receipt (unprotected label 394) of a transparent statement, and, when a ``resolver`` is
    given, the statement's own signature first. All receipts must verify; an empty list is refused."""
    if resolver is not None:
        message = verify_statement(data, resolver).message
    else:
        message = decode_sign1(data, "transparent statement")
    receipts = receipts_of(message)
    if not receipts:
        raise MalformedReceipt("the transparent statement's receipts array (394) is empty")
    return [verify_receipt(r, message, keys) for r in receipts]
