"""Human approvers in the fold: passkeys enrolled by a namespace's owner (``approver-enrolment``), approvals whose
assertion is verified offline against the enrolment, revocation of a credential or of the approver, and every
refusal kept as a rejected entry with the state unchanged."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.verifier.identity_world import World, accepted, assert_last_refused, b64url
from tests.webauthn_authenticator import SoftwareAuthenticator
from verifier.claims import check_human_decision, decision_digest
from verifier.fold import Fold
from verifier.webauthn import ALG_EDDSA, ALG_ES256, ALG_RS256, FLAG_UP, FLAG_UV, credential_did


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
    """The entry id of claim c1, the fixture's submission."""
    return next(iter(world.claim_namespaces))


def _enrolment(world: World) -> str:
    """The entry id of the fixture's enrolment of ``human``'s passkey for acme."""
    return next(iter(world.fold().approvers))


@pytest.mark.parametrize("alg", [ALG_ES256, ALG_EDDSA, ALG_RS256], ids=["ES256", "EdDSA", "RS256"])
def test_an_enrolled_passkey_approves_offline(alg: int) -> None:
    world = World()
    world.register("op")
    claim = world.submit("a1")
    passkey = world.passkey("human", alg=alg)
    # the approver is the passkey's own did:key; no did:key names an RSA key, so an RS256 passkey is the owner's (b)
    human = credential_did(passkey.cose_public_key()) or world.did("op")
    enrolment = world.enrol(approver=human)
    assert world.fold().sign_counts == {enrolment: 2}  # the consent: registration (counter 1), assertion (2)
    approval = world.approve(claim, decided_by=human)
    state = world.fold()
    assert accepted(state) == [True, True, True, True]
    approver = state.approvers[enrolment]
    assert (approver.namespace, approver.approver, approver.enrolled_by) == ("acme", human, world.did("op"))
    assert state.approver_credentials == {("acme", approver.credential_id): enrolment}
    decision = state.claims[claim].decision("approval")
    assert decision is not None and decision.entry == approval and decision.decided_by == human
    assert decision.webauthn is not None and decision.enrolment == enrolment
    assert decision.sign_count == 3 and state.sign_counts == {enrolment: 3}
    payload = {"claim": claim, "decided_by": human, "note": "ok", "webauthn": decision.webauthn}
    # what a regulator re-checks from the log: against the state the approval met (its counter is then new)
    before = Fold().apply_all(world.entries[: state.claims[claim].decisions[-1].index])
    assert check_human_decision(before, "acme", payload, statement_type="claim-approval",
                                signer=world.did("op")) == (approver, 3)


def test_an_approval_without_webauthn_is_the_owners_decision(world: World) -> None:
    claim = _claim(world)
    world.add("op", "claim-approval", {"claim": claim, "decided_by": world.did("op"), "note": "by the operator"})
    assert world.fold().claims[claim].status == "approved"


# --- enrolment ---------------------------------------------------------------------------------------------------


def test_enrolment_by_a_non_owner_is_refused(world: World) -> None:
    world.enrol("human2", "acme", owner="op2")
    assert_last_refused(world, "not-namespace-owner")


def test_enrolment_in_an_unknown_namespace_is_refused(world: World) -> None:
    world.enrol("human2", "nowhere", owner="op")
    assert_last_refused(world, "namespace-unknown")


def test_a_credential_is_enrolled_once_per_namespace(world: World) -> None:
    world.enrol()
    assert_last_refused(world, "credential-already-enrolled")
    world.entries.pop()
    world.enrol(approver=world.did("op"))  # the same credential for another approver (the owner): still the same
    assert_last_refused(world, "credential-already-enrolled")
    world.entries.pop()
    world.enrol("human", "beta")  # the same passkey approves for another namespace, enrolled by its owner
    assert all(accepted(world.fold()))


def test_a_revoked_approver_cannot_be_enrolled(world: World) -> None:
    world.revoke("human2", world.did("human2"))
    world.enrol("human2")
    assert_last_refused(world, "approver-revoked")


