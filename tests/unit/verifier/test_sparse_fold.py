"""A sparse fold (the entries of an audit bundle): increasing indices with gaps, never backwards."""

from __future__ import annotations

import pytest

from schemas.errors import TransitionInvalid
from tests.unit.verifier.identity_world import World
from verifier.fold import Fold, FoldEntry


def test_gaps_are_allowed_only_when_sparse_and_order_is_kept() -> None:
    world = World()
    world.register()
    world.passport("agent")  # after the agent's consent: three entries
    registration, consent, passport = world.entries
    spaced = [FoldEntry(3, registration.statement), FoldEntry(5, consent.statement), FoldEntry(9, passport.statement)]
    state = Fold(sparse=True).apply_all(spaced)
    assert state.size == 10 and [o.accepted for o in state.outcomes] == [True, True, True]
    assert [o.index for o in state.outcomes] == [3, 5, 9]
    assert world.did("agent") in state.passports
    with pytest.raises(TransitionInvalid) as refused:
        Fold().apply(spaced[0])
    assert refused.value.code == "entry-out-of-order"
    backwards = Fold(sparse=True)
    backwards.apply(spaced[2])
    with pytest.raises(TransitionInvalid) as refused:
        backwards.apply(spaced[0])
    assert refused.value.code == "entry-out-of-order"
