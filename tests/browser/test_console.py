"""The console in Debian's headless Chromium with a virtual WebAuthn authenticator (CTAP2, resident keys, UV):
an approver enrols a passkey from an invitation (their consent, logged), signs in, and approves a pending claim
that appeared live; the logged approval's assertion verifies offline (``tabellion verify bundle`` names the human)
and the agent's request through the gateway is allowed; the approval is revoked with the passkey and the gateway
refuses. Negative cases, each refused with nothing logged: UV off, another approver's passkey, a replayed
assertion, a decision changed after signing. axe-core runs on every page."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By

from gateway.actions import ACTIONS_FILE, PENDING, ActionQueue
from issuer.client import IssuerClient
from issuer.passkeys import user_id
from issuer.statements import claim_submission
from schemas.base64url import b64url
from schemas.statement import parse_statement
from tests.browser.chromium import (
    add_authenticator,
    check_accessibility,
    chromium,
    credentials,
    needs_chromium,
    screenshot,
    wait_for,
)
from tests.browser.console_world import ALICE, ConsoleOverLog, console_over_log
from tests.cli_process import tabellion
from tests.e2e.gateway_deployment import Recorder, refused, send, signed, started_gateway
from tests.http_stub import serving
from transparency.client.http import HttpLogClient

pytestmark = needs_chromium


@dataclass
class Setup(ConsoleOverLog):
    browser: Chrome
    tmp: Path


@contextmanager
def console_setup(tmp_path: Path, *, user_verified: bool = True) -> Iterator[Setup]:
    with console_over_log(tmp_path) as running, chromium(tmp_path / "profile") as browser:
        add_authenticator(browser, user_verified=user_verified)
        yield Setup(running.log, running.world, running.console, browser, tmp_path)


def outcome(browser: Chrome) -> tuple[str, str, str]:
    """Wait for the page's outcome box to settle: (done|refused, code, text)."""
    wait_for(browser, "['done', 'refused'].includes(document.getElementById('outcome')?.dataset.outcome)")
    box = browser.find_element(By.ID, "outcome")
    return str(box.get_attribute("data-outcome")), str(box.get_attribute("data-code")), box.text


def reset_outcome(browser: Chrome) -> None:
    browser.execute_script("const o = document.getElementById('outcome'); delete o.dataset.outcome;")


def enrol(s: Setup, approver: str | None, name: str) -> str:
    before = s.size()
    s.browser.get(s.console.invite(approver, name))
    s.browser.find_element(By.ID, "enrol").click()
    result, code, text = outcome(s.browser)
    assert result == "done", (code, text)
    assert s.size() == before + 1  # the enrolment, with the passkey's consent, is logged
    return text


def last_enrolled(s: Setup) -> str:
    """The approver of the newest enrolment in acme (for an invitation without ``--approver``: the did:key of the
    passkey the browser's authenticator created)."""
    approvers = httpx.get(f"{s.log}/v1/approvers", params={"namespace": "acme"}).json()["approvers"]
    return str(approvers[-1]["approver"])


def sign_in(s: Setup) -> None:
    s.browser.get(f"{s.console.url}/signin")
    s.browser.find_element(By.ID, "signin").click()
    wait_for(s.browser, "location.pathname === '/approvals'")


def decide(s: Setup, claim: str, kind: str, text: str | None = None) -> tuple[str, str, str]:
    reset_outcome(s.browser)
    form = s.browser.find_element(By.CSS_SELECTOR, f"form.decision[data-claim='{claim}'][data-kind='{kind}']")
    if text is not None:
        field = form.find_element(By.NAME, "text")
        if field.tag_name == "input":
            field.clear()
            field.send_keys(text)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    return outcome(s.browser)


def records_logged(data_dir: Path, timeout: float = 10.0) -> None:
    """Wait until the gateway's action records are all on the log (it submits them in batches, up to its
    ``linger`` later), so that the log's size counts the console's statements alone from here."""
    deadline = time.monotonic() + timeout
    with ActionQueue(data_dir / ACTIONS_FILE) as queue:
        while queue.counts()[PENDING]:
            assert time.monotonic() < deadline, "the gateway's action records did not reach the log"
            time.sleep(0.05)


def eventually(request: Callable[[], httpx.Response], status: int, timeout: float = 10.0) -> httpx.Response:
    """The answer once it has ``status`` (the gateway sees the log's growth by long poll), or the last one."""
    deadline = time.monotonic() + timeout
    while True:
        answer = request()
        if answer.status_code == status or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)


