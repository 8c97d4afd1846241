"""The compact range (verifier.merkle.CompactRange) against the plain RFC 9162 reference, and as a follower uses it:
a root that matches the checkpoint, or a consistency proof from the range's size to it."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.merkle_reference import consistency_proof, mth
from verifier.merkle import EMPTY_ROOT, CompactRange, verify_consistency


def leaves(n: int) -> list[bytes]:
    return [hashlib.sha256(b"\x00" + i.to_bytes(4, "big")).digest() for i in range(n)]


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 300), st.integers(0, 300))
def test_every_prefix_root_equals_the_reference(n: int, extra: int) -> None:
    all_leaves = leaves(n + extra)
    compact = CompactRange()
    assert compact.root() == EMPTY_ROOT
    for i, leaf in enumerate(all_leaves[:n]):
        compact.append(leaf)
        assert compact.size == i + 1 and len(compact.nodes) == (i + 1).bit_count()
    assert compact.root() == mth(all_leaves[:n])
    grown = compact.copy()
    for leaf in all_leaves[n:]:
        grown.append(leaf)
    assert grown.root() == mth(all_leaves) and compact.root() == mth(all_leaves[:n])  # the copy is independent
    if 0 < n < n + extra:
        verify_consistency(n, n + extra, compact.root(), grown.root(), consistency_proof(n, all_leaves))


def test_a_range_must_hold_one_node_per_bit() -> None:
    with pytest.raises(ValueError):
        CompactRange(3, [b"x" * 32])
