"""Delegations in the fold: chains that narrow at every hop, each refused transition (state unchanged), chain_of,
revocation that voids every descendant, and authorise with each of its refusals."""

from __future__ import annotations

import pytest

from schemas.errors import (
    AuthorityRefused,
    ClaimRefused,
    DelegationRefused,
    EntryNotFound,
    PassportRefused,
    ScopeRefused,
)
from tests.unit.verifier.identity_world import HOUR, SCOPE, T0, World, accepted, assert_last_refused
from verifier.authority import authorise
from verifier.delegation import chain_of, check_chain
from verifier.passports import Verdict

NARROW = {"services": ["mail"], "actions": ["read"], "resources": ["mail/inbox/*"]}


@pytest.fixture
def world() -> World:
    """Operator ``op`` delegates to agent ``a1`` (max_depth 3, until T0+10h); a1 consented to op and has a
    passport."""
    w = World()
    w.register("op")
    w.passport("a1")
    w.delegate("op", "a1")
    return w


def _root(world: World) -> str:
    """The entry id of the fixture's root delegation op -> a1."""
    return next(iter(world.fold().delegations))


def test_a_chain_narrows_and_chain_of_names_the_root(world: World) -> None:
    root = _root(world)
    child = world.delegate("a1", "a2", root, scope=NARROW, max_depth=1, not_after=T0 + 5 * HOUR)
    leaf = world.delegate("a2", "a3", child, scope=NARROW, max_depth=0, not_after=T0 + 5 * HOUR)
    state = world.fold()
    assert all(accepted(state)), [o.reason for o in state.outcomes]
    d = state.delegations[leaf]
    assert (d.parent, d.depth, d.root_principal, d.principal, d.agent) == (
        child, 2, world.did("op"), world.did("a2"), world.did("a3"))
    chain = chain_of(state, leaf)
    assert chain.entries == (root, child, leaf) and chain.root_principal == world.did("op")
    assert check_chain(state, leaf, T0 + HOUR) == chain
    with pytest.raises(EntryNotFound):
        chain_of(state, "00" * 32)


@pytest.mark.parametrize(
    "scope",
    [
        {"services": ["mail", "calendar"], "actions": ["read"], "resources": ["mail/*"]},
        {"services": ["mail"], "actions": ["read", "delete"], "resources": ["mail/*"]},
        {"services": ["mail"], "actions": ["read"], "resources": ["files/*"]},
        {"services": ["mail"], "actions": ["read"], "resources": ["mail*"]},
        {"services": ["files"], "actions": ["read"], "resources": ["files/b"]},
    ],
    ids=["service calendar", "action delete", "resource files/*", "resource mail*", "resource files/b"],
)
def test_widening_the_scope_is_refused(world: World, scope: dict[str, list[str]]) -> None:
    world.delegate("a1", "a2", _root(world), scope=scope)
    assert_last_refused(world, "delegation-scope-widened")


def test_resource_patterns_narrow_by_prefix(world: World) -> None:
    scope = {"services": ["files"], "actions": ["read"], "resources": ["files/a/b", "files/a/c/*", "mail/x"]}
    world.delegate("a1", "a2", _root(world), scope=scope)
    assert all(accepted(world.fold()))


def test_too_deep_is_refused(world: World) -> None:
    child = world.delegate("a1", "a2", _root(world), scope=NARROW, max_depth=0)
    world.delegate("a2", "a3", child, scope=NARROW, max_depth=0)
    assert_last_refused(world, "delegation-too-deep")


def test_depth_must_shrink(world: World) -> None:
    world.delegate("a1", "a2", _root(world), scope=NARROW, max_depth=3)
    assert_last_refused(world, "delegation-too-deep")


def test_delegating_from_an_expired_parent_is_refused(world: World) -> None:
    world.delegate("a1", "a2", _root(world), scope=NARROW, not_after=T0 + 10 * HOUR, iat=T0 + 10 * HOUR)
    assert_last_refused(world, "delegation-parent-invalid")
    world.entries.pop()
    world.delegate("a1", "a2", _root(world), scope=NARROW, not_after=T0 + 10 * HOUR, iat=T0 + 10 * HOUR - 1)
    assert all(accepted(world.fold()))


