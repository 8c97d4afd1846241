"""Claims in the fold: submission by the agent, decisions by the namespace owner (with the WebAuthn challenge
bound to the decision), revocation, and every refusal leaving the state unchanged; identity revocation rules."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from schemas.statement import parse_statement
from tests.unit.verifier.identity_world import World, accepted, assert_last_refused, b64url
from verifier.claims import decision_challenge


@pytest.fixture
def world() -> World:
    """Operator ``op`` owns namespace ``acme``; ``op2`` owns ``beta``; agent ``a1`` submitted claim c1 to acme."""
    w = World()
    w.register("op")
    w.register("op2", "beta")
    w.submit("a1")
    return w


def _claim(world: World) -> str:
    """The entry id of claim c1, the fixture's submission."""
    return next(iter(world.claim_namespaces))


def test_submit_approve_revoke(world: World) -> None:
    claim = _claim(world)
    approval = world.approve(claim)  # enrols the human's passkey for acme first
    state = world.fold()
    assert accepted(state) == [True, True, True, True, True]
    c = state.claims[claim]
    assert (c.status, c.agent, c.namespace, c.claim_id, c.service) == ("approved", world.did("a1"), "acme", "c1",
                                                                         "mail")
    decision = c.decision("approval")
    assert decision is not None and decision.entry == approval and decision.decided_by == world.did("human")
    assert decision.webauthn == json.loads(parse_statement(world.entries[-1].statement).payload)["webauthn"]
    assert state.claim_ids == {("acme", "c1"): claim}
    revocation = world.revoke_claim(claim)
    state = world.fold()
    c = state.claims[claim]
    assert c.status == "revoked" and c.decision("revocation") is not None
    assert c.decision("revocation").entry == revocation  # type: ignore[union-attr]
    assert state.revoked[claim].entry == revocation


def test_reject(world: World) -> None:
    claim = _claim(world)
    rejection = world.reject(claim)
    c = world.fold().claims[claim]
    assert c.status == "rejected" and c.decision("rejection").entry == rejection  # type: ignore[union-attr]


def test_approval_without_webauthn_by_the_operator(world: World) -> None:
    claim = _claim(world)
    world.add("op", "claim-approval", {"claim": claim, "decided_by": world.did("op")})
    assert world.fold().claims[claim].decision("approval").webauthn is None  # type: ignore[union-attr]


def test_the_challenge_is_sha256_of_the_canonical_decision() -> None:
    """The statement type, its signer and its payload without ``webauthn``; the bytes hashed, written out."""
    payload = {"claim": "ab" * 32, "decided_by": "did:example:h", "webauthn": {"x": "y"}}
    hashed = ('{"iss":"did:example:o","payload":{"claim":"' + "ab" * 32 + '","decided_by":"did:example:h"},'
              '"type":"claim-approval"}').encode()
    digest = hashlib.sha256(hashed).digest()
    challenge = decision_challenge(payload, statement_type="claim-approval", signer="did:example:o")
    assert challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_approval_by_a_non_owner_is_refused(world: World) -> None:
    world.approve(_claim(world), signer="op2")
    assert_last_refused(world, "not-namespace-owner")


def test_approval_twice_is_refused(world: World) -> None:
    claim = _claim(world)
    world.approve(claim)
    world.approve(claim)
    assert_last_refused(world, "claim-not-pending")


def test_rejection_after_approval_is_refused(world: World) -> None:
    claim = _claim(world)
    world.approve(claim)
    world.reject(claim)
    assert_last_refused(world, "claim-not-pending")


def test_revoking_a_claim_that_is_not_approved_is_refused(world: World) -> None:
    world.revoke_claim(_claim(world))
    assert_last_refused(world, "claim-not-pending")


def test_generic_revocation_of_a_claim_by_the_owner_only(world: World) -> None:
    claim = _claim(world)
    world.approve(claim)
    world.revoke("op2", claim)
    assert_last_refused(world, "not-namespace-owner")
    world.entries.pop()
    world.revoke("op", claim)
    state = world.fold()
    assert all(accepted(state)) and state.claims[claim].status == "revoked"
    world.revoke_claim(claim)
    assert_last_refused(world, "claim-not-pending")


def test_claim_id_replay_is_refused(world: World) -> None:
    claim = _claim(world)
    world.submit("a1", service="files")  # same claim_id c1, a new statement
    assert_last_refused(world, "claim-id-used")
    assert world.fold().claim_ids == {("acme", "c1"): claim}  # the first submission keeps the claim_id
    world.entries.pop()
    world.submit("a1", namespace="beta")  # the same claim_id in another namespace is another claim
    assert all(accepted(world.fold()))


