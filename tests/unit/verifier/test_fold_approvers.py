"""Human approvers in the fold: passkeys enrolled by a namespace's owner (``approver-enrolment``), approvals whose
assertion is verified offline against the enrolment, revocation of a credential or of the approver, and every
refusal kept as a rejected entry with the state unchanged."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.verifier.identity_world import World, accepted, assert_last_refused
from tests.webauthn_authenticator import SoftwareAuthenticator
from verifier.claims import check_human_decision
from verifier.fold import Fold
from verifier.webauthn import ALG_EDDSA, ALG_ES256, ALG_RS256, FLAG_UP, FLAG_UV


@pytest.fixture
def world() -> World:
    """``op`` owns acme, ``op2`` owns beta; agent a1 submitted claim c1 to acme; op enrolled ``human``'s passkey."""
    w = World()
    w.register("op")
    w.register("op2", "beta")
    w.submit("a1")
    w.enrol()
    return w


def _claim(world: World) -> str:
    return world.fold().outcomes[2].entry


def _enrolment(world: World) -> str:
    return world.fold().outcomes[3].entry


@pytest.mark.parametrize("alg", [ALG_ES256, ALG_EDDSA, ALG_RS256], ids=["ES256", "EdDSA", "RS256"])
def test_an_enrolled_passkey_approves_offline(alg: int) -> None:
    world = World()
    world.register("op")
    claim = world.submit("a1")
    world.passkey("human", alg=alg)
    enrolment = world.enrol()
    approval = world.approve(claim)
    state = world.fold()
    assert accepted(state) == [True, True, True, True]
    approver = state.approvers[enrolment]
    assert (approver.namespace, approver.approver, approver.enrolled_by) == ("acme", world.did("human"),
                                                                             world.did("op"))
    assert state.approver_credentials == {("acme", approver.credential_id): enrolment}
    decision = state.claims[claim].decision("approval")
    assert decision is not None and decision.entry == approval and decision.decided_by == world.did("human")
    assert decision.webauthn is not None and decision.enrolment == enrolment
    assert decision.sign_count == 1 and state.sign_counts == {enrolment: 1}
    payload = {"claim": claim, "decided_by": world.did("human"), "note": "ok", "webauthn": decision.webauthn}
    # what a regulator re-checks from the log: against the state the approval met (its counter is then new)
    before = Fold().apply_all(world.entries[: state.claims[claim].decisions[-1].index])
    assert check_human_decision(before, "acme", payload) == (approver, 1)


def test_an_approval_without_webauthn_is_the_owners_decision(world: World) -> None:
    claim = _claim(world)
    world.add("op", "claim-approval", {"claim": claim, "decided_by": world.did("op"), "note": "by the operator"})
    assert world.fold().claims[claim].status == "approved"


# --- enrolment ---------------------------------------------------------------------------------------------------


def test_enrolment_by_a_non_owner_is_refused(world: World) -> None:
    world.enrol("human2", "acme", owner="op2")
    assert_last_refused(world, "is not the owner of namespace 'acme'; only")


def test_enrolment_in_an_unknown_namespace_is_refused(world: World) -> None:
    world.enrol("human2", "nowhere", owner="op")
    assert_last_refused(world, "namespace 'nowhere' is not registered")


def test_a_credential_is_enrolled_once_per_namespace(world: World) -> None:
    world.enrol()
    assert_last_refused(world, f"is already enrolled in 'acme' (entry {_enrolment(world)})")
    world.entries.pop()
    world.enrol(approver=world.did("someone-else"))  # the same credential for another approver: still the same
    assert_last_refused(world, "is already enrolled in 'acme'")
    world.entries.pop()
    world.enrol("human", "beta")  # the same passkey approves for another namespace, enrolled by its owner
    assert all(accepted(world.fold()))


def test_a_revoked_approver_cannot_be_enrolled(world: World) -> None:
    world.revoke("human2", world.did("human2"))
    world.enrol("human2")
    assert_last_refused(world, f"approver {world.did('human2')} was revoked")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"public_key": "pQECAyYgASFY"}, "cannot verify assertions"),  # a truncated COSE_Key
        ({"public_key": "oQEB"}, "alg (3)"),  # {1: 1}: no alg
        ({"origin": "https://evil.example"}, "is not the host of origin"),
        ({"origin": "http://issuer.example"}, "neither https nor http://localhost"),
        ({"credential_id": "A" * 25}, "not unpadded base64url"),  # 25 characters cannot be base64url
    ],
)
def test_an_enrolment_that_cannot_verify_assertions_is_refused(world: World, changes: dict[str, str],
                                                                 reason: str) -> None:
    world.enrol("human2", **changes)
    assert_last_refused(world, reason)


# --- approvals ---------------------------------------------------------------------------------------------------


def test_a_passkey_not_enrolled_cannot_approve(world: World) -> None:
    world.approve(_claim(world), human="human2", enrol=False)
    assert_last_refused(world, "WebAuthn credential not enrolled")


def test_a_passkey_enrolled_elsewhere_cannot_approve(world: World) -> None:
    world.enrol("human2", "beta")
    world.approve(_claim(world), human="human2", enrol=False)  # a claim in acme
    assert_last_refused(world, "is not an enrolled approver of 'acme'")


