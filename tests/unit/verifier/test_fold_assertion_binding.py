"""What a human's passkey assertion is bound to: a claim decision, a revocation or an approver enrolment is signed
over its statement type and its signer as well as its payload, so an assertion the human made for one statement
cannot be logged as another with the same payload (a rejection as a claim revocation), nor by another operator
that enrolled the same passkey (a revocation "decided by" the human in a namespace they did not decide for)."""

from __future__ import annotations

from typing import Any

from tests.unit.verifier.identity_world import World, assert_last_refused
from verifier.claims import decision_digest


def _signed(world: World, payload: dict[str, Any], stype: str, signer: str, human: str = "human") -> dict[str, Any]:
    """``payload`` with ``human``'s assertion over what the honest flow shows them: the ``stype`` statement that
    ``signer`` is to log."""
    challenge = decision_digest(payload, statement_type=stype, signer=world.did(signer))
    return {**payload, "webauthn": world.passkey(human).get(challenge).to_json()}


def test_a_humans_rejection_cannot_be_logged_as_their_claim_revocation() -> None:
    """The human rejects claim c1 with a reason that is also an RFC 5280 reason code (the issuer's default), so
    the rejection's payload equals a claim revocation's. The owner approves the claim itself, then logs the
    human's rejection assertion as a claim-revocation: the log would say the human revoked an approved claim."""
    world = World()
    world.register("op")
    claim = world.submit("a1")
    world.enrol()
    rejection = _signed(world, {"claim": claim, "decided_by": world.did("human"), "reason": "privilegeWithdrawn"},
                        "claim-rejection", "op")
    world.add("op", "claim-approval", {"claim": claim, "decided_by": world.did("op")})
    world.add("op", "claim-revocation", rejection)
    assert_last_refused(world, "webauthn-challenge-mismatch")


def test_a_humans_revocation_for_one_operator_cannot_be_logged_by_another() -> None:
    """``human`` approves for both acme (op) and beta (op2) with one passkey. They revoke agent a1 in op's name
    while a1 is bound to op; op does not log it, a1 then consents to op2, and op2 logs the human's assertion as its
    own revocation of a1 "decided by" the human, who never decided anything for op2."""
    world = World()
    world.register("op")
    world.register("op2", "beta")
    world.enrol()
    world.enrol("human", "beta")
    world.passport("a1")
    decided_for_op = _signed(world, {"target": world.did("a1"), "reason": "keyCompromise",
                                     "decided_by": world.did("human")}, "revocation", "op")
    world.consent("a1", "op2")
    world.add("op2", "revocation", decided_for_op)
    assert_last_refused(world, "webauthn-challenge-mismatch")


def test_the_same_assertion_is_accepted_as_the_statement_it_was_made_for() -> None:
    """The control of both: the rejection logged as a rejection, the revocation by op while a1 is bound to op."""
    world = World()
    world.register("op")
    claim = world.submit("a1")
    world.enrol()
    world.passport("a2")
    world.add("op", "claim-rejection", _signed(world, {"claim": claim, "decided_by": world.did("human"),
                                                      "reason": "privilegeWithdrawn"}, "claim-rejection", "op"))
    world.add("op", "revocation", _signed(world, {"target": world.did("a2"), "reason": "keyCompromise",
                                                  "decided_by": world.did("human")}, "revocation", "op"))
    state = world.fold()
    assert all(o.accepted for o in state.outcomes), [o.reason for o in state.outcomes if not o.accepted]
    assert state.claims[claim].status == "rejected" and state.revoked[world.did("a2")].decided_by == world.did("human")