def test_submission_not_by_the_agent_is_refused(world: World) -> None:
    world.submit("a2", "c2", signer="a1")  # iss a2, signed by a1
    assert_last_refused(world, "signer-key-mismatch")
    world.entries.pop()
    world.add("a1", "claim-submission", {"claim_id": "c2", "agent": world.did("a2"), "namespace": "acme",
                                         "service": "mail", "scope": {"services": [], "actions": [], "resources": []}})
    assert_last_refused(world, "claim-issuer-mismatch")


def test_submission_to_an_unknown_namespace_is_refused(world: World) -> None:
    world.submit("a1", "c2", "nowhere")
    assert_last_refused(world, "namespace-unknown")


def test_submission_by_a_revoked_agent_is_refused(world: World) -> None:
    world.revoke("a1", world.did("a1"))
    world.submit("a1", "c2")
    assert_last_refused(world, "signer-revoked")


def test_approval_of_a_revoked_agents_claim_is_refused(world: World) -> None:
    claim = _claim(world)
    world.revoke("a1", world.did("a1"))
    world.approve(claim)
    assert_last_refused(world, "agent-revoked")


def test_approval_decided_by_a_revoked_human_is_refused(world: World) -> None:
    claim = _claim(world)
    world.enrol()
    world.revoke("human", world.did("human"), "keyCompromise")
    world.approve(claim)
    assert_last_refused(world, "decider-revoked")


def test_approval_of_an_unknown_claim_is_refused(world: World) -> None:
    world.approve("ab" * 32)
    assert_last_refused(world, "claim-unknown")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"challenge": b64url(b"\x00" * 32)}, "webauthn-challenge-mismatch"),
        ({"webauthn_type": "webauthn.create"}, "webauthn-type-mismatch"),
    ],
)
def test_webauthn_challenge_must_bind_the_decision(world: World, change: dict[str, str], code: str) -> None:
    world.approve(_claim(world), **change)
    assert_last_refused(world, code)


def test_webauthn_over_another_decision_is_refused(world: World) -> None:
    claim = _claim(world)
    payload = world.approval(claim)
    payload["note"] = "changed after the human signed"
    world.enrol()
    world.add("op", "claim-approval", payload)
    assert_last_refused(world, "webauthn-challenge-mismatch")


def test_webauthn_client_data_must_be_json(world: World) -> None:
    payload = world.approval(_claim(world))
    payload["webauthn"]["client_data_json"] = b64url(b"not json")
    world.enrol()
    world.add("op", "claim-approval", payload)
    assert_last_refused(world, "webauthn-assertion-malformed")
    world.entries.pop()
    payload["webauthn"]["client_data_json"] = "A"  # not even base64url
    world.add("op", "claim-approval", payload)
    assert_last_refused(world, "webauthn-assertion-malformed")


# --- revocation of identities and keys ----------------------------------------------------------------------


def test_a_namespace_owner_cannot_revoke_an_agent_that_claimed_in_it(world: World) -> None:
    """Regression: the owner of a namespace an agent claimed in used to be able to revoke the agent's DID. It
    decides the claim (its own grant), never the agent's identity."""
    world.revoke("op2", world.did("a1"))  # op2's namespace has no claim by a1
    assert_last_refused(world, "did-revocation-not-entitled")
    world.entries.pop()
    world.revoke("op", world.did("a1"))  # op's namespace has a1's claim: still not entitled
    assert_last_refused(world, "did-revocation-not-entitled")
    world.entries.pop()
    claim = _claim(world)
    world.reject(claim)  # what the owner may do
    world.submit("a1", "c2")  # a1 still acts
    state = world.fold()
    assert all(accepted(state)) and state.claims[claim].status == "rejected" and world.did("a1") not in state.revoked


def test_agent_revocation_by_the_operator_it_consented_to_only(world: World) -> None:
    world.passport("a2", "op2")  # a2 consents to op2 first
    world.revoke("op", world.did("a2"))
    assert_last_refused(world, "did-revocation-not-entitled")
    world.entries.pop()
    world.revoke("op2", world.did("a2"))
    state = world.fold()
    assert all(accepted(state)) and state.revoked[world.did("a2")].by == world.did("op2")


