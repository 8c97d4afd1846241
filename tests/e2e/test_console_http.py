"""The console over plain HTTP, as strangers and careless clients reach it (no browser): every refusal is a problem
with a stable code and nothing is logged. The passkey ceremonies are run with the software authenticator of
``tests.webauthn_authenticator`` against the console's own origin and RP ID."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client.parser import text_string_to_metric_families

from console.passkeys import passkey_request_options
from issuer.client import IssuerClient
from issuer.statements import Signer, claim_submission, operator_registration
from issuer.tokens import new_nonce, sign_request
from schemas.base64url import b64url
from tests.browser.console_process import ConsoleProcess
from tests.browser.console_world import ALICE, ANOTHER_ORGANISATION, console_over_log
from tests.cli_process import tabellion
from tests.problems import problem
from tests.webauthn_authenticator import SoftwareAuthenticator, authentication_response
from verifier.webauthn import b64url_decode, credential_did

CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


class Browserless:
    """A client of the console that keeps its cookie and CSRF token, as the page's script does."""

    def __init__(self, console: ConsoleProcess) -> None:
        self.console = console
        self.http = httpx.Client(base_url=console.url, timeout=30, follow_redirects=False)
        self.csrf = ""

    def page(self, path: str) -> httpx.Response:
        answer = self.http.get(path)
        found = CSRF.search(answer.text)
        if found:
            self.csrf = found.group(1)
        return answer

    def post(self, path: str, body: dict[str, Any], *, csrf: str | None = None,
             origin: str | None = None) -> httpx.Response:
        headers = {"x-csrf-token": self.csrf if csrf is None else csrf, "origin": origin or self.console.url}
        return self.http.post(path, json=body, headers=headers)


def first_changed(text: str) -> str:
    """``text`` with its first character changed (a base64url signature stays canonical)."""
    return ("B" if text[0] == "A" else "A") + text[1:]


def create_json(key: SoftwareAuthenticator, options: dict[str, Any]) -> dict[str, Any]:
    return key.create(b64url_decode(options["challenge"], "challenge"))


def get_json(key: SoftwareAuthenticator, options: dict[str, Any]) -> dict[str, Any]:
    return authentication_response(key.get(b64url_decode(options["challenge"], "challenge")))