@pytest.mark.parametrize(
    "changes",
    [
        {"public_key": "pQECAyYgASFY"},  # a truncated COSE_Key
        {"public_key": "oQEB"},  # {1: 1}: no alg
        {"origin": "https://evil.example"},  # the RP ID is not its host
        {"origin": "http://issuer.example"},  # neither https nor http://localhost
        {"credential_id": "A" * 25},  # 25 characters cannot be base64url
    ],
)
def test_an_enrolment_that_cannot_verify_assertions_is_refused(world: World, changes: dict[str, str]) -> None:
    world.enrol("human2", **changes)
    assert_last_refused(world, "enrolment-unusable")


# --- the human's consent to an enrolment: its passkey's registration and assertion -------------------------------


def _consented(world: World, payload: dict[str, Any], *, creator: str = "human2", asserter: str = "human2",
               request: dict[str, Any] | None = None) -> dict[str, Any]:
    """``payload`` (an enrolment) with a registration made by ``creator``'s passkey over the enrolment request of
    ``request`` (default: of ``payload``) and an assertion by ``asserter``'s passkey over the whole enrolment."""
    payload = {k: v for k, v in payload.items() if k not in ("registration", "webauthn")}
    created = world.passkey(creator).create(world.registration_challenge(request or payload))["response"]
    payload["registration"] = {"client_data_json": created["clientDataJSON"],
                               "attestation_object": created["attestationObject"]}
    challenge = decision_digest(payload, statement_type="approver-enrolment", signer=world.did("op"))
    payload["webauthn"] = world.passkey(asserter).get(challenge).to_json()
    return payload


def test_an_enrolment_with_the_humans_consent_is_accepted(world: World) -> None:
    entry = world.add("op", "approver-enrolment", _consented(world, world.enrolment("human2", consent=False)))
    state = world.fold()
    assert all(accepted(state)) and state.approvers[entry].approver == world.did("human2")
    assert state.sign_counts[entry] == 2  # the counter of the consent's assertion


@pytest.mark.parametrize("kept", [(), ("registration",), ("webauthn",)])
def test_an_enrolment_without_the_consent_fields_is_refused(world: World, kept: tuple[str, ...]) -> None:
    consented = world.enrolment("human2")
    payload = world.enrolment("human2", consent=False) | {k: consented[k] for k in kept}
    world.add("op", "approver-enrolment", payload)
    assert_last_refused(world, "payload-invalid")


@pytest.mark.parametrize(
    "other",
    [{"namespace": "beta"}, {"approver": "did:web:acme.example:people:mallory"},
     {"origin": "https://login.issuer.example"}],
    ids=["namespace", "approver", "origin"],
)
def test_a_registration_over_another_enrolment_request_is_refused(world: World, other: dict[str, str]) -> None:
    """A passkey the human created to be enrolled elsewhere (or as someone else) does not consent to this."""
    payload = world.enrolment("human2", consent=False)
    world.add("op", "approver-enrolment", _consented(world, payload, request=payload | other))
    assert_last_refused(world, "webauthn-challenge-mismatch")


def test_a_registration_of_another_credential_is_refused(world: World) -> None:
    """The registration holds, but it created another passkey than the one the enrolment names."""
    payload = world.enrolment("human2", consent=False)
    world.add("op", "approver-enrolment", _consented(world, payload, creator="human3"))
    assert_last_refused(world, "enrolment-registration-invalid")


def test_a_registration_naming_another_key_for_the_credential_is_refused(world: World) -> None:
    """The enrolment names the registered credential id with a key of the owner's choosing."""
    payload = world.enrolment("human2", consent=False, approver=world.did("op"),
                              public_key=b64url(world.passkey("mallory").cose_public_key()))
    world.add("op", "approver-enrolment", _consented(world, payload))
    assert_last_refused(world, "enrolment-registration-invalid")


def test_an_assertion_by_another_passkey_is_refused(world: World) -> None:
    payload = world.enrolment("human2", consent=False)
    world.add("op", "approver-enrolment", _consented(world, payload, asserter="human3"))
    assert_last_refused(world, "enrolment-registration-invalid")
    world.entries.pop()
    enrolled = world.passkey("human2")  # a passkey that claims the enrolled credential id but holds another key
    world.passkeys["impostor"] = SoftwareAuthenticator(credential_id=enrolled.credential_id)
    world.add("op", "approver-enrolment", _consented(world, payload, asserter="impostor"))
    assert_last_refused(world, "webauthn-signature-invalid")