def test_a_revoked_agent_cannot_act(world: World) -> None:
    world.revoke("a1", world.mk("a1"), "keyCompromise")  # a did:key agent revokes its only key
    world.submit("a1", "c2")
    assert_last_refused(world, "signer-key-revoked")
    world.entries.pop()
    world.revoke("a1", world.did("a1"))
    assert_last_refused(world, "signer-key-revoked")


def test_a_revoked_operator_cannot_decide(world: World) -> None:
    claim = _claim(world)
    world.enrol()
    world.revoke("op", world.did("op"), "cessationOfOperation")
    world.approve(claim)
    assert_last_refused(world, "signer-revoked")
    world.entries.pop()
    world.reject(claim)
    assert_last_refused(world, "signer-revoked")


def test_revocation_of_an_unknown_entry_is_refused(world: World) -> None:
    world.revoke("op", "ab" * 32)
    assert_last_refused(world, "revocation-target-unknown")


def test_revoking_twice_is_refused(world: World) -> None:
    world.revoke("a1", world.did("a1"))
    world.revoke("op", world.did("a1"))
    assert_last_refused(world, "already-revoked")


# --- decisions in a human's name carry the human's assertion ------------------------------------------------------


@pytest.mark.parametrize("kind", ["approval", "rejection", "revocation"])
def test_a_decision_in_a_humans_name_without_the_assertion_is_refused(world: World, kind: str) -> None:
    """The namespace key alone never speaks for a human: decided_by other than the signer needs ``webauthn``."""
    claim = _claim(world)
    world.enrol()
    if kind == "revocation":
        world.approve(claim)
    world.add("op", f"claim-{kind}", world.decision(claim, kind, assertion=False))
    assert_last_refused(world, "human-assertion-missing")
    world.entries.pop()
    world.add("op", f"claim-{kind}", world.decision(claim, kind, "someone", assertion=False))  # not even enrolled
    assert_last_refused(world, "human-assertion-missing")
    world.entries.pop()
    world.add("op", f"claim-{kind}", world.decision(claim, kind, "op2", assertion=False))  # another operator
    assert_last_refused(world, "human-assertion-missing")


@pytest.mark.parametrize(("kind", "status"), [("rejection", "rejected"), ("revocation", "revoked")])
def test_a_human_rejection_or_revocation_with_its_assertion_is_accepted(world: World, kind: str,
                                                                        status: str) -> None:
    claim = _claim(world)
    enrolment = world.enrol()
    if kind == "revocation":
        world.approve(claim)
    entry = world.add("op", f"claim-{kind}", world.decision(claim, kind))
    state = world.fold()
    assert all(accepted(state)) and state.claims[claim].status == status
    decision = state.claims[claim].decision(kind)  # type: ignore[arg-type]
    assert decision is not None and decision.entry == entry and decision.decided_by == world.did("human")
    assert decision.enrolment == enrolment and decision.webauthn is not None
    assert state.sign_counts[enrolment] == decision.sign_count == world.passkey().sign_count
    if kind == "revocation":
        assert state.revoked[claim].entry == entry


def test_a_human_rejection_by_a_passkey_not_enrolled_is_refused(world: World) -> None:
    world.add("op", "claim-rejection", world.decision(_claim(world)))  # the human's passkey was never enrolled
    assert_last_refused(world, "webauthn-credential-unknown")


def test_a_human_rejection_changed_after_the_human_signed_is_refused(world: World) -> None:
    world.enrol()
    payload = world.decision(_claim(world))
    payload["reason"] = "not what the human saw"
    world.add("op", "claim-rejection", payload)
    assert_last_refused(world, "webauthn-challenge-mismatch")


def test_a_claim_is_not_approved_by_its_own_agent(world: World) -> None:
    """Four eyes: the agent's own DID enrolled as an approver of the namespace (by the owner, with a passkey the
    agent holds, whose did:key is the agent's DID: the only way the agent's DID can be enrolled) does not approve
    the agent's claim; nor does the owner approve a claim it submitted itself."""
    claim = _claim(world)
    world.enrol("a1")  # the claiming agent's DID (its passkey's did:key), an approver of acme
    world.add("op", "claim-approval", world.approval(claim, "a1"))
    assert_last_refused(world, "claim-self-approval")
    own = world.submit("op", "c2")  # the namespace owner claims in its own namespace
    world.add("op", "claim-approval", {"claim": own, "decided_by": world.did("op")})
    assert_last_refused(world, "claim-self-approval")
    world.reject(own)  # withdrawing or refusing one's own claim needs no other eyes
    assert world.fold().claims[own].status == "rejected"