def test_strangers_and_careless_clients_are_refused_and_nothing_is_logged(tmp_path: Path) -> None:
    with console_over_log(tmp_path) as running:
        log, world, console, size = running.log, running.world, running.console, running.size
        before = size()
        origin, rp_id = console.url, "localhost"
        alice = SoftwareAuthenticator(rp_id=rp_id, origin=origin)
        client = Browserless(console)

        # operations
        assert client.http.get("/healthz").json() == {"status": "ok"}
        assert client.http.get("/readyz").json()["namespace"] == "acme"
        # pages for approvers only send strangers to the sign-in page
        for path in ("/approvals", "/agents", f"/agents/{world.c.identity}", "/tokens", "/approvals/queue"):
            answer = client.http.get(path)
            assert answer.status_code == 303 and answer.headers["location"] == "/signin", path
        problem(client.http.get("/events"), 401, "sign-in-required")

        # no session, no CSRF token, another origin, not JSON
        decision = {"claim": world.claim, "kind": "approval", "text": "ok", "credential": {}}
        problem(client.post("/decisions", decision), 401, "sign-in-required")
        problem(client.post("/signin/options", {}), 403, "csrf-refused")  # no session, so no token yet
        client.page("/signin")
        problem(client.post("/decisions", decision), 401, "sign-in-required")
        problem(client.post("/signin/options", {}, csrf="forged"), 403, "csrf-refused")
        problem(client.post("/signin/options", {}, origin="http://evil.example"), 403, "csrf-refused")
        answer = client.http.post("/signin/options", content=b"{", headers={"x-csrf-token": client.csrf,
                                                                           "content-type": "application/json"})
        problem(answer, 400, "payload-invalid")
        problem(client.post("/signin/verify", {"credential": {}}), 409, "ceremony-expired")

        # an invitation the console did not make, or a made-up one
        assert client.page("/enrol?invitation=forged").status_code == 403
        problem(client.post("/enrol/options", {"invitation": "eyJ4Ijox.forged"}), 403, "invitation-invalid")

        # a passkey that is not enrolled cannot sign in
        options = client.post("/signin/options", {}).json()["options"]
        problem(client.post("/signin/verify", {"credential": get_json(alice, options)}), 403,
                "webauthn-credential-unknown")
        assert size() == before

        # enrolment from a real invitation: the two ceremonies, then the link is spent
        # an approver the operator may not name is refused at once, in one line, and nothing is made
        refusal = tabellion("console", "invite", "--config", console.config, "--approver", ANOTHER_ORGANISATION,
                            "--name", "ceo", ok=False)
        assert refusal.stdout == "" and len(refusal.stderr.strip().splitlines()) == 1, refusal.stderr
        assert "may not enrol a passkey as did:web:bank.example:people:ceo" in refusal.stderr
        invitation = console.invite(ALICE, "alice").split("invitation=", 1)[1]
        assert client.page(f"/enrol?invitation={invitation}").status_code == 200
        created = create_json(alice, client.post("/enrol/options", {"invitation": invitation}).json()["options"])
        consent = client.post("/enrol/register", {"invitation": invitation, "credential": created}).json()
        signed = get_json(alice, consent["options"])
        answer = client.post("/enrol/consent", {"invitation": invitation, "credential": signed})
        assert answer.status_code == 201, answer.text
        alice_did = credential_did(alice.cose_public_key())  # no approver named: the passkey's own did:key
        assert answer.json()["approver"] == alice_did and alice_did is not None
        assert size() == before + 1
        problem(client.post("/enrol/options", {"invitation": invitation}), 403, "invitation-invalid")
        # the same passkey again, under a second invitation: the log refuses it (credential-already-enrolled)
        second = console.invite(ALICE, "alice").split("invitation=", 1)[1]
        created_again = alice.create(b64url_decode(
            client.post("/enrol/options", {"invitation": second}).json()["options"]["challenge"], "challenge"))
        consent = client.post("/enrol/register", {"invitation": second, "credential": created_again}).json()
        again = {"invitation": second, "credential": get_json(alice, consent["options"])}
        problem(client.post("/enrol/consent", again), 403, "credential-already-enrolled")
        assert size() == before + 1

        # sign in; a sign-in challenge is used once
        options = client.post("/signin/options", {}).json()["options"]
        credential = get_json(alice, options)
        assert client.post("/signin/verify", {"credential": credential}).status_code == 200
        # the sign-in starts a new session with a new CSRF token: the old page's token is refused
        problem(client.post("/signin/verify", {"credential": credential}), 403, "csrf-refused")
        client.page("/approvals")
        problem(client.post("/signin/verify", {"credential": credential}), 409, "ceremony-expired")

        # decisions the console refuses before anything is signed
        with IssuerClient(log) as issuer:  # a claim in another operator's namespace
            issuer.submit("operator-registration", operator_registration(
                Signer(Ed25519PrivateKey.generate()), "other", Ed25519PrivateKey.generate()))
            other = issuer.submit("claim-submission", claim_submission(
                world.c, "c-other", "other", "mail", {"services": ["mail"], "actions": ["read"],
                                                      "resources": ["inbox/*"]})).entry
        before = size()
        problem(client.post("/decisions/options", {"claim": other, "kind": "approval", "text": ""}), 404,
                "not-found")
        problem(client.post("/decisions/options", {"claim": world.claim, "kind": "vote", "text": ""}), 400,
                "invalid-parameter")
        problem(client.post("/decisions/options", {"claim": "00" * 32, "kind": "approval", "text": ""}), 400,
                "invalid-parameter")
        problem(client.post("/decisions/options", {"claim": world.claim, "kind": "revocation",
                                                   "text": "because"}), 400, "invalid-parameter")
        problem(client.post("/decisions", {"claim": world.claim, "kind": "approval", "text": "",
                                           "credential": {"response": {}}}), 403, "webauthn-assertion-malformed")
        assert size() == before

        # and the decision that holds
        start = client.post("/decisions/options", {"claim": world.claim, "kind": "approval", "text": "ok"}).json()
        assert start["decision"] == {"claim": world.claim, "decided_by": alice_did, "note": "ok"}
        done = client.post("/decisions", {"claim": world.claim, "kind": "approval", "text": "ok",
                                          "credential": get_json(alice, start["options"])})
        assert done.status_code == 201, done.text
        assert size() == before + 1
        assert done.json()["receipt"] and done.json()["decided_by"] == alice_did

        # the token inspector: a token the registry minted for the agent verifies; tampered, it is refused
        token = httpx.post(f"{log}/v1/tokens", json=sign_request(world.c.ed25519, {
            "agent": world.c.identity, "task_id": "read-inbox", "tools": ["read"], "service": "mail",
            "resource": "inbox/*", "delegation": world.chain[-1], "ttl": 120, "created": int(time.time()),
            "nonce": new_nonce()}), timeout=30).json()["token"]
        page = client.http.post("/tokens", data={"csrf": client.csrf, "token": token}).text
        assert "valid: " + world.c.identity in page and "delegation_chain" in page
        head, claims, signature = token.split(".")
        page = client.http.post("/tokens", data={"csrf": client.csrf,
                                                  "token": f"{head}.{claims}.{first_changed(signature)}"}).text
        assert "token-signature-invalid" in page and "delegation_chain" in page  # decoded, and refused
        assert "valid: " not in page

        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for f in text_string_to_metric_families(client.http.get("/metrics").text) for s in f.samples}
        assert samples[("tabellion_console_ceremonies_total",
                        (("code", "ok"), ("kind", "approval"), ("outcome", "logged")))] == 1
        refused = (("code", "credential-already-enrolled"), ("kind", "enrolment"), ("outcome", "refused"))
        assert samples[("tabellion_console_ceremonies_total", refused)] == 1
        assert b64url(alice.credential_id)