def test_an_assertion_over_another_enrolment_is_refused(world: World) -> None:
    """The human consented to one enrolment; the owner changed it afterwards."""
    payload = world.enrolment("human2")
    payload["approver"] = world.did("op")  # an approver the owner may name (itself), but not the one consented to
    world.add("op", "approver-enrolment", payload)
    assert_last_refused(world, "webauthn-challenge-mismatch")


@pytest.mark.parametrize(
    ("create", "code"),
    [({"flags": FLAG_UP}, "webauthn-user-not-verified"), ({"flags": FLAG_UV}, "webauthn-user-not-present"),
     ({"origin": "https://evil.example"}, "webauthn-origin-mismatch")],
)
def test_a_registration_that_does_not_hold_is_refused(world: World, create: dict[str, Any], code: str) -> None:
    payload = world.enrolment("human2", consent=False)
    created = world.passkey("human2").create(world.registration_challenge(payload), **create)["response"]
    payload["registration"] = {"client_data_json": created["clientDataJSON"],
                               "attestation_object": created["attestationObject"]}
    challenge = decision_digest(payload, statement_type="approver-enrolment", signer=world.did("op"))
    payload["webauthn"] = world.passkey("human2").get(challenge).to_json()
    world.add("op", "approver-enrolment", payload)
    assert_last_refused(world, code)


def test_an_assertion_posing_as_the_registration_is_refused(world: World) -> None:
    """A webauthn.get over the enrolment request is not the passkey's creation."""
    payload = world.enrolment("human2", consent=False)
    got = world.passkey("human2").get(world.registration_challenge(payload)).to_json()
    payload["registration"] = {"client_data_json": got["client_data_json"],
                               "attestation_object": got["authenticator_data"]}
    challenge = decision_digest(payload, statement_type="approver-enrolment", signer=world.did("op"))
    payload["webauthn"] = world.passkey("human2").get(challenge).to_json()
    world.add("op", "approver-enrolment", payload)
    assert_last_refused(world, "webauthn-type-mismatch")


# --- approvals ---------------------------------------------------------------------------------------------------


def test_a_passkey_not_enrolled_cannot_approve(world: World) -> None:
    world.approve(_claim(world), human="human2", enrol=False)
    assert_last_refused(world, "webauthn-credential-unknown")


def test_a_passkey_enrolled_elsewhere_cannot_approve(world: World) -> None:
    world.enrol("human2", "beta")
    world.approve(_claim(world), human="human2", enrol=False)  # a claim in acme
    assert_last_refused(world, "webauthn-credential-unknown")


def test_decided_by_must_be_the_enrolled_approver(world: World) -> None:
    world.approve(_claim(world), decided_by=world.did("op"))
    assert_last_refused(world, "webauthn-approver-mismatch")


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"origin": "https://evil.example"}, "webauthn-origin-mismatch"),
        ({"rp_id": "evil.example"}, "webauthn-rp-id-mismatch"),
        ({"flags": FLAG_UV}, "webauthn-user-not-present"),
        ({"flags": FLAG_UP}, "webauthn-user-not-verified"),
        ({"webauthn_type": "webauthn.create"}, "webauthn-type-mismatch"),
    ],
)
def test_an_assertion_that_does_not_hold_is_refused(world: World, changes: dict[str, Any], code: str) -> None:
    world.approve(_claim(world), **changes)
    assert_last_refused(world, code)


def test_a_bad_signature_is_refused(world: World) -> None:
    payload = world.approval(_claim(world))
    signature = payload["webauthn"]["signature"]
    payload["webauthn"]["signature"] = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    world.add("op", "claim-approval", payload)
    assert_last_refused(world, "webauthn-signature-invalid")


def test_another_passkey_of_the_same_human_is_refused(world: World) -> None:
    """An assertion by a passkey that claims the enrolled credential id but holds another key."""
    enrolled = world.passkey("human")
    world.passkeys["human"] = SoftwareAuthenticator(credential_id=enrolled.credential_id)
    world.approve(_claim(world), decided_by=world.did("human"))
    assert_last_refused(world, "webauthn-signature-invalid")


def test_the_decision_changed_after_the_human_signed_is_refused(world: World) -> None:
    payload = world.approval(_claim(world))
    payload["note"] = "not what the human saw"
    world.add("op", "claim-approval", payload)
    assert_last_refused(world, "webauthn-challenge-mismatch")


# --- the signature counter (WebAuthn §7.2 step 22) -----------------------------------------------------------------


