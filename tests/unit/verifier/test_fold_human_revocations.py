"""A revocation a human decided in an operator's name (the console's agent revocation): it names the human
(``decided_by``) and carries their passkey assertion over the payload, by a passkey enrolled in the signer's
namespace; the fold checks it offline as it checks a claim decision's, and records who decided."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.verifier.identity_world import World, accepted, assert_last_refused
from verifier.claims import decision_digest


@pytest.fixture
def world() -> World:
    """``op`` owns acme and ``op2`` beta; agent a1 consented to op and holds its passport; op enrolled ``human``'s
    passkey for acme, op2 enrolled ``human2``'s for beta."""
    w = World()
    w.register("op")
    w.register("op2", "beta")
    w.passport("a1")
    w.enrol()
    w.enrol("human2", "beta")
    return w


def _payload(world: World, target: str, human: str = "human", *, decided_by: str | None = None,
             assertion: bool = True, signer: str = "op") -> dict[str, Any]:
    payload: dict[str, Any] = {"target": target, "reason": "keyCompromise",
                               "decided_by": decided_by or world.did(human)}
    if assertion:
        challenge = decision_digest(payload, statement_type="revocation", signer=world.did(signer))
        payload["webauthn"] = world.passkey(human).get(challenge).to_json()
    return payload


def test_a_human_revokes_an_agent_in_the_operators_name(world: World) -> None:
    agent = world.did("a1")
    world.add("op", "revocation", _payload(world, agent))
    state = world.fold()
    assert all(accepted(state)), [o.reason for o in state.outcomes if not o.accepted]
    revocation = state.revoked[agent]
    assert (revocation.by, revocation.decided_by) == (world.did("op"), world.did("human"))
    enrolment = next(iter(a for a in state.approvers.values() if a.approver == world.did("human")))
    assert state.sign_counts[enrolment.entry] > 0  # the counter moved: the same assertion cannot serve twice


def test_the_signers_own_revocation_needs_no_assertion(world: World) -> None:
    world.add("op", "revocation", {"target": world.did("a1"), "reason": "superseded", "decided_by": world.did("op")})
    world.revoke("op", world.did("a1"))  # already revoked: refused, which shows the first was accepted
    assert_last_refused(world, "already-revoked")
    assert world.fold().revoked[world.did("a1")].decided_by == ""


def test_a_revocation_in_a_humans_name_without_their_assertion_is_refused(world: World) -> None:
    world.add("op", "revocation", _payload(world, world.did("a1"), assertion=False))
    assert_last_refused(world, "human-assertion-missing")


def test_a_passkey_of_another_namespace_cannot_decide_for_the_operator(world: World) -> None:
    world.add("op", "revocation", _payload(world, world.did("a1"), "human2"))
    assert_last_refused(world, "webauthn-credential-unknown")


def test_decided_by_must_be_the_human_whose_passkey_signed(world: World) -> None:
    world.add("op", "revocation", _payload(world, world.did("a1"), decided_by=world.did("op2")))
    assert_last_refused(world, "webauthn-approver-mismatch")


def test_an_assertion_over_another_revocation_is_refused(world: World) -> None:
    payload = _payload(world, world.did("a1"))
    payload["reason"] = "superseded"  # signed over keyCompromise
    world.add("op", "revocation", payload)
    assert_last_refused(world, "webauthn-challenge-mismatch")


def test_a_replayed_assertion_is_refused(world: World) -> None:
    """The same assertion again (for another target): its signature counter is not above the logged one."""
    first = _payload(world, world.did("a1"))
    world.add("op", "revocation", first)
    world.passport("a2")
    second = {**first, "target": world.did("a2")}
    world.add("op", "revocation", second)
    state = world.fold()
    assert not state.outcomes[-1].accepted and state.outcomes[-1].code.startswith("webauthn-"), state.outcomes[-1]


def test_a_signer_without_a_namespace_has_no_human_approvers(world: World) -> None:
    # the agent revoking itself, "decided by" human
    world.add("a1", "revocation", _payload(world, world.did("a1"), signer="a1"))
    assert_last_refused(world, "not-namespace-owner")


def test_a_revoked_human_decides_nothing(world: World) -> None:
    world.revoke("human", world.did("human"))  # the human's DID, revoked by itself
    world.add("op", "revocation", _payload(world, world.did("a1")))
    assert_last_refused(world, "decider-revoked")
