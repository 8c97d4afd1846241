"""A sparse fold (the entries of an audit bundle): increasing indices with gaps, never backwards."""

from __future__ import annotations

import pytest

from schemas.errors import TransitionInvalid
from tests.unit.verifier.identity_world import World
from verifier.fold import Fold, FoldEntry


def test_gaps_are_allowed_only_when_sparse_and_order_is_kept() -> None:
    world = World()
    world.register()
    world.passport("agent")
    first, second = world.entries
    spaced = [FoldEntry(3, first.statement), FoldEntry(9, second.statement)]
    state = Fold(sparse=True).apply_all(spaced)
    assert state.size == 10 and [o.accepted for o in state.outcomes] == [True, True]
    assert world.did("agent") in state.passports
    with pytest.raises(TransitionInvalid, match="expected entry 0"):
        Fold().apply(spaced[0])
    backwards = Fold(sparse=True)
    backwards.apply(spaced[1])
    with pytest.raises(TransitionInvalid):
        backwards.apply(spaced[0])