def test_not_after_cannot_move_later(world: World) -> None:
    world.delegate("a1", "a2", _root(world), scope=NARROW, not_after=T0 + 11 * HOUR)
    assert_last_refused(world, "delegation-outlives-parent")


def test_an_already_expired_delegation_is_refused(world: World) -> None:
    world.delegate("a1", "a2", _root(world), scope=NARROW, not_after=T0 + HOUR, iat=T0 + HOUR)
    assert_last_refused(world, "delegation-expired-at-issue")


def test_wrong_signer_is_refused(world: World) -> None:
    world.delegate("a1", "a2", _root(world), scope=NARROW, signer="a2")  # iss a1, signed by a2
    assert_last_refused(world, "signer-key-mismatch")


def test_principal_must_be_the_parents_agent(world: World) -> None:
    world.delegate("a2", "a3", _root(world), scope=NARROW)
    assert_last_refused(world, "delegation-parent-agent-mismatch")


def test_root_delegation_needs_an_operator(world: World) -> None:
    world.delegate("a1", "a2")
    assert_last_refused(world, "delegation-root-not-operator")


def test_unknown_parent_is_refused(world: World) -> None:
    world.delegate("a1", "a2", "ab" * 32, scope=NARROW)
    assert_last_refused(world, "delegation-parent-unknown")


def test_revoked_signer_is_refused(world: World) -> None:
    root = _root(world)
    world.revoke("a1", world.did("a1"), "keyCompromise")
    world.delegate("a1", "a2", root, scope=NARROW)
    assert_last_refused(world, "signer-revoked")


def test_delegating_to_a_revoked_agent_is_refused(world: World) -> None:
    root = _root(world)
    world.revoke("a2", world.did("a2"))
    world.delegate("a1", "a2", root, scope=NARROW)
    assert_last_refused(world, "agent-revoked")


def test_revoked_parent_is_refused(world: World) -> None:
    root = _root(world)
    world.revoke("op", root)
    world.delegate("a1", "a2", root, scope=NARROW)
    assert_last_refused(world, "delegation-parent-invalid")


def test_revoked_ancestor_voids_every_descendant(world: World) -> None:
    root = _root(world)
    child = world.delegate("a1", "a2", root, scope=NARROW, max_depth=2)
    leaf = world.delegate("a2", "a3", child, scope=NARROW, max_depth=1)
    world.revoke("op", root)
    world.delegate("a3", "a4", leaf, scope=NARROW, max_depth=0)
    assert_last_refused(world, "delegation-parent-invalid")
    state = world.fold()
    assert state.delegations[root].revoked is not None and state.delegations[leaf].revoked is None
    with pytest.raises(DelegationRefused, match=f"delegation entry {root} was revoked") as refused:
        check_chain(state, leaf, T0)
    assert refused.value.reason_code == "delegation_revoked"
    assert chain_of(state, leaf).entries == (root, child, leaf)  # who authorised it stays answerable


def test_revocation_by_a_principal_above_and_not_by_a_stranger(world: World) -> None:
    child = world.delegate("a1", "a2", _root(world), scope=NARROW, max_depth=1)
    world.revoke("op", child)  # the operator above may take back a sub-delegation
    assert all(accepted(world.fold()))
    world.entries.pop()
    world.revoke("a2", child)  # the delegate itself may not
    assert_last_refused(world, "delegation-revocation-not-entitled")


# --- authorise -----------------------------------------------------------------------------------------------


@pytest.fixture
def granted(world: World) -> World:
    """``world`` plus a2 (passport) delegated by a1 with NARROW scope, and an approved claim by a2."""
    child = world.delegate("a1", "a2", _root(world), scope=NARROW, max_depth=0, not_after=T0 + 5 * HOUR)
    world.passport("a2")
    claim = world.submit("a2", scope=NARROW)
    world.approve(claim)
    assert all(accepted(world.fold())), child
    return world


def _granted(world: World) -> tuple[str, str, str, str]:
    """The entry ids of the ``granted`` fixture: root delegation, child delegation to a2, a2's passport, a2's
    claim."""
    state, a2 = world.fold(), world.did("a2")
    return _root(world), state.delegations_to[a2][0], state.passports[a2].entry, state.claims_of[a2][0]