def post_from_page(browser: Chrome, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST from the page itself (same origin, the session's cookie and CSRF token): as the page's script would."""
    answer = browser.execute_async_script("""
        const [path, body, done] = arguments;
        const csrf = document.querySelector('meta[name="csrf-token"]').content;
        fetch(path, {method: 'POST', headers: {'content-type': 'application/json', 'x-csrf-token': csrf},
                     body: JSON.stringify(body)})
          .then(async (r) => done({status: r.status, body: await r.json()}));
    """, path, body)
    assert isinstance(answer, dict)
    return answer


def test_enrol_sign_in_approve_verify_offline_gateway_allows_revoke_refuses(tmp_path: Path) -> None:
    Recorder.seen = []
    with console_setup(tmp_path) as s, serving(Recorder) as upstream, \
            started_gateway(tmp_path, s.log, upstream) as gateway:
        browser, world = s.browser, s.world
        browser.get(s.console.url + "/approvals")  # not signed in: to the sign-in page
        assert browser.current_url.endswith("/signin")
        check_accessibility(browser)
        screenshot(browser, "console-signin")

        browser.get(s.console.invite(ALICE, "alice"))
        check_accessibility(browser)
        screenshot(browser, "console-enrol")
        text = enrol(s, ALICE, "alice")
        assert "enrolled" in text
        alice = last_enrolled(s)
        assert alice.startswith("did:key:z")  # the virtual authenticator's passkey's own did:key
        [credential] = credentials(browser)
        assert credential.is_resident_credential
        sign_in(s)
        # before any decision the claim is pending and the gateway refuses the agent
        refused(send(signed(world, gateway.url)), 403, "claim-refused")
        assert browser.find_elements(By.CSS_SELECTOR, f"#pending tr[data-claim='{world.claim}']")
        check_accessibility(browser)

        # a new claim appears in the queue without a reload (server-sent events)
        records_logged(tmp_path / "gw-data")
        with IssuerClient(s.log) as issuer:
            issuer.submit("claim-submission",
                          claim_submission(world.c, "c-files", "acme", "mail", {"services": ["mail"],
                                           "actions": ["read"], "resources": ["inbox/*"]}))
        wait_for(browser, "document.querySelectorAll('#pending tbody tr[data-claim]').length === 2")
        screenshot(browser, "console-approvals")

        size = s.size()
        result, code, text = decide(s, world.claim, "approval", "ok for the inbox")
        assert result == "done", (code, text)
        assert s.size() == size + 1
        assert "tabellion verify bundle audit.json --log-keys log.keys" in text
        check_accessibility(browser)
        screenshot(browser, "console-approved")

        # offline: the audit bundle names the human, with the passkey assertion
        keys, bundle = tmp_path / "log.keys", tmp_path / "audit.json"
        keys.write_bytes(httpx.get(f"{s.log}/.well-known/scitt-keys").content)
        bundle.write_text(json.dumps(httpx.get(f"{s.log}/v1/audit/{world.c.identity}").json()))
        report = tabellion("verify", "bundle", bundle, "--log-keys", keys)
        assert f"claim c-mail for mail: approved by {alice}" in report.stdout
        assert "with the human's passkey assertion" in report.stdout

        # the gateway, following the log (long poll), lets the agent through
        answer = eventually(lambda: send(signed(world, gateway.url)), 200)
        assert answer.json()["upstream"] is True

        # revoke the approval with the passkey: logged, and the gateway refuses again
        records_logged(tmp_path / "gw-data")
        size = s.size()
        result, code, text = decide(s, world.claim, "revocation", "privilegeWithdrawn")
        assert result == "done", (code, text)
        assert s.size() == size + 1
        refused(eventually(lambda: send(signed(world, gateway.url)), 403), 403, "claim-refused")

        # the other pages, with the keyboard-only check of axe
        browser.get(f"{s.console.url}/agents")
        assert world.c.identity[:20] in browser.find_element(By.TAG_NAME, "main").text
        check_accessibility(browser)
        screenshot(browser, "console-agents")
        browser.get(f"{s.console.url}/agents/{world.c.identity}")
        page = browser.find_element(By.TAG_NAME, "main").text
        assert "claim-approval" in page and "claim-revocation" in page and "receipt verified" in page
        assert browser.find_element(By.CSS_SELECTOR, "figure.graph svg").get_attribute("role") == "img"
        check_accessibility(browser)
        screenshot(browser, "console-agent")

        # revoke the agent itself, behind a fresh assertion over {target, reason, decided_by}: logged with that
        # assertion (the log shows which human revoked it in the operator's name), the gateway refuses
        records_logged(tmp_path / "gw-data")
        size = s.size()
        reset_outcome(browser)
        form = browser.find_element(By.CSS_SELECTOR, "form.revoke")
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        result, code, text = outcome(browser)
        assert result == "done", (code, text)
        assert s.size() == size + 1
        with HttpLogClient(s.log) as client:
            logged = json.loads(parse_statement(client.entries(size, 1)[0].statement).payload)
        assert logged["decided_by"] == alice and set(logged["webauthn"]) >= {"credential_id", "signature"}
        refused(eventually(lambda: send(signed(world, gateway.url)), 403), 403, "passport-refused")

        browser.get(f"{s.console.url}/tokens")
        field = browser.find_element(By.ID, "token")
        field.send_keys("not.a.token")
        browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
        wait_for(browser, "document.querySelector('.result.refused')")
        assert "token-malformed" in browser.find_element(By.CSS_SELECTOR, ".result.refused").text
        check_accessibility(browser)
        screenshot(browser, "console-tokens")
        browser.find_element(By.CSS_SELECTOR, "header form button[type=submit]").click()  # sign out
        wait_for(browser, "location.pathname === '/signin'")
        browser.get(f"{s.console.url}/approvals")
        assert browser.current_url.endswith("/signin")


@pytest.mark.parametrize("case", ["uv-off", "another-approver", "replayed", "changed-after-signing"])
def test_refused_decisions_log_nothing(tmp_path: Path, case: str) -> None:
    with console_setup(tmp_path) as s:
        browser, world = s.browser, s.world
        enrol(s, ALICE, "alice")
        sign_in(s)
        size = s.size()
        if case == "uv-off":
            # the authenticator cannot verify the user: the browser itself refuses UV-required options
            browser.set_user_verified(False)
            result, code, _ = decide(s, world.claim, "approval")
            assert result == "refused" and code == "NotAllowedError", code
            # and an assertion without UV, made by asking for UV "discouraged", is refused by the console
            browser.execute_script("""
                const parse = PublicKeyCredential.parseRequestOptionsFromJSON;
                PublicKeyCredential.parseRequestOptionsFromJSON = (o) => parse({...o, userVerification: 'discouraged'});
            """)
            result, code, text = decide(s, world.claim, "approval")
            assert result == "refused" and code == "webauthn-assertion-invalid", (code, text)
            assert "verif" in text
        elif case == "another-approver":
            bob = world.operator.identity  # an approver the operator may name: itself
            enrol(s, bob, "bob")  # Bob's passkey, enrolled in the same namespace, in this same authenticator
            size = s.size()
            handle = b64url(user_id(bob))  # the user handle the console gives Bob's passkey
            [bob_key] = [c for c in credentials(browser) if (c.user_handle or "").rstrip("=") == handle]
            bob_id = bob_key.id.rstrip("=")  # Selenium pads its base64url
            browser.get(f"{s.console.url}/approvals")  # signed in as Alice; sign with Bob's passkey
            browser.execute_script("""
                const parse = PublicKeyCredential.parseRequestOptionsFromJSON, bob = arguments[0];
                PublicKeyCredential.parseRequestOptionsFromJSON = (o) => parse({...o,
                    allowCredentials: [{type: 'public-key', id: bob}]});
            """, bob_id)
            result, code, text = decide(s, world.claim, "approval")
            assert result == "refused" and code == "webauthn-approver-mismatch", (code, text)
        elif case == "replayed":
            with IssuerClient(s.log) as issuer:  # a second pending claim, to replay the assertion onto
                second = issuer.submit("claim-submission", claim_submission(
                    world.c, "c-second", "acme", "mail",
                    {"services": ["mail"], "actions": ["read"], "resources": ["inbox/*"]})).entry
            browser.get(f"{s.console.url}/approvals")
            result, code, text = decide(s, world.claim, "approval", "ok")
            assert result == "done", (code, text)
            size = s.size()
            sent = browser.execute_script("return window.lastDecision")
            again = post_from_page(browser, "/decisions", sent)  # the same decision again: not pending any more
            assert again["status"] == 403 and again["body"]["type"].endswith("claim-not-pending"), again
            onto = post_from_page(browser, "/decisions", {**sent, "claim": second})  # onto another claim
            assert onto["status"] == 403 and onto["body"]["type"].endswith("webauthn-assertion-invalid"), onto
            assert "challenge" in onto["body"]["detail"].lower()
        else:
            # the page's script is made to change the note after the passkey signed the decision
            browser.execute_script("""
                const send = window.fetch;
                window.fetch = (path, init) => {
                  if (path === '/decisions') {
                    const body = JSON.parse(init.body); body.text = 'approved for everything';
                    init = {...init, body: JSON.stringify(body)};
                  }
                  return send(path, init);
                };
            """)
            result, code, text = decide(s, world.claim, "approval", "ok for the inbox only")
            assert result == "refused" and code == "webauthn-assertion-invalid", (code, text)
            assert "challenge" in text.lower()
        assert s.size() == size, f"{case}: a refused decision changed the log"
        assert world.claim in {c["entry"] for c in IssuerClient(s.log).claims("acme", "submitted")} or \
            case == "replayed"
