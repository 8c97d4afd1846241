"""Claims in the fold: submission by the agent, decisions by the namespace owner (with the WebAuthn challenge
bound to the decision), revocation, and every refusal leaving the state unchanged; identity revocation rules."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from schemas.identity_statements import canonical_json
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
    return world.fold().outcomes[2].entry


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
    payload = {"claim": "ab" * 32, "decided_by": "did:example:h", "webauthn": {"x": "y"}}
    digest = hashlib.sha256(canonical_json({"claim": "ab" * 32, "decided_by": "did:example:h"})).digest()
    assert decision_challenge(payload) == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_approval_by_a_non_owner_is_refused(world: World) -> None:
    world.approve(_claim(world), signer="op2")
    assert_last_refused(world, "is not the owner of namespace 'acme'")


def test_approval_twice_is_refused(world: World) -> None:
    claim = _claim(world)
    world.approve(claim)
    world.approve(claim)
    assert_last_refused(world, f"claim {claim} is approved, not submitted")


def test_rejection_after_approval_is_refused(world: World) -> None:
    claim = _claim(world)
    world.approve(claim)
    world.reject(claim)
    assert_last_refused(world, "is approved, not submitted")


def test_revoking_a_claim_that_is_not_approved_is_refused(world: World) -> None:
    world.revoke_claim(_claim(world))
    assert_last_refused(world, "is submitted, not approved")


def test_generic_revocation_of_a_claim_by_the_owner_only(world: World) -> None:
    claim = _claim(world)
    world.approve(claim)
    world.revoke("op2", claim)
    assert_last_refused(world, "is not the owner of namespace 'acme'")
    world.entries.pop()
    world.revoke("op", claim)
    state = world.fold()
    assert all(accepted(state)) and state.claims[claim].status == "revoked"
    world.revoke_claim(claim)
    assert_last_refused(world, "is revoked, not approved")


def test_claim_id_replay_is_refused(world: World) -> None:
    claim = _claim(world)
    world.submit("a1", service="files")  # same claim_id c1, a new statement
    assert_last_refused(world, f"claim_id 'c1' was already submitted in 'acme' (entry {claim})")
    world.entries.pop()
    world.submit("a1", namespace="beta")  # the same claim_id in another namespace is another claim
    assert all(accepted(world.fold()))


def test_submission_not_by_the_agent_is_refused(world: World) -> None:
    world.submit("a2", "c2", signer="a1")  # iss a2, signed by a1
    assert_last_refused(world, "not signed by the key current for")
    world.entries.pop()
    world.add("a1", "claim-submission", {"claim_id": "c2", "agent": world.did("a2"), "namespace": "acme",
                                         "service": "mail", "scope": {"services": [], "actions": [], "resources": []}})
    assert_last_refused(world, "is not the claiming agent")


def test_submission_to_an_unknown_namespace_is_refused(world: World) -> None:
    world.submit("a1", "c2", "nowhere")
    assert_last_refused(world, "namespace 'nowhere' is not registered")


def test_submission_by_a_revoked_agent_is_refused(world: World) -> None:
    world.revoke("a1", world.did("a1"))
    world.submit("a1", "c2")
    assert_last_refused(world, "was revoked at entry 3")


def test_approval_of_a_revoked_agents_claim_is_refused(world: World) -> None:
    claim = _claim(world)
    world.revoke("a1", world.did("a1"))
    world.approve(claim)
    assert_last_refused(world, "the claiming agent was revoked")


def test_approval_decided_by_a_revoked_human_is_refused(world: World) -> None:
    claim = _claim(world)
    world.revoke("human", world.did("human"), "keyCompromise")
    world.approve(claim)
    assert_last_refused(world, f"decided_by {world.did('human')} was revoked")


def test_approval_of_an_unknown_claim_is_refused(world: World) -> None:
    world.approve("ab" * 32)
    assert_last_refused(world, "is not an accepted claim submission")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"challenge": b64url(b"\x00" * 32)}, "the webauthn challenge is not"),
        ({"webauthn_type": "webauthn.create"}, "not webauthn.get"),
    ],
)
def test_webauthn_challenge_must_bind_the_decision(world: World, change: dict[str, str], reason: str) -> None:
    world.approve(_claim(world), **change)
    assert_last_refused(world, reason)


def test_webauthn_over_another_decision_is_refused(world: World) -> None:
    claim = _claim(world)
    payload = world.approval(claim)
    payload["note"] = "changed after the human signed"
    world.enrol()
    world.add("op", "claim-approval", payload)
    assert_last_refused(world, "the webauthn challenge is not")


def test_webauthn_client_data_must_be_json(world: World) -> None:
    payload = world.approval(_claim(world))
    payload["webauthn"]["client_data_json"] = b64url(b"not json")
    world.enrol()
    world.add("op", "claim-approval", payload)
    assert_last_refused(world, "client_data_json is not base64url JSON")
    world.entries.pop()
    payload["webauthn"]["client_data_json"] = "A"  # not even base64url
    world.add("op", "claim-approval", payload)
    assert_last_refused(world, "client_data_json is not unpadded base64url")


# --- revocation of identities and keys ----------------------------------------------------------------------


def test_agent_revocation_by_the_namespace_owner_it_claimed_in(world: World) -> None:
    world.revoke("op2", world.did("a1"))  # op2's namespace has no claim by a1
    assert_last_refused(world, "an identity can only be revoked by itself")
    world.entries.pop()
    world.revoke("op", world.did("a1"))
    state = world.fold()
    assert all(accepted(state)) and state.revoked[world.did("a1")].by == world.did("op")


def test_agent_revocation_by_its_passport_operator_only(world: World) -> None:
    world.passport("a2", "op2")
    world.revoke("op", world.did("a2"))
    assert_last_refused(world, "an identity can only be revoked by itself")
    world.entries.pop()
    world.revoke("op2", world.did("a2"))
    assert all(accepted(world.fold()))


def test_a_revoked_agent_cannot_act(world: World) -> None:
    world.revoke("a1", world.mk("a1"), "keyCompromise")  # a did:key agent revokes its only key
    world.submit("a1", "c2")
    assert_last_refused(world, "the key current for signer")
    world.entries.pop()
    world.revoke("a1", world.did("a1"))
    assert_last_refused(world, "the key current for signer")


def test_a_revoked_operator_cannot_decide(world: World) -> None:
    claim = _claim(world)
    world.revoke("op", world.did("op"), "cessationOfOperation")
    world.approve(claim)
    assert_last_refused(world, f"signer {world.did('op')} was revoked")


def test_revocation_of_an_unknown_entry_is_refused(world: World) -> None:
    world.revoke("op", "ab" * 32)
    assert_last_refused(world, "is not a passport, delegation or claim on this log")


def test_revoking_twice_is_refused(world: World) -> None:
    world.revoke("a1", world.did("a1"))
    world.revoke("op", world.did("a1"))
    assert_last_refused(world, "is already revoked")
