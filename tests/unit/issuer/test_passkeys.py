"""issuer.passkeys: py_webauthn's verification of an approval's assertion against its enrolment on the log, the
options a browser needs, and passkey registration that yields the approver-enrolment the fold accepts."""

from __future__ import annotations

import hashlib
from typing import Any, TypedDict

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from issuer.passkeys import (
    add_consent,
    approval_options,
    authentication_options,
    consent_options,
    enrolment_registration_options,
    registration_options,
    user_id,
    verify_decision,
    verify_registration,
)
from issuer.statements import Signer, approver_enrolment
from schemas.base64url import b64url
from schemas.errors import (
    AssertionCredentialRevoked,
    AssertionCredentialUnknown,
    AssertionInvalid,
    PasskeyRegistrationInvalid,
    PayloadInvalid,
)
from schemas.identity_statements import parse_payload
from schemas.statement import parse_statement
from tests.unit.verifier.identity_world import World, accepted, statement_id
from tests.webauthn_authenticator import ORIGIN, RP_ID, SoftwareAuthenticator
from transparency.problem_details import problem_status
from verifier.claims import decision_challenge, decision_digest, enrolment_request_digest
from verifier.fold import FoldEntry
from verifier.identity_state import IdentityState
from verifier.webauthn import ALG_EDDSA, ALG_ES256, ALG_RS256, FLAG_UP, Assertion, b64url_decode, credential_did

OWNER = "did:example:owner"
"""The namespace owner that signs the enrolments of the unit tests that log none."""


@pytest.fixture(params=[ALG_ES256, ALG_EDDSA], ids=["ES256", "EdDSA"])
def world(request: pytest.FixtureRequest) -> World:
    """``op`` owns acme; a1 submitted claim c1; ``human``'s passkey (of the parameter's algorithm) is enrolled."""
    w = World()
    w.register("op")
    w.submit("a1")
    w.passkey("human", alg=request.param)
    w.enrol()
    return w


def _claim(world: World) -> str:
    """The entry id of claim c1, the fixture's submission."""
    return next(iter(world.claim_namespaces))


class LoggedAs(TypedDict):
    """What a human's assertion is made for besides the payload: the statement's type and its signer."""

    statement_type: str
    signer: str


def _approval(world: World) -> LoggedAs:
    """What an approval the fixture's ``op`` logs is: its statement type and signer."""
    return {"statement_type": "claim-approval", "signer": world.did("op")}


def test_an_approval_verifies_with_py_webauthn(world: World) -> None:
    payload = world.approval(_claim(world))
    verified = verify_decision(world.fold(), payload, **_approval(world))
    assert verified is not None and verified.user_verified
    assert verified.credential_id == world.passkey("human").credential_id


@pytest.mark.parametrize("kind", ["rejection", "revocation"])
def test_a_human_rejection_or_revocation_verifies_with_py_webauthn(world: World, kind: str) -> None:
    claim = _claim(world)
    if kind == "revocation":
        world.approve(claim)
    payload = world.decision(claim, kind)
    logged_as: LoggedAs = {"statement_type": f"claim-{kind}", "signer": world.did("op")}
    verified = verify_decision(world.fold(), payload, **logged_as)
    assert verified is not None and verified.credential_id == world.passkey("human").credential_id
    with pytest.raises(AssertionInvalid, match="challenge"):  # the human's decision, logged as another type
        verify_decision(world.fold(), payload, **_approval(world))
    payload["reason"] = "not what the human saw"
    with pytest.raises(AssertionInvalid, match="challenge"):
        verify_decision(world.fold(), payload, **logged_as)