def test_authorise_names_the_chain_and_the_claim(granted: World) -> None:
    state = granted.fold()
    decision = authorise(state, granted.did("a2"), "mail", "read", "mail/inbox/42", T0 + HOUR)
    root, child, passport, claim = _granted(granted)
    assert decision.chain == (root, child)
    assert decision.root_principal == granted.did("op")
    assert decision.claim == claim and decision.passport == passport
    assert (decision.verdict, decision.reason_code) == (Verdict.ALLOW, "ok")
    granted.passport("a2", valid_from=T0 - 20 * HOUR)  # a newer passport, with 4 h of its 24 h left at T0
    warn = authorise(granted.fold(), granted.did("a2"), "mail", "read", "mail/inbox/42", T0 + 3 * HOUR)
    assert warn.verdict is Verdict.WARN and warn.reason_code == "expiring_soon"


@pytest.mark.parametrize(
    ("request_", "now", "error", "code"),
    [
        (("a9", "mail", "read", "mail/inbox/1"), T0 + HOUR, PassportRefused, "not_issued"),
        (("a2", "mail", "read", "mail/inbox/1"), T0 + 25 * HOUR, PassportRefused, "expired"),
        (("a2", "mail", "read", "mail/inbox/1"), T0 + 6 * HOUR, DelegationRefused, "delegation_expired"),
        (("a2", "files", "read", "mail/inbox/1"), T0 + HOUR, ScopeRefused, "service_out_of_scope"),
        (("a2", "mail", "write", "mail/inbox/1"), T0 + HOUR, ScopeRefused, "action_out_of_scope"),
        (("a2", "mail", "read", "mail/outbox/1"), T0 + HOUR, ScopeRefused, "resource_out_of_scope"),
    ],
)
def test_authorise_refusals(
    granted: World, request_: tuple[str, str, str, str], now: int, error: type[AuthorityRefused], code: str
) -> None:
    agent, service, action, resource = request_
    with pytest.raises(error) as refused:
        authorise(granted.fold(), granted.did(agent), service, action, resource, now)
    assert refused.value.reason_code == code


def test_authorise_without_delegation(granted: World) -> None:
    granted.passport("a5")
    with pytest.raises(DelegationRefused) as refused:
        authorise(granted.fold(), granted.did("a5"), "mail", "read", "mail/inbox/1", T0 + HOUR)
    assert refused.value.reason_code == "no_delegation"


@pytest.mark.parametrize("target", ["root", "child", "a1", "op-passport-of-a2"])
def test_authorise_after_a_revocation_anywhere(granted: World, target: str) -> None:
    root, child, passport, _ = _granted(granted)
    if target == "root":
        granted.revoke("op", root)
    elif target == "child":
        granted.revoke("a1", child)
    elif target == "a1":
        granted.revoke("a1", granted.did("a1"))
    else:
        granted.revoke("op", passport)
    state = granted.fold()
    assert all(accepted(state)), state.outcomes[-1].reason
    with pytest.raises(AuthorityRefused) as refused:
        authorise(state, granted.did("a2"), "mail", "read", "mail/inbox/1", T0 + HOUR)
    expected = "revoked" if target == "op-passport-of-a2" else "delegation_revoked"
    assert refused.value.reason_code == expected


def test_authorise_needs_an_approved_unrevoked_claim(granted: World) -> None:
    claim = _granted(granted)[3]
    granted.revoke_claim(claim)
    state = granted.fold()
    assert all(accepted(state))
    with pytest.raises(ClaimRefused, match=f"{claim} \\(revoked\\)") as refused:
        authorise(state, granted.did("a2"), "mail", "read", "mail/inbox/1", T0 + HOUR)
    assert refused.value.reason_code == "no_approved_claim"


def test_the_most_recent_valid_delegation_is_used(granted: World) -> None:
    root2 = granted.delegate("op", "a2", scope=SCOPE, max_depth=0)
    state = granted.fold()
    decision = authorise(state, granted.did("a2"), "mail", "read", "mail/inbox/1", T0 + HOUR)
    assert decision.chain == (root2,)
    # past the child's not_after, only the root delegation still holds
    assert authorise(state, granted.did("a2"), "mail", "read", "mail/inbox/1", T0 + 6 * HOUR).chain == (root2,)
