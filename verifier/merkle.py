"""RFC 9162 §2.1 Merkle tree proofs (SHA-256), checked offline.

Leaf hashes are ``schemas.leaf.leaf_hash`` (``SHA-256(0x00 || leaf_data)``); interior nodes are
``SHA-256(0x01 || left || right)``. Leaf indices are 0-based. Every check raises an error from
``schemas.errors``; nothing returns a bool.

The consistency loop follows the steps of RFC 9162 §2.1.4.2 one for one, with ``fn``/``sn``/``fr``/``sr``
named as there; the inclusion loop (§2.1.3.2) takes the sibling sides from the bits of the index once the
path's length is checked (see ``root_from_inclusion_proof``). The edge cases that the RFC leaves to the
caller (equal sizes, the empty tree) follow the transparency-dev/merkle test vectors, which are stricter
than its Go code about the empty tree:

- ``size1 == size2``: the proof must be empty and the two roots equal; for size 0 both roots must
  also be the empty-tree hash ``SHA-256("")``.
- ``0 == size1 < size2``: refused. Nothing is committed to by a tree with no leaves, so a proof from
  it proves nothing; a checkpoint follower handles "first checkpoint after an empty one" itself
  (see ``verifier.checkpoints.verify_checkpoint_consistency``).

This module is on the receipt-verification hot path: each node hash continues a copy of a SHA-256 state that
has already taken the ``0x01`` prefix (copying a state is cheaper than starting one with OpenSSL 3, which
looks the algorithm up each time), on one concatenation per node; the proof is never copied. Hashing is
most of its cost (one SHA-256 per path hash).
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import sha256

from schemas.errors import ConsistencyProofInvalid, InclusionProofInvalid

HASH_SIZE = 32
NODE_PREFIX = b"\x01"
_NODE_STATE = sha256(NODE_PREFIX)
"""SHA-256 after the interior-node prefix: ``_node(left + right)`` continues a copy of it."""
EMPTY_ROOT = sha256(b"").digest()
"""RFC 9162 §2.1.1: the hash of the empty tree, ``MTH({}) = SHA-256()``."""

_HASH_SIZES = frozenset({HASH_SIZE})
MAX_TREE_SIZE = (1 << 64) - 1
"""Tree sizes and indices are uint64 on every wire format we read (RFC 9162, RFC 9942, C2SP)."""


def hash_children(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1 interior node: ``SHA-256(0x01 || left || right)``."""
    return _node(left + right)


def _node(children: bytes) -> bytes:
    h = _NODE_STATE.copy()
    h.update(children)
    return h.digest()


def inclusion_path_length(leaf_index: int, tree_size: int) -> int:
    """How many hashes an inclusion proof of ``leaf_index`` in a tree of ``tree_size`` leaves holds.

    The path climbs the levels below the lowest common ancestor of the leaf and the last leaf (each
    level contributes a sibling), then one hash for each level above it where the leaf's subtree is a
    right child. Requires ``0 <= leaf_index < tree_size``.
    """
    inner = (leaf_index ^ (tree_size - 1)).bit_length()
    return inner + (leaf_index >> inner).bit_count()


def consistency_path_length(size1: int, size2: int) -> int:
    """How many hashes an RFC 9162 consistency proof between ``0 < size1 < size2`` holds."""
    inner = ((size1 - 1) ^ (size2 - 1)).bit_length()
    trailing = (size1 & -size1).bit_length() - 1  # levels below the first tree's rightmost subtree
    # The first tree's rightmost complete subtree is given once (omitted when it is the whole first
    # tree); then the siblings of the path from it to the root of the second tree.
    length = inner - trailing + ((size1 - 1) >> inner).bit_count()
    return length if size1 == 1 << trailing else length + 1


def _check_hash(node: bytes, what: str, error: type[InclusionProofInvalid | ConsistencyProofInvalid]) -> None:
    if len(node) != HASH_SIZE:
        raise error(f"{what} is {len(node)} bytes, not {HASH_SIZE}")


def root_from_inclusion_proof(
    leaf_index: int, tree_size: int, leaf_hash: bytes, path: Sequence[bytes]
) -> bytes:
    """The root that ``path`` (RFC 9162 §2.1.3.1) recomputes for ``leaf_hash`` at ``leaf_index``.

    Raises ``InclusionProofInvalid`` when the index is outside the tree or the path has the wrong
    length or holds something that is not a 32-byte hash. The caller compares the result with a root
    it trusts (a signed checkpoint or receipt); ``verify_inclusion`` does both.
    """
    if not 0 <= leaf_index < tree_size:
        raise InclusionProofInvalid(f"leaf index {leaf_index} is not in a tree of {tree_size} leaves")
    if tree_size > MAX_TREE_SIZE:
        raise InclusionProofInvalid(f"tree size {tree_size} is not a 64-bit unsigned integer")
    _check_hash(leaf_hash, "the leaf hash", InclusionProofInvalid)
    inner = (leaf_index ^ (tree_size - 1)).bit_length()  # as in inclusion_path_length
    expected = inner + (leaf_index >> inner).bit_count()
    if len(path) != expected:
        raise InclusionProofInvalid(
            f"an inclusion proof of leaf {leaf_index} in a tree of {tree_size} leaves has {expected} "
            f"hashes, not {len(path)}"
        )
    if not _HASH_SIZES.issuperset(map(len, path)):
        i, p = next((i, p) for i, p in enumerate(path) if len(p) != HASH_SIZE)
        raise InclusionProofInvalid(f"inclusion path element {i} is {len(p)} bytes, not {HASH_SIZE}")
    # RFC 9162 §2.1.3.2, steps 2-5, in the shape the length check has fixed (as transparency-dev/merkle's
    # chainInner and chainBorderRight). Below level ``inner``, where the paths to the leaf and to the last
    # leaf join, the RFC's ``LSB(fn)`` is bit k of the index: set means the k-th hash is a left sibling.
    # From there on ``fn == sn``, and every remaining hash is a left sibling (the RFC shifts past the index's
    # zero bits without taking one). A set bit of ``left`` marks a left sibling; all bits from ``inner`` up
    # are set.
    left = leaf_index | -(1 << inner)
    r = leaf_hash
    copy_node_state = _NODE_STATE.copy
    for p in path:
        h = copy_node_state()  # written out, not ``_node``: a call per path hash shows on the hot path
        h.update(p + r if left & 1 else r + p)
        r = h.digest()
        left >>= 1
    return r