def test_nothing_to_check_without_an_assertion_or_a_known_claim(world: World) -> None:
    state = world.fold()
    assert verify_decision(state, {"claim": _claim(world), "decided_by": world.did("op")}, **_approval(world)) is None
    # a claim the state does not know: the log refuses it, with its own reason
    assert verify_decision(state, world.approval("ab" * 32), **_approval(world)) is None


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ("signature", "Could not verify authentication signature"),
        ("note", "challenge was not expected challenge"),
        ("origin", "Unexpected client data origin"),
        ("uv", "User verification is required"),
    ],
)
def test_an_assertion_py_webauthn_refuses_is_a_403(world: World, change: str, problem: str) -> None:
    claim = _claim(world)
    if change == "origin":
        payload = world.approval(claim, origin="https://evil.example")
    elif change == "uv":
        payload = world.approval(claim, flags=FLAG_UP)
    else:
        payload = world.approval(claim)
    if change == "signature":
        assertion = Assertion.from_json(payload["webauthn"])
        payload["webauthn"]["signature"] = b64url(assertion.signature[:-1] + bytes((assertion.signature[-1] ^ 1,)))
    if change == "note":
        payload["note"] = "changed after signing"
    with pytest.raises(AssertionInvalid, match=problem) as refused:
        verify_decision(world.fold(), payload, **_approval(world))
    assert problem_status(refused.value) == 403


def test_the_credential_must_be_enrolled_and_not_revoked(world: World) -> None:
    claim = _claim(world)
    with pytest.raises(AssertionCredentialUnknown):
        verify_decision(world.fold(), world.approval(claim, human="human2"), **_approval(world))
    world.revoke("op", next(iter(world.fold().approvers)))  # the enrolment
    with pytest.raises(AssertionCredentialRevoked):
        verify_decision(world.fold(), world.approval(claim), **_approval(world))


# --- options for the browser -------------------------------------------------------------------------------------


def test_authentication_options_carry_the_decision_challenge(world: World) -> None:
    decision = {"claim": _claim(world), "decided_by": world.approver("human"), "note": "ok"}
    key = world.passkey("human")
    options = authentication_options(decision, RP_ID, [key.credential_id], **_approval(world))
    assert options["challenge"] == decision_challenge(decision, **_approval(world))
    assert options["rpId"] == RP_ID and options["userVerification"] == "required"
    assert [c["id"] for c in options["allowCredentials"]] == [b64url(key.credential_id)]
    # what the browser would sign with these options is the approval the fold and py_webauthn accept
    assertion = key.get(b64url_decode(options["challenge"], "challenge"))
    payload = {**decision, "webauthn": assertion.to_json()}
    assert verify_decision(world.fold(), payload, **_approval(world)) is not None
    world.add("op", "claim-approval", payload)
    assert all(accepted(world.fold()))


def test_approval_options_from_the_log(world: World) -> None:
    decision = {"claim": _claim(world), "decided_by": world.approver("human")}
    options = approval_options(world.fold(), decision)
    assert options["rpId"] == RP_ID and options["challenge"] == decision_challenge(decision, **_approval(world))
    assert [c["id"] for c in options["allowCredentials"]] == [b64url(world.passkey("human").credential_id)]
    with pytest.raises(AssertionCredentialUnknown):
        approval_options(world.fold(), {**decision, "decided_by": world.did("human2")})


def test_registration_options() -> None:
    approver = "did:web:acme.example:people:alice"
    options = registration_options(rp_id=RP_ID, rp_name="Acme approvals", approver=approver, user_name="alice",
                                   challenge=b"\x01" * 32, exclude_credential_ids=[b"\x02" * 16])
    assert options["rp"] == {"id": RP_ID, "name": "Acme approvals"}
    assert options["user"]["id"] == b64url(hashlib.sha256(approver.encode()).digest()) == b64url(user_id(approver))
    assert options["challenge"] == b64url(b"\x01" * 32) and options["attestation"] == "none"
    assert [p["alg"] for p in options["pubKeyCredParams"]] == [ALG_EDDSA, ALG_ES256, ALG_RS256]
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["excludeCredentials"][0]["id"] == b64url(b"\x02" * 16)
    random = registration_options(rp_id=RP_ID, rp_name="Acme", approver=approver, user_name="alice")
    assert len(b64url_decode(random["challenge"], "challenge")) >= 16


# --- registration: the new passkey's enrolment, with the human's consent, is what the fold accepts ------------------

ALICE = "did:web:acme.example:people:alice"
REQUEST = {"namespace": "acme", "approver": ALICE, "rp_id": RP_ID, "origin": ORIGIN}


def _options(request: dict[str, Any], rp_name: str = "Acme approvals", **kwargs: Any) -> dict[str, Any]:
    return enrolment_registration_options(namespace=request["namespace"], approver=request["approver"],
                                          rp_id=request["rp_id"], origin=request["origin"], rp_name=rp_name,
                                          user_name="alice", **kwargs)


