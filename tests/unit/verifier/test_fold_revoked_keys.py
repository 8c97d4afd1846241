"""A key revoked on the log stays revoked for every identity it could stand for: the holder of a did:key whose key
was revoked (its owner's ``keyCompromise``) cannot come back as an operator registered under that did:key, and so
cannot rotate a fresh key of its own into it."""

from __future__ import annotations

from tests.unit.verifier.identity_world import World, accepted, assert_last_refused


def test_a_did_key_whose_key_was_revoked_cannot_register_as_an_operator() -> None:
    world = World()
    world.revoke("thief", world.mk("thief"), "keyCompromise")  # the owner of the did:key revokes its key
    assert accepted(world.fold()) == [True]
    world.register("thief", "squat")  # whoever holds the leaked key: an operator with a namespace, then a rotation
    assert_last_refused(world, "operator-revoked")


def test_nor_can_it_once_its_did_was_revoked() -> None:
    world = World()
    world.revoke("thief", world.did("thief"), "keyCompromise")
    world.register("thief", "squat")
    assert_last_refused(world, "operator-revoked")