def verify_inclusion(
    leaf_index: int, tree_size: int, leaf_hash: bytes, path: Sequence[bytes], root: bytes
) -> None:
    """Check that ``path`` proves ``leaf_hash`` is leaf ``leaf_index`` of the tree with ``root``."""
    if root_from_inclusion_proof(leaf_index, tree_size, leaf_hash, path) != root:
        raise InclusionProofInvalid(
            f"the inclusion proof of leaf {leaf_index} does not lead to the root of the tree of "
            f"{tree_size} leaves"
        )


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes, path: Sequence[bytes]) -> None:
    """Check that ``path`` (RFC 9162 §2.1.4.1) proves the tree ``(size1, root1)`` is a prefix of
    ``(size2, root2)``. Raises ``ConsistencyProofInvalid`` otherwise."""
    if size1 < 0 or size2 > MAX_TREE_SIZE:
        raise ConsistencyProofInvalid(f"tree sizes {size1} and {size2} are not 64-bit unsigned integers")
    if size2 < size1:
        raise ConsistencyProofInvalid(f"the second tree ({size2} leaves) is smaller than the first ({size1})")
    if size1 == size2:
        if path:
            raise ConsistencyProofInvalid(f"two trees of {size1} leaves need an empty consistency proof")
        if root1 != root2:
            raise ConsistencyProofInvalid(f"two trees of {size1} leaves have different roots")
        if size1 == 0 and root1 != EMPTY_ROOT:
            raise ConsistencyProofInvalid("the root of a tree with no leaves is not the empty-tree hash")
        return
    if size1 == 0:
        raise ConsistencyProofInvalid("a consistency proof from a tree with no leaves proves nothing")
    expected = consistency_path_length(size1, size2)
    if len(path) != expected:
        raise ConsistencyProofInvalid(
            f"a consistency proof from {size1} to {size2} leaves has {expected} hashes, not {len(path)}"
        )
    for i, c in enumerate(path):
        if len(c) != HASH_SIZE:
            raise ConsistencyProofInvalid(f"consistency path element {i} is {len(c)} bytes, not {HASH_SIZE}")

    # RFC 9162 §2.1.4.2. Step 1 (empty path) is covered by the length check. Step 2 prepends root1
    # when size1 is a power of two; instead of copying the path, start from root1 and walk all of it.
    if size1 & (size1 - 1) == 0:
        fr = sr = root1
        start = 0
    else:
        fr = sr = path[0]  # step 5
        start = 1
    fn = size1 - 1  # step 3
    sn = size2 - 1
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    for i in range(start, len(path)):  # step 6
        c = path[i]
        if sn == 0:  # step 6a; unreachable after the length check
            raise ConsistencyProofInvalid("the consistency path is longer than the tree is high")
        if fn & 1 or fn == sn:
            fr = _node(c + fr)
            sr = _node(c + sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _node(sr + c)
        fn >>= 1
        sn >>= 1
    # Step 7.
    if sn != 0:
        raise ConsistencyProofInvalid("the consistency path is shorter than the tree is high")
    if fr != root1:
        raise ConsistencyProofInvalid(f"the consistency proof does not lead to the {size1}-leaf tree's root")
    if sr != root2:
        raise ConsistencyProofInvalid(f"the consistency proof does not lead to the {size2}-leaf tree's root")


class CompactRange:
    """The RFC 9162 tree hash of a growing list of leaves, kept as the roots of its perfect subtrees (largest first):
    O(log n) hashes of memory, one interior hash per appended leaf on average. A follower that downloads every
    entry checks them all against a signed root with it, without a proof per entry."""

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()) -> None:
        if size.bit_count() != len(nodes):
            raise ValueError("a compact range of n leaves holds one subtree root per bit set in n")
        self.size = size
        self.nodes = list(nodes)

    def copy(self) -> CompactRange:
        return CompactRange(self.size, self.nodes)

    def append(self, leaf_hash: bytes) -> None:
        self.nodes.append(leaf_hash)
        merged = self.size
        while merged & 1:  # the new subtree completes a larger one for each low 1 bit of the old size
            right = self.nodes.pop()
            self.nodes[-1] = _node(self.nodes[-1] + right)
            merged >>= 1
        self.size += 1

    def root(self) -> bytes:
        """MTH of the leaves appended so far (``EMPTY_ROOT`` for none)."""
        if not self.nodes:
            return EMPTY_ROOT
        root = self.nodes[-1]
        for node in reversed(self.nodes[:-1]):
            root = _node(node + root)
        return root
