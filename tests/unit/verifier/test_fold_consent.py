"""Agent consent in the fold: an agent accepts an operator (``agent-consent``, signed by the agent); only that
operator may then issue it a passport, grant it a root delegation or revoke its DID; the agent alone withdraws its
consent (a ``revocation`` naming the consent's entry) or gives it to another operator instead."""

from __future__ import annotations

import pytest

from tests.unit.verifier.identity_world import T0, World, accepted, assert_last_refused
from verifier.identity_state import AgentConsent


@pytest.fixture
def world() -> World:
    """Operators ``op`` (acme) and ``op2`` (beta); no agent has consented to anything yet."""
    w = World()
    w.register("op")
    w.register("op2", "beta")
    return w


def _grant(world: World, grant: str, operator: str = "op") -> None:
    """A passport or a root delegation from ``operator`` to agent a1, without a consent of its own."""
    if grant == "passport":
        world.passport("a1", operator, consent=False)
    else:
        world.delegate(operator, "a1", consent=False)


GRANTS = ("passport", "root delegation")


# --- giving consent --------------------------------------------------------------------------------------------


def test_the_agent_consents_to_an_operator(world: World) -> None:
    entry = world.consent("a1", "op")
    state = world.fold()
    assert all(accepted(state))
    index = next(o.index for o in state.outcomes if o.entry == entry)
    consent = AgentConsent(entry, index, world.did("a1"), world.did("op"), world.consent_clock)
    assert state.consents == {world.did("a1"): consent} and state.consent_entries == {entry: consent}
    assert state.bound_operator(world.did("a1")) == world.did("op")


def test_a_newer_consent_replaces_the_older_and_history_is_kept(world: World) -> None:
    first = world.consent("a1", "op")
    second = world.consent("a1", "op2")
    state = world.fold()
    assert all(accepted(state)) and state.bound_operator(world.did("a1")) == world.did("op2")
    assert state.consents[world.did("a1")].entry == second and set(state.consent_entries) == {first, second}


@pytest.mark.parametrize("signer", ["op", "a2"])
def test_a_consent_not_signed_by_the_agent_is_refused(world: World, signer: str) -> None:
    """Neither the operator nor anyone else consents in the agent's name."""
    world.add(signer, "agent-consent", {"agent": world.did("a1"), "operator": world.did("op")})
    assert_last_refused(world, "consent-issuer-mismatch")


def test_a_consent_in_the_agents_name_signed_by_another_key_is_refused(world: World) -> None:
    world.consent("a1", "op", signer="a2")  # iss a1, signed by a2
    assert_last_refused(world, "signer-key-mismatch")


def test_a_consent_to_an_unknown_operator_is_refused(world: World) -> None:
    world.consent("a1", "stranger")
    assert_last_refused(world, "consent-operator-unknown")


def test_a_consent_to_a_revoked_operator_is_refused(world: World) -> None:
    world.revoke("op", world.did("op"), "cessationOfOperation")
    world.consent("a1", "op")
    assert_last_refused(world, "consent-operator-revoked")


def test_a_revoked_agent_cannot_consent(world: World) -> None:
    world.revoke("a1", world.did("a1"))
    world.consent("a1", "op")
    assert_last_refused(world, "signer-revoked")


# --- what consent allows ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("grant", GRANTS)
def test_a_grant_without_consent_is_refused(world: World, grant: str) -> None:
    _grant(world, grant)
    assert_last_refused(world, "consent-missing")
    world.entries.pop()
    world.consent("a1", "op")
    _grant(world, grant)
    assert all(accepted(world.fold()))


@pytest.mark.parametrize("grant", GRANTS)
def test_a_grant_after_the_agent_consented_to_another_operator_is_refused(world: World, grant: str) -> None:
    world.consent("a1", "op")
    world.consent("a1", "op2")  # the newest consent counts
    _grant(world, grant, "op")
    assert_last_refused(world, "consent-missing")
    world.entries.pop()
    _grant(world, grant, "op2")
    assert all(accepted(world.fold()))


@pytest.mark.parametrize("grant", GRANTS)
def test_a_grant_after_the_agent_withdrew_its_consent_is_refused(world: World, grant: str) -> None:
    consent = world.consent("a1", "op")
    world.revoke("a1", consent)
    _grant(world, grant)
    assert_last_refused(world, "consent-missing")
    world.entries.pop()
    # consenting again takes a new statement: the same one again would be the withdrawn entry itself
    again = world.consent("a1", "op", iat=T0 + 60)
    _grant(world, grant)
    state = world.fold()
    assert all(accepted(state)) and consent in state.revoked and state.consents[world.did("a1")].entry == again


def test_a_child_delegation_needs_no_consent_of_the_delegate(world: World) -> None:
    """Consent binds an agent to an operator; delegating further down a chain is the parent agent's grant."""
    root = world.delegate("op", "a1")
    world.delegate("a1", "a2", root, scope={"services": ["mail"], "actions": ["read"], "resources": ["mail/*"]})
    state = world.fold()
    assert all(accepted(state)) and world.did("a2") not in state.consents


# --- withdrawing consent ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("revoker", ["op", "op2", "a2"])
def test_only_the_agent_withdraws_its_consent(world: World, revoker: str) -> None:
    """Not the operator it consented to, not another operator, not another agent."""
    consent = world.consent("a1", "op")
    world.revoke(revoker, consent)
    assert_last_refused(world, "consent-revocation-not-entitled")
    world.entries.pop()
    world.revoke("a1", consent)
    state = world.fold()
    assert all(accepted(state)) and state.bound_operator(world.did("a1")) is None


def test_withdrawing_a_consent_twice_is_refused(world: World) -> None:
    consent = world.consent("a1", "op")
    world.revoke("a1", consent)
    world.revoke("a1", consent)
    assert_last_refused(world, "already-revoked")


def test_withdrawing_an_older_consent_leaves_the_newer(world: World) -> None:
    older = world.consent("a1", "op")
    world.consent("a1", "op2")
    world.revoke("a1", older)
    state = world.fold()
    assert all(accepted(state)) and state.bound_operator(world.did("a1")) == world.did("op2")


# --- revoking the agent's DID: itself, or the operator it consented to -------------------------------------------


def test_the_operator_the_agent_consented_to_revokes_its_did(world: World) -> None:
    world.consent("a1", "op")
    world.revoke("op2", world.did("a1"))
    assert_last_refused(world, "did-revocation-not-entitled")
    world.entries.pop()
    revocation = world.revoke("op", world.did("a1"))
    state = world.fold()
    assert all(accepted(state)) and state.revoked[world.did("a1")].entry == revocation


def test_a_passport_operator_the_agent_left_cannot_revoke_its_did(world: World) -> None:
    """Regression: issuing an agent's passport used to entitle an operator to revoke the agent's DID. It does so
    only while the agent's consent names it; it can always revoke its own passport."""
    passport = world.passport("a1", "op")
    world.consent("a1", "op2")
    world.revoke("op", world.did("a1"))
    assert_last_refused(world, "did-revocation-not-entitled")
    world.entries.pop()
    world.revoke("op", passport)
    world.revoke("op2", world.did("a1"))
    state = world.fold()
    assert all(accepted(state)) and passport in state.revoked and world.did("a1") in state.revoked


def test_a_passport_operator_cannot_revoke_the_did_once_consent_is_withdrawn(world: World) -> None:
    world.passport("a1", "op")
    world.revoke("a1", world.fold().consents[world.did("a1")].entry)
    world.revoke("op", world.did("a1"))
    assert_last_refused(world, "did-revocation-not-entitled")

