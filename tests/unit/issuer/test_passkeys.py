"""issuer.passkeys: py_webauthn's verification of an approval's assertion against its enrolment on the log, the
options a browser needs, and passkey registration that yields the approver-enrolment the fold accepts."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from issuer.passkeys import (
    approval_options,
    authentication_options,
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
)
from schemas.identity_statements import parse_payload
from schemas.statement import parse_statement
from tests.unit.verifier.identity_world import World, accepted, statement_id
from tests.webauthn_authenticator import ORIGIN, RP_ID, SoftwareAuthenticator
from verifier.claims import decision_challenge, decision_digest
from verifier.fold import FoldEntry
from verifier.identity_state import IdentityState
from verifier.webauthn import ALG_EDDSA, ALG_ES256, ALG_RS256, FLAG_UP, Assertion, b64url_decode


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
    return world.fold().outcomes[1].entry


def test_an_approval_verifies_with_py_webauthn(world: World) -> None:
    payload = world.approval(_claim(world))
    verified = verify_decision(world.fold(), payload)
    assert verified is not None and verified.user_verified
    assert verified.credential_id == world.passkey("human").credential_id


def test_nothing_to_check_without_an_assertion_or_a_known_claim(world: World) -> None:
    state = world.fold()
    assert verify_decision(state, {"claim": _claim(world), "decided_by": world.did("op")}) is None
    assert verify_decision(state, world.approval("ab" * 32)) is None  # the log refuses it, with its own reason


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
        verify_decision(world.fold(), payload)
    assert refused.value.status == 403


def test_the_credential_must_be_enrolled_and_not_revoked(world: World) -> None:
    claim = _claim(world)
    with pytest.raises(AssertionCredentialUnknown):
        verify_decision(world.fold(), world.approval(claim, human="human2"))
    world.revoke("op", world.fold().outcomes[2].entry)
    with pytest.raises(AssertionCredentialRevoked):
        verify_decision(world.fold(), world.approval(claim))


# --- options for the browser -------------------------------------------------------------------------------------


def test_authentication_options_carry_the_decision_challenge(world: World) -> None:
    decision = {"claim": _claim(world), "decided_by": world.did("human"), "note": "ok"}
    key = world.passkey("human")
    options = authentication_options(decision, RP_ID, [key.credential_id])
    assert options["challenge"] == decision_challenge(decision)
    assert options["rpId"] == RP_ID and options["userVerification"] == "required"
    assert [c["id"] for c in options["allowCredentials"]] == [b64url(key.credential_id)]
    # what the browser would sign with these options is the approval the fold and py_webauthn accept
    assertion = key.get(b64url_decode(options["challenge"], "challenge"))
    payload = {**decision, "webauthn": assertion.to_json()}
    assert verify_decision(world.fold(), payload) is not None
    world.add("op", "claim-approval", payload)
    assert all(accepted(world.fold()))


def test_approval_options_from_the_log(world: World) -> None:
    decision = {"claim": _claim(world), "decided_by": world.did("human")}
    options = approval_options(world.fold(), decision)
    assert options["rpId"] == RP_ID and options["challenge"] == decision_challenge(decision)
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


# --- registration: the new passkey's enrolment is what the fold accepts -------------------------------------------


def _registered(alg: int, **kwargs: Any) -> tuple[SoftwareAuthenticator, dict[str, str]]:
    key = SoftwareAuthenticator(alg)
    challenge = b"\x07" * 32
    response = key.create(challenge)
    enrolment = verify_registration(json.dumps(response) if alg == ALG_RS256 else response,
                                    **{"expected_challenge": challenge, "namespace": "acme",
                                       "approver": "did:web:acme.example:people:alice", "rp_id": RP_ID,
                                       "origin": ORIGIN, **kwargs})
    return key, enrolment


@pytest.mark.parametrize("alg", [ALG_ES256, ALG_EDDSA, ALG_RS256], ids=["ES256", "EdDSA", "RS256"])
def test_a_registered_passkey_is_enrolled_and_approves(alg: int) -> None:
    key, enrolment = _registered(alg)
    assert enrolment == {"namespace": "acme", "approver": "did:web:acme.example:people:alice",
                         "credential_id": b64url(key.credential_id), "public_key": b64url(key.cose_public_key()),
                         "rp_id": RP_ID, "origin": ORIGIN}
    world = World()
    world.register("op")
    claim = world.submit("a1")
    owner = Signer(world.key("op"))
    statement = approver_enrolment(owner, enrolment)
    assert parse_statement(statement).subject == enrolment["approver"]
    world.entries.append(FoldEntry(len(world.entries), statement))
    decision = {"claim": claim, "decided_by": enrolment["approver"]}
    payload = {**decision, "webauthn": key.get(decision_digest(decision)).to_json()}
    world.add("op", "claim-approval", payload)
    state: IdentityState = world.fold()
    assert all(accepted(state)) and state.claims[claim].status == "approved"
    assert state.approvers[statement_id(statement)].public_key == enrolment["public_key"]
    assert parse_payload("approver-enrolment", parse_statement(statement).payload) == enrolment


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"expected_challenge": b"\x08" * 32}, "challenge"),
        ({"origin": "https://app.issuer.example"}, "origin"),
        ({"rp_id": "other.example", "origin": "https://other.example"}, "origin"),
        ({"origin": "https://evil.example"}, "is not the host of origin"),
    ],
)
def test_a_registration_that_does_not_hold_is_refused(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(PasskeyRegistrationInvalid, match=problem):
        _registered(ALG_ES256, **changes)


def test_a_registration_without_user_verification_is_refused() -> None:
    key = SoftwareAuthenticator()
    with pytest.raises(PasskeyRegistrationInvalid, match="verif"):
        verify_registration(key.create(b"\x07" * 32, flags=FLAG_UP), expected_challenge=b"\x07" * 32,
                            namespace="acme", approver="did:web:a.example", rp_id=RP_ID, origin=ORIGIN)


def test_an_owner_signer_identity_is_kept() -> None:
    """approver_enrolment signs as the owner's identity (its DID across rotations), not its current key's did:key."""
    first, current = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    owner = Signer(current, Signer(first).identity)
    _, enrolment = _registered(ALG_ES256)
    assert parse_statement(approver_enrolment(owner, enrolment)).issuer == Signer(first).identity