def _enrol(client: Browserless, key: SoftwareAuthenticator, invitation: str) -> dict[str, Any]:
    """The first ceremony of an enrolment (the passkey created): the options of the second (its consent)."""
    assert client.page(f"/enrol?invitation={invitation}").status_code == 200
    created = create_json(key, client.post("/enrol/options", {"invitation": invitation}).json()["options"])
    answer = client.post("/enrol/register", {"invitation": invitation, "credential": created})
    assert answer.status_code == 200, answer.text
    options: dict[str, Any] = answer.json()["options"]
    return options


def test_one_invitation_enrols_one_passkey_and_an_approver_revokes_only_agents(tmp_path: Path) -> None:
    """Two browsers open one invitation link and both run its first ceremony before either consents: only the first
    consent enrols a passkey (the link is spent once, whatever was under way). A signed-in approver revokes the
    operator's agents in the operator's name, not the operator itself (nor any DID that is not its agent)."""
    with console_over_log(tmp_path) as running:
        log, world, console, size = running.log, running.world, running.console, running.size
        origin, rp_id = console.url, "localhost"
        alice, mallory = SoftwareAuthenticator(rp_id=rp_id, origin=origin), SoftwareAuthenticator(rp_id=rp_id,
                                                                                                   origin=origin)
        first, second = Browserless(console), Browserless(console)
        invitation = console.invite(ALICE, "alice").split("invitation=", 1)[1]
        alice_consent, mallory_consent = _enrol(first, alice, invitation), _enrol(second, mallory, invitation)
        before = size()
        answer = first.post("/enrol/consent", {"invitation": invitation,
                                               "credential": get_json(alice, alice_consent)})
        assert answer.status_code == 201, answer.text
        problem(second.post("/enrol/consent", {"invitation": invitation,
                                               "credential": get_json(mallory, mallory_consent)}),
                403, "invitation-invalid")
        assert size() == before + 1

        # alice signs in and would revoke the operator itself, or a DID that is no agent of the operator
        options = first.post("/signin/options", {}).json()["options"]
        assert first.post("/signin/verify", {"credential": get_json(alice, options)}).status_code == 200
        first.page("/agents")
        for target in (world.operator.identity, "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"):
            revocation = {"agent": target, "reason": "keyCompromise"}
            problem(first.post("/agents/revoke/options", revocation), 404, "not-found")
            # the options the console would have given: alice's passkey signs exactly that revocation
            alice_did = credential_did(alice.cose_public_key())
            assert alice_did is not None
            with IssuerClient(log) as issuer:
                start = passkey_request_options(
                    issuer.approvers("acme"), alice_did, {"target": target, "reason": "keyCompromise",
                                                          "decided_by": alice_did},
                    rp_id, statement_type="revocation", signer=world.operator.identity)
            problem(first.post("/agents/revoke", {**revocation, "credential": get_json(alice, start)}), 404,
                    "not-found")
        assert size() == before + 1
        # her own operator's agent she may revoke
        revocation = {"agent": world.c.identity, "reason": "keyCompromise"}
        start = first.post("/agents/revoke/options", revocation).json()
        answer = first.post("/agents/revoke", {**revocation, "credential": get_json(alice, start["options"])})
        assert answer.status_code == 201, answer.text
        assert size() == before + 2