def _verify(response: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    return verify_registration(response, namespace=request["namespace"], approver=request["approver"],
                               rp_id=request["rp_id"], origin=request["origin"])


def _registered(alg: int = ALG_ES256, *, created_for: dict[str, Any] | None = None,
                verified_for: dict[str, Any] | None = None) -> tuple[SoftwareAuthenticator, dict[str, Any]]:
    """A passkey made with ``enrolment_registration_options`` (for ``REQUEST`` with ``created_for`` replacing
    fields) and its registration verified for ``REQUEST`` with ``verified_for`` replacing fields."""
    key = SoftwareAuthenticator(alg)
    options = _options(REQUEST | (created_for or {}))
    response = key.create(b64url_decode(options["challenge"], "challenge"))
    return key, _verify(response, REQUEST | (verified_for or {}))


def _consented(key: SoftwareAuthenticator, enrolment: dict[str, Any], owner: str = OWNER) -> dict[str, Any]:
    """The enrolment with the new passkey's assertion over it, made with ``consent_options``, for ``owner``."""
    options = consent_options(enrolment, owner=owner)
    return add_consent(enrolment, key.get(b64url_decode(options["challenge"], "challenge")).to_json(), owner=owner)


def test_enrolment_registration_options_carry_the_enrolment_request() -> None:
    options = _options(REQUEST, exclude_credential_ids=[b"\x02" * 16])
    assert options["challenge"] == b64url(enrolment_request_digest(REQUEST))
    assert options["rp"] == {"id": RP_ID, "name": "Acme approvals"} and options["user"]["id"] == b64url(user_id(ALICE))
    assert options["excludeCredentials"][0]["id"] == b64url(b"\x02" * 16)
    other = _options(REQUEST | {"namespace": "beta"})
    assert other["challenge"] != options["challenge"]


@pytest.mark.parametrize(("alg", "named"), [(ALG_ES256, False), (ALG_EDDSA, False), (ALG_RS256, True)],
                         ids=["ES256", "EdDSA", "RS256"])
def test_a_registered_passkey_is_enrolled_and_approves(alg: int, named: bool) -> None:
    """A passkey registered for its own did:key (no approver named: the console's default), or, as an RS256 key
    has no did:key, for the namespace's did:key owner itself; the fold accepts the enrolment and its approval."""
    world = World()
    approver = world.did("op") if named else None
    key, registered = _registered(alg, created_for={"approver": approver}, verified_for={"approver": approver})
    expected = world.did("op") if named else credential_did(key.cose_public_key())
    assert {k: v for k, v in registered.items() if k != "registration"} == {
        "namespace": "acme", "approver": expected, "credential_id": b64url(key.credential_id),
        "public_key": b64url(key.cose_public_key()), "rp_id": RP_ID, "origin": ORIGIN}
    assert set(registered["registration"]) == {"client_data_json", "attestation_object"}
    options = consent_options(registered, owner=world.did("op"))
    challenge = decision_challenge(registered, statement_type="approver-enrolment", signer=world.did("op"))
    assert options["challenge"] == challenge and options["rpId"] == RP_ID
    assert [c["id"] for c in options["allowCredentials"]] == [b64url(key.credential_id)]
    enrolment = _consented(key, registered, world.did("op"))
    assert set(enrolment) == set(registered) | {"webauthn"}
    world.register("op")
    claim = world.submit("a1")
    owner = Signer(world.key("op"))
    statement = approver_enrolment(owner, enrolment)
    assert parse_statement(statement).subject == enrolment["approver"]
    world.entries.append(FoldEntry(len(world.entries), statement))
    decision = {"claim": claim, "decided_by": enrolment["approver"]}
    payload = {**decision, "webauthn": key.get(decision_digest(decision, **_approval(world))).to_json()}
    world.add("op", "claim-approval", payload)
    state: IdentityState = world.fold()
    assert all(accepted(state)) and state.claims[claim].status == "approved"
    assert state.approvers[statement_id(statement)].public_key == enrolment["public_key"]
    assert parse_payload("approver-enrolment", parse_statement(statement).payload) == enrolment


def test_an_enrolment_without_the_consent_assertion_is_not_signed() -> None:
    _, registered = _registered()
    with pytest.raises(PayloadInvalid) as refused:
        approver_enrolment(Signer(Ed25519PrivateKey.generate()), registered)
    assert refused.value.code == "payload-invalid"


@pytest.mark.parametrize(
    ("created_for", "changes", "problem"),
    [
        ({"namespace": "beta"}, {}, "challenge"),  # the passkey was made to be enrolled elsewhere
        ({"approver": "did:web:acme.example:people:mallory"}, {}, "challenge"),
        ({"origin": "https://app.issuer.example"}, {"origin": "https://app.issuer.example"}, "origin"),
        ({"rp_id": "other.example", "origin": "https://other.example"},
         {"rp_id": "other.example", "origin": "https://other.example"}, "origin"),
        ({}, {"origin": "https://evil.example"}, "is not the host of origin"),
    ],
)
def test_a_registration_that_does_not_hold_is_refused(created_for: dict[str, str], changes: dict[str, str],
                                                      problem: str) -> None:
    with pytest.raises(PasskeyRegistrationInvalid, match=problem) as refused:
        _registered(created_for=created_for, verified_for=changes)
    assert refused.value.code == "webauthn-registration-invalid"


def test_a_registration_without_user_verification_is_refused() -> None:
    key = SoftwareAuthenticator()
    response = key.create(enrolment_request_digest(REQUEST), flags=FLAG_UP)
    with pytest.raises(PasskeyRegistrationInvalid, match="verif"):
        _verify(response, REQUEST)


def test_a_consent_that_does_not_hold_is_refused() -> None:
    key, registered = _registered()
    with pytest.raises(AssertionInvalid, match="challenge"):  # an assertion over something else
        add_consent(registered, key.get(b"\x09" * 32).to_json(), owner=OWNER)
    other = SoftwareAuthenticator(credential_id=key.credential_id)  # another key posing as the credential
    with pytest.raises(AssertionInvalid, match="signature"):
        add_consent(registered, other.get(_enrolment_digest(registered)).to_json(), owner=OWNER)
    with pytest.raises(AssertionInvalid, match="User verification is required"):
        add_consent(registered, key.get(_enrolment_digest(registered), flags=FLAG_UP).to_json(), owner=OWNER)
    with pytest.raises(AssertionInvalid, match="challenge"):  # the consent to another owner's enrolment
        add_consent(registered, key.get(_enrolment_digest(registered, "did:example:other")).to_json(), owner=OWNER)


def _enrolment_digest(enrolment: dict[str, Any], owner: str = OWNER) -> bytes:
    return decision_digest(enrolment, statement_type="approver-enrolment", signer=owner)


def test_an_owner_signer_identity_is_kept() -> None:
    """approver_enrolment signs as the owner's identity (its DID across rotations), not its current key's did:key."""
    first, current = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    owner = Signer(current, Signer(first).identity)
    key, registered = _registered()
    assert parse_statement(approver_enrolment(owner, _consented(key, registered))).issuer == Signer(first).identity


def test_a_passkey_registered_for_its_own_did_key_names_no_approver_in_its_request() -> None:
    """Made before its key exists, the registration's challenge is the request without ``approver``; the user handle
    is random (a second approver on the same authenticator replaces no passkey); an RS256 passkey has no did:key."""
    own = {"namespace": "acme", "approver": None, "rp_id": RP_ID, "origin": ORIGIN}
    options = _options(own)
    request = {"namespace": "acme", "rp_id": RP_ID, "origin": ORIGIN}
    assert options["challenge"] == b64url(enrolment_request_digest(request))
    assert options["challenge"] != b64url(enrolment_request_digest(REQUEST))
    assert options["user"]["id"] != _options(own)["user"]["id"]
    with pytest.raises(PasskeyRegistrationInvalid, match="no did:key"):
        _registered(ALG_RS256, created_for={"approver": None}, verified_for={"approver": None})
    with pytest.raises(PasskeyRegistrationInvalid, match="challenge"):  # made for a named approver, not its own
        _registered(created_for={}, verified_for={"approver": None})
