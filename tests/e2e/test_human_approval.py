"""Human approval with a passkey, end to end over real HTTP: the owner registers and enrols a passkey approver
(the registration ceremony verified by py_webauthn, the enrolment logged), an agent submits a claim, the owner
logs the human's approval whose WebAuthn assertion the issuer verifies online (py_webauthn) and the log's fold
verifies offline; afterwards the approval verifies offline from the logged statements alone. Tampered assertions
and revoked credentials are refused with 403 and the log does not grow.

The assertions come from the software authenticator of ``tests.webauthn_authenticator``: no browser is driven
here (a CDP virtual authenticator in headless Chromium is left for the browser-flow issue)."""

from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from issuer.passkeys import (
    add_consent,
    consent_options,
    enrolment_registration_options,
    verify_decision,
    verify_registration,
)
from issuer.statements import (
    Signer,
    approval_payload,
    approver_enrolment,
    claim_approval,
    claim_decision,
    claim_submission,
    decision_payload,
    operator_registration,
    revocation,
)
from schemas import cbor
from schemas.base64url import b64url
from schemas.cose_sign1 import decode_sign1
from schemas.identity_statements import parse_payload
from schemas.leaf import entry_id, leaf_data
from schemas.receipt import parse_receipt
from schemas.statement import parse_statement
from tests.server import running_server
from tests.webauthn_authenticator import ORIGIN, RP_ID, SoftwareAuthenticator
from verifier.bundles import verify_bundle
from verifier.claims import check_human_decision, decision_digest
from verifier.fold import Fold, FoldEntry
from verifier.keys import parse_key_set
from verifier.receipts import verify_receipt
from verifier.webauthn import b64url_decode, credential_did

COSE = {"content-type": "application/cose"}
SCOPE = {"services": ["mail"], "actions": ["read"], "resources": ["mail/inbox/*"]}


