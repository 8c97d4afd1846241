"""The verifier against the plain RFC 9162 reference in tests/merkle_reference.py (hypothesis).

For random trees of 1..300 leaves: the reference's inclusion and consistency proofs verify and
recompute the reference root, and any single flipped bit (in a proof hash, the leaf, a root) or a
wrong index/size is refused.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.errors import ConsistencyProofInvalid, InclusionProofInvalid
from schemas.leaf import leaf_hash
from tests.merkle_reference import consistency_proof, inclusion_path, mth
from verifier.merkle import (
    consistency_path_length,
    inclusion_path_length,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

MAX_LEAVES = 300
_LEAVES = [leaf_hash(hashlib.sha256(i.to_bytes(4, "big")).digest()) for i in range(MAX_LEAVES)]
_ROOTS = [mth(_LEAVES[:n]) for n in range(MAX_LEAVES + 1)]


def _flip(data: bytes, bit: int) -> bytes:
    bit %= len(data) * 8
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@st.composite
def _tree_and_index(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, MAX_LEAVES))
    return size, draw(st.integers(0, size - 1))


@st.composite
def _two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    size2 = draw(st.integers(1, MAX_LEAVES))
    return draw(st.integers(1, size2)), size2


@settings(max_examples=400, deadline=None)
@given(_tree_and_index(), st.integers(min_value=0))
def test_inclusion_against_reference(tree: tuple[int, int], bit: int) -> None:
    size, index = tree
    leaves, root = _LEAVES[:size], _ROOTS[size]
    path = inclusion_path(index, leaves)
    assert len(path) == inclusion_path_length(index, size)
    assert root_from_inclusion_proof(index, size, leaves[index], path) == root
    verify_inclusion(index, size, leaves[index], path, root)

    with pytest.raises(InclusionProofInvalid):
        verify_inclusion(index, size, _flip(leaves[index], bit), path, root)
    with pytest.raises(InclusionProofInvalid):
        verify_inclusion(index, size, leaves[index], path, _flip(root, bit))
    if path:
        i = bit % len(path)
        with pytest.raises(InclusionProofInvalid):
            bad = [*path[:i], _flip(path[i], bit), *path[i + 1 :]]
            verify_inclusion(index, size, leaves[index], bad, root)
        with pytest.raises(InclusionProofInvalid):
            verify_inclusion(index, size, leaves[index], path[:-1], root)
    with pytest.raises(InclusionProofInvalid):
        verify_inclusion(index, size, leaves[index], [*path, root], root)
    if size > 1:
        other = (index + 1 + bit % (size - 1)) % size
        with pytest.raises(InclusionProofInvalid):
            verify_inclusion(other, size, leaves[index], path, root)


@settings(max_examples=400, deadline=None)
@given(_two_sizes(), st.integers(min_value=0))
def test_consistency_against_reference(sizes: tuple[int, int], bit: int) -> None:
    size1, size2 = sizes
    root1, root2 = _ROOTS[size1], _ROOTS[size2]
    proof = consistency_proof(size1, _LEAVES[:size2])
    if size1 < size2:
        assert len(proof) == consistency_path_length(size1, size2)
    verify_consistency(size1, size2, root1, root2, proof)

    with pytest.raises(ConsistencyProofInvalid):
        verify_consistency(size1, size2, _flip(root1, bit), root2, proof)
    with pytest.raises(ConsistencyProofInvalid):
        verify_consistency(size1, size2, root1, _flip(root2, bit), proof)
    with pytest.raises(ConsistencyProofInvalid):
        verify_consistency(size1, size2, root1, root2, [*proof, root1])
    if proof:
        i = bit % len(proof)
        with pytest.raises(ConsistencyProofInvalid):
            bad = [*proof[:i], _flip(proof[i], bit), *proof[i + 1 :]]
            verify_consistency(size1, size2, root1, root2, bad)
        with pytest.raises(ConsistencyProofInvalid):
            verify_consistency(size1, size2, root1, root2, proof[1:])
    if size1 < size2:
        # The proof of one size pair is not a proof of another (unless the trees' roots agree).
        other = 1 + bit % (size2 - 1) if size2 > 1 else size1
        if other != size1 and _ROOTS[other] != root1:
            with pytest.raises(ConsistencyProofInvalid):
                verify_consistency(other, size2, root1, root2, proof)