def test_decided_by_must_be_the_enrolled_approver(world: World) -> None:
    world.approve(_claim(world), decided_by=world.did("op"))
    outcome = assert_last_refused(world, f"decided_by {world.did('op')} is not {world.did('human')}")
    assert "WebAuthn approver mismatch" in outcome.reason


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"origin": "https://evil.example"}, "WebAuthn origin mismatch"),
        ({"rp_id": "evil.example"}, "WebAuthn RP ID hash mismatch"),
        ({"flags": FLAG_UV}, "WebAuthn user presence flag not set"),
        ({"flags": FLAG_UP}, "WebAuthn user verification flag not set"),
        ({"webauthn_type": "webauthn.create"}, "not webauthn.get"),
    ],
)
def test_an_assertion_that_does_not_hold_is_refused(world: World, changes: dict[str, Any], reason: str) -> None:
    world.approve(_claim(world), **changes)
    assert_last_refused(world, reason)


def test_a_bad_signature_is_refused(world: World) -> None:
    payload = world.approval(_claim(world))
    signature = payload["webauthn"]["signature"]
    payload["webauthn"]["signature"] = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    world.add("op", "claim-approval", payload)
    assert_last_refused(world, "WebAuthn signature invalid")


def test_another_passkey_of_the_same_human_is_refused(world: World) -> None:
    """An assertion by a passkey that claims the enrolled credential id but holds another key."""
    enrolled = world.passkey("human")
    world.passkeys["human"] = SoftwareAuthenticator(credential_id=enrolled.credential_id)
    world.approve(_claim(world))
    assert_last_refused(world, "WebAuthn signature invalid")


def test_the_decision_changed_after_the_human_signed_is_refused(world: World) -> None:
    payload = world.approval(_claim(world))
    payload["note"] = "not what the human saw"
    world.add("op", "claim-approval", payload)
    assert_last_refused(world, "WebAuthn challenge mismatch")


# --- the signature counter (WebAuthn §7.2 step 22) -----------------------------------------------------------------


def test_the_counter_must_grow_from_one_approval_to_the_next(world: World) -> None:
    enrolment = _enrolment(world)
    world.approve(_claim(world))
    world.approve(world.submit("a1", claim_id="c2"))
    state = world.fold()
    assert accepted(state)[-1] and state.sign_counts == {enrolment: 2}
    clone = SoftwareAuthenticator(credential_id=world.passkey().credential_id, key=world.passkey().key,
                                  sign_count=1)  # a copy of the authenticator, made when its counter was 1
    world.passkeys["human"] = clone
    world.approve(world.submit("a1", claim_id="c3"))  # the clone's counter: 2, not above the logged 2
    assert_last_refused(world, "WebAuthn signature counter did not increase")
    world.entries.pop()
    clone.sign_count = 2
    world.approve(world.submit("a1", claim_id="c4"))  # 3: above 2, accepted (the log cannot tell it is a clone)
    assert world.fold().sign_counts == {enrolment: 3}


def test_passkeys_without_a_counter_always_send_zero(world: World) -> None:
    world.passkey().counter = False
    enrolment = _enrolment(world)
    for n in range(2, 5):
        world.approve(world.submit("a1", claim_id=f"c{n}"))
    state = world.fold()
    assert all(accepted(state)) and state.sign_counts == {enrolment: 0}


def test_a_counter_that_starts_again_from_zero_is_refused(world: World) -> None:
    world.approve(_claim(world))  # counter 1
    world.passkey().counter = False
    world.passkey().sign_count = 0
    world.approve(world.submit("a1", claim_id="c2"))
    assert_last_refused(world, "counter is 0, not above 1")


# --- revocation ----------------------------------------------------------------------------------------------------


def test_a_revoked_credential_cannot_approve(world: World) -> None:
    enrolment = _enrolment(world)
    world.revoke("op2", enrolment)
    assert_last_refused(world, "can be revoked only by its namespace's owner or the approver")
    world.entries.pop()
    world.revoke("op", enrolment, "keyCompromise")
    world.approve(_claim(world))
    assert_last_refused(world, f"(enrolment {enrolment}) was revoked at entry 4 (keyCompromise)")
    world.entries.pop()
    world.enrol()  # a revoked credential stays revoked: enrolling it again is a duplicate
    assert_last_refused(world, "is already enrolled in 'acme'")


def test_the_approver_may_revoke_its_own_credential(world: World) -> None:
    world.revoke("human", _enrolment(world))
    world.approve(_claim(world))
    assert_last_refused(world, "WebAuthn credential revoked")


def test_a_revoked_approver_cannot_approve(world: World) -> None:
    world.revoke("op2", world.did("human"))  # op2 did not enrol the human
    assert_last_refused(world, "an identity can only be revoked by itself")
    world.entries.pop()
    world.revoke("op", world.did("human"))  # the owner who enrolled it may
    world.approve(_claim(world))
    assert_last_refused(world, f"decided_by {world.did('human')} was revoked at entry 4")


def test_revocation_of_an_unknown_entry_names_enrolments(world: World) -> None:
    world.revoke("op", "cd" * 32)
    assert_last_refused(world, "nor an approver enrolment")