def _alice(key: SoftwareAuthenticator) -> str:
    """The approver a passkey is enrolled as here: its own did:key (the console's default, docs/authority.md)."""
    did = credential_did(key.cose_public_key())
    assert did is not None
    return did


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Log:
    """The statements this test got logged, by log index, with their receipts."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)
        self.statements: dict[int, bytes] = {}
        self.receipts: dict[int, bytes] = {}

    def size(self) -> int:
        return int(self.http.get("/checkpoint").text.split("\n")[1])

    def issuer(self, path: str, statement: bytes) -> dict[str, Any]:
        answer = self.http.post(path, content=statement, headers=COSE)
        assert answer.status_code == 201, answer.text
        body: dict[str, Any] = answer.json()
        self.statements[body["index"]], self.receipts[body["index"]] = statement, _b64(body["receipt"])
        return body

    def scrapi(self, statement: bytes) -> str:
        """Register on the log itself (SCRAPI ``POST /entries``); the issuer follows the log."""
        answer = self.http.post("/entries", content=statement, headers=COSE)
        assert answer.status_code == 201, answer.content
        index = parse_receipt(answer.content).inclusion[0].leaf_index
        self.statements[index], self.receipts[index] = statement, answer.content
        return entry_id(leaf_data(decode_sign1(statement)))

    def refused(self, path: str, statement: bytes) -> dict[str, Any]:
        """403 and the log unchanged; the problem as a dict (problem+json, or the CBOR of SCRAPI)."""
        before = self.size()
        answer = self.http.post(path, content=statement, headers=COSE)
        assert answer.status_code == 403, answer.content
        assert self.size() == before, "a refused approval changed the log"
        if answer.headers["content-type"].startswith("application/problem+json"):
            problem: dict[str, Any] = answer.json()
            return problem
        decoded = cbor.decode(answer.content)
        return {"title": decoded[-1], "detail": decoded[-2], "type": next(k for k in decoded if isinstance(k, str))}


def _approval(owner: Signer, key: SoftwareAuthenticator, claim: str, note: str = "ok for the inbox") -> bytes:
    decision = approval_payload(claim, _alice(key), note)
    # the human's passkey signs the decision challenge: this approval, which the owner logs
    assertion = key.get(decision_digest(decision, statement_type="claim-approval", signer=owner.identity))
    return claim_approval(owner, claim, decided_by=_alice(key), note=note, webauthn=assertion.to_json())


def _tampered(owner: Signer, key: SoftwareAuthenticator, claim: str) -> bytes:
    decision = approval_payload(claim, _alice(key), "ok")
    assertion = key.get(decision_digest(decision, statement_type="claim-approval", signer=owner.identity))
    signature = assertion.signature[:-1] + bytes((assertion.signature[-1] ^ 1,))
    return claim_approval(owner, claim, decided_by=_alice(key), note="ok",
                          webauthn=replace(assertion, signature=signature).to_json())


def test_a_passkey_approval_is_logged_and_verifies_offline(tmp_path: Path) -> None:
    owner = Signer(Ed25519PrivateKey.generate())
    agent = Signer(Ed25519PrivateKey.generate())
    key = SoftwareAuthenticator()
    alice = _alice(key)
    with running_server(tmp_path) as url:
        log = Log(url)
        log.issuer("/registry/operators", operator_registration(owner, "acme", Ed25519PrivateKey.generate()))

        # the two ceremonies (as the browser flow runs them) yield the enrolment the owner signs: the passkey is
        # created over the enrolment request, then signs the whole enrolment (the human's consent)
        options = enrolment_registration_options(namespace="acme", approver=None, rp_id=RP_ID, origin=ORIGIN,
                                                 rp_name="Acme approvals", user_name="alice")
        created = key.create(b64url_decode(options["challenge"], "challenge"))
        unconsented = verify_registration(created, namespace="acme", approver=None, rp_id=RP_ID, origin=ORIGIN)
        # issue 9: without the passkey's consent the owner cannot enrol it (the fold refuses, log unchanged)
        problem = log.refused("/registry/approvers", approver_enrolment(owner, {**unconsented, "webauthn": key.get(
            decision_digest({**unconsented, "approver": "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"},
                            statement_type="approver-enrolment", signer=owner.identity)
        ).to_json()}))
        assert problem["type"] == "urn:tabellion:error:webauthn-challenge-mismatch", problem
        challenge = b64url_decode(consent_options(unconsented, owner=owner.identity)["challenge"], "challenge")
        enrolment_payload = add_consent(unconsented, key.get(challenge).to_json(), owner=owner.identity)
        enrolment = log.issuer("/registry/approvers", approver_enrolment(owner, enrolment_payload))["entry"]

        claim = log.issuer("/v1/claims", claim_submission(agent, "mail-1", "acme", "mail", SCOPE))["entry"]
        other = log.issuer("/v1/claims", claim_submission(agent, "mail-2", "acme", "mail", SCOPE))["entry"]

        # refused before anything is logged: a tampered assertion (by the issuer's py_webauthn, and by the log's
        # offline fold when sent to the log directly), a decision changed after signing, an unknown passkey
        tampered = _tampered(owner, key, claim)
        problem = log.refused(f"/v1/claims/{claim}/approve", tampered)
        assert problem["type"] == "urn:tabellion:error:webauthn-assertion-invalid", problem
        problem = log.refused("/entries", tampered)
        assert problem["type"] == "urn:tabellion:error:webauthn-signature-invalid", problem
        decision = approval_payload(claim, alice, "ok")
        signed_other = key.get(decision_digest({**decision, "note": "something else"}, statement_type="claim-approval",
                                               signer=owner.identity)).to_json()
        problem = log.refused(f"/v1/claims/{claim}/approve",
                              claim_approval(owner, claim, decided_by=alice, note="ok", webauthn=signed_other))
        assert "challenge" in problem["detail"]
        stranger = SoftwareAuthenticator()
        problem = log.refused(f"/v1/claims/{claim}/approve", _approval(owner, stranger, claim))
        assert problem["type"] == "urn:tabellion:error:webauthn-credential-unknown", problem

        approval = log.issuer(f"/v1/claims/{claim}/approve", _approval(owner, key, claim))
        feed = log.http.get("/v1/claims/approved").json()["items"]
        assert [(i["approval"], i["decided_by"]) for i in feed] == [(approval["entry"], alice)]

        # the enrolment's revocation (by the owner) stops the passkey: the next approval is refused
        log.issuer("/registry/revoke", revocation(owner, enrolment, "keyCompromise"))
        problem = log.refused(f"/v1/claims/{other}/approve", _approval(owner, key, other))
        assert problem["type"] == "urn:tabellion:error:webauthn-credential-revoked", problem

        keys = parse_key_set(log.http.get("/.well-known/scitt-keys").content)
        size = log.size()
        # the audit bundle carries the passkey enrolment, so the human approval verifies from it alone
        report = verify_bundle(log.http.get(f"/v1/audit/{agent.identity}").json(), keys)
        approved = [c for c in report.claims if c.claim_id == "mail-1"]
        assert [(c.status, c.decided_by, c.human_assertion) for c in approved] == [("approved", alice, True)]

    # offline, from the logged statements alone: receipts, the fold, and the human's signature
    assert sorted(log.statements) == list(range(size))
    for index, statement in log.statements.items():
        assert verify_receipt(log.receipts[index], statement, keys).leaf_index == index
    state = Fold().apply_all(FoldEntry(i, log.statements[i]) for i in range(size))
    assert all(o.accepted for o in state.outcomes), [o.reason for o in state.outcomes]
    assert state.claims[claim].status == "approved" and state.claims[other].status == "submitted"
    logged = parse_payload("claim-approval", parse_statement(log.statements[approval["index"]]).payload)
    assert logged["webauthn"]["credential_id"] == b64url(key.credential_id)
    before_revocation = Fold().apply_all(FoldEntry(i, log.statements[i]) for i in range(approval["index"]))
    human = check_human_decision(before_revocation, "acme", logged, statement_type="claim-approval",
                                 signer=owner.identity)
    assert human[0].entry == enrolment
    verified = verify_decision(before_revocation, logged, statement_type="claim-approval", signer=owner.identity)
    assert verified is not None  # and py_webauthn agrees


def test_a_humans_rejection_is_not_logged_as_their_revocation(tmp_path: Path) -> None:
    """Over HTTP, the red-team case of docs/authority.md principle 4: the human rejects a claim with reason
    privilegeWithdrawn (the payload of a claim revocation too); the owner approves the claim itself and sends the
    human's assertion as the human's claim revocation. The issuer (py_webauthn) and the log (its fold) both refuse
    it, and the log does not grow; the same assertion is accepted as the rejection it was made for."""
    owner = Signer(Ed25519PrivateKey.generate())
    agent = Signer(Ed25519PrivateKey.generate())
    key = SoftwareAuthenticator()
    alice = _alice(key)
    with running_server(tmp_path) as url:
        log = Log(url)
        log.issuer("/registry/operators", operator_registration(owner, "acme", Ed25519PrivateKey.generate()))
        created = key.create(b64url_decode(enrolment_registration_options(
            namespace="acme", approver=None, rp_id=RP_ID, origin=ORIGIN, rp_name="Acme", user_name="alice",
        )["challenge"], "challenge"))
        unconsented = verify_registration(created, namespace="acme", approver=None, rp_id=RP_ID, origin=ORIGIN)
        challenge = b64url_decode(consent_options(unconsented, owner=owner.identity)["challenge"], "challenge")
        log.issuer("/registry/approvers", approver_enrolment(
            owner, add_consent(unconsented, key.get(challenge).to_json(), owner=owner.identity)))
        claim = log.issuer("/v1/claims", claim_submission(agent, "mail-1", "acme", "mail", SCOPE))["entry"]
        other = log.issuer("/v1/claims", claim_submission(agent, "mail-2", "acme", "mail", SCOPE))["entry"]

        rejected = decision_payload("rejection", claim, alice, "privilegeWithdrawn")
        assert rejected == decision_payload("revocation", claim, alice, "privilegeWithdrawn")  # the same payload
        assertion = key.get(decision_digest(rejected, statement_type="claim-rejection", signer=owner.identity))
        log.issuer(f"/v1/claims/{claim}/approve", claim_approval(owner, claim))  # the owner's own approval
        forged = claim_decision(owner, "revocation", {**rejected, "webauthn": assertion.to_json()})
        problem = log.refused(f"/v1/claims/{claim}/revoke", forged)
        assert problem["type"] == "urn:tabellion:error:webauthn-assertion-invalid", problem
        assert "challenge" in problem["detail"]
        problem = log.refused("/entries", forged)
        assert problem["type"] == "urn:tabellion:error:webauthn-challenge-mismatch", problem

        # the human's rejection of the other claim, logged as the rejection it is
        rejected = decision_payload("rejection", other, alice, "privilegeWithdrawn")
        assertion = key.get(decision_digest(rejected, statement_type="claim-rejection", signer=owner.identity))
        log.issuer(f"/v1/claims/{other}/reject",
                   claim_decision(owner, "rejection", {**rejected, "webauthn": assertion.to_json()}))
        assert log.http.get(f"/v1/claims/{other}").json()["status"] == "rejected"


def test_an_owner_cannot_enrol_its_passkey_as_another_organisations_human(tmp_path: Path) -> None:
    """docs/authority.md principle 2: owner A (a did:key) enrols its own passkey, with the passkey's full consent,
    as ``did:web:bank.example:people:ceo``. Both the log (SCRAPI ``POST /entries``) and the issuer
    (``POST /registry/approvers``) refuse it with 403 ``approver-not-entitled``, and the log does not grow; the same
    passkey enrolled as its own did:key is accepted."""
    owner = Signer(Ed25519PrivateKey.generate())
    key = SoftwareAuthenticator()
    ceo = "did:web:bank.example:people:ceo"

    def consented(approver: str | None) -> dict[str, Any]:
        options = enrolment_registration_options(namespace="acme", approver=approver, rp_id=RP_ID, origin=ORIGIN,
                                                 rp_name="Acme approvals", user_name="ceo")
        created = key.create(b64url_decode(options["challenge"], "challenge"))
        unconsented = verify_registration(created, namespace="acme", approver=approver, rp_id=RP_ID, origin=ORIGIN)
        challenge = b64url_decode(consent_options(unconsented, owner=owner.identity)["challenge"], "challenge")
        return add_consent(unconsented, key.get(challenge).to_json(), owner=owner.identity)

    with running_server(tmp_path) as url:
        log = Log(url)
        log.issuer("/registry/operators", operator_registration(owner, "acme", Ed25519PrivateKey.generate()))
        forged = approver_enrolment(owner, consented(ceo))
        for path in ("/entries", "/registry/approvers"):
            problem = log.refused(path, forged)
            assert problem["type"] == "urn:tabellion:error:approver-not-entitled", problem
        assert log.http.get("/v1/approvers", params={"namespace": "acme"}).json()["approvers"] == []
        log.issuer("/registry/approvers", approver_enrolment(owner, consented(None)))
        approvers = log.http.get("/v1/approvers", params={"namespace": "acme"}).json()["approvers"]
        assert [a["approver"] for a in approvers] == [_alice(key)]