def test_the_counter_must_grow_from_one_approval_to_the_next(world: World) -> None:
    enrolment = _enrolment(world)  # the enrolment's consent logged counter 2 (registration 1, assertion 2)
    world.approve(_claim(world))
    world.approve(world.submit("a1", claim_id="c2"))
    state = world.fold()
    assert accepted(state)[-1] and state.sign_counts == {enrolment: 4}
    clone = SoftwareAuthenticator(credential_id=world.passkey().credential_id, key=world.passkey().key,
                                  sign_count=3)  # a copy of the authenticator, made when its counter was 3
    world.passkeys["human"] = clone
    world.approve(world.submit("a1", claim_id="c3"))  # the clone's counter: 4, not above the logged 4
    assert_last_refused(world, "webauthn-sign-count-not-increasing")
    world.entries.pop()
    clone.sign_count = 4
    world.approve(world.submit("a1", claim_id="c4"))  # 5: above 4, accepted (the log cannot tell it is a clone)
    assert world.fold().sign_counts == {enrolment: 5}


def test_passkeys_without_a_counter_always_send_zero(world: World) -> None:
    world.passkey("human2", counter=False)  # from its creation: its consent to the enrolment sends 0 as well
    enrolment = world.enrol("human2")
    for n in range(2, 5):
        world.approve(world.submit("a1", claim_id=f"c{n}"), human="human2")
    state = world.fold()
    assert all(accepted(state)) and state.sign_counts[enrolment] == 0


def test_a_passkey_that_counted_at_enrolment_cannot_send_zero_later(world: World) -> None:
    world.passkey().counter = False
    world.passkey().sign_count = 0
    world.approve(_claim(world))  # 0, not above the 2 its enrolment logged
    assert_last_refused(world, "webauthn-sign-count-not-increasing")


def test_a_counter_that_starts_again_from_zero_is_refused(world: World) -> None:
    world.approve(_claim(world))  # counter 3 (the enrolment's consent used 1 and 2)
    assert world.fold().sign_counts == {_enrolment(world): 3}
    world.passkey().counter = False
    world.passkey().sign_count = 0
    world.approve(world.submit("a1", claim_id="c2"))
    assert_last_refused(world, "webauthn-sign-count-not-increasing")


# --- revocation ----------------------------------------------------------------------------------------------------


def test_a_revoked_credential_cannot_approve(world: World) -> None:
    enrolment = _enrolment(world)
    world.revoke("op2", enrolment)
    assert_last_refused(world, "enrolment-revocation-not-entitled")
    world.entries.pop()
    revocation = world.revoke("op", enrolment, "keyCompromise")
    world.approve(_claim(world))
    assert_last_refused(world, "webauthn-credential-revoked")
    assert world.fold().revoked[enrolment].entry == revocation
    world.entries.pop()
    world.enrol()  # a revoked credential stays revoked: enrolling it again is a duplicate
    assert_last_refused(world, "credential-already-enrolled")


def test_the_approver_may_revoke_its_own_credential(world: World) -> None:
    world.revoke("human", _enrolment(world))
    world.approve(_claim(world))
    assert_last_refused(world, "webauthn-credential-revoked")


def test_a_revoked_approver_cannot_approve(world: World) -> None:
    world.revoke("op2", world.did("human"))  # op2 did not enrol the human
    assert_last_refused(world, "did-revocation-not-entitled")
    world.entries.pop()
    world.revoke("human", world.did("human"))  # the human itself
    world.approve(_claim(world))
    assert_last_refused(world, "decider-revoked")


def test_the_owner_that_enrolled_an_approver_cannot_revoke_its_did(world: World) -> None:
    """Regression: the owner that enrolled a human used to be able to revoke the human's DID (everywhere). It
    revokes its own grant, the enrolment, instead."""
    world.revoke("op", world.did("human"))
    assert_last_refused(world, "did-revocation-not-entitled")
    world.entries.pop()
    world.revoke("op", _enrolment(world))
    state = world.fold()
    assert all(accepted(state)) and world.did("human") not in state.revoked and _enrolment(world) in state.revoked


def test_revocation_of_an_unknown_entry_names_enrolments(world: World) -> None:
    world.revoke("op", "cd" * 32)
    assert_last_refused(world, "revocation-target-unknown")
