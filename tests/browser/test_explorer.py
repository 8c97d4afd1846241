"""The public log explorer in Debian's headless Chromium: the latest checkpoint and entries, an entry's page whose
receipt the browser checks with WebCrypto against the pinned log key (a real receipt verifies, one with a flipped
byte is refused), "who authorised this agent" with its graph, and axe-core on every page."""

from __future__ import annotations

from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By

from issuer.statements import claim_approval
from schemas.base64url import b64url
from schemas.note import ed25519_vkey
from tests.browser.chromium import check_accessibility, chromium, needs_chromium, screenshot, wait_for
from tests.browser.world import b64, make_world
from tests.server import running_server

pytestmark = needs_chromium


def _check(browser: Chrome, receipt: str | None = None) -> tuple[str, str]:
    """Run the page's receipt check (after replacing the receipt when given); its outcome and text."""
    if receipt is not None:
        field = browser.find_element(By.ID, "receipt")
        field.clear()
        field.send_keys(receipt)
    browser.execute_script("document.getElementById('receipt-result').removeAttribute('data-outcome')")
    browser.find_element(By.CSS_SELECTOR, "#receipt-check button[type=submit]").click()
    outcome = wait_for(browser, "['verified', 'refused'].includes(document.getElementById('receipt-result')"
                               ".dataset.outcome) && document.getElementById('receipt-result').dataset.outcome")
    return str(outcome), browser.find_element(By.ID, "receipt-result").text


def test_the_explorer_checks_receipts_in_the_browser(tmp_path: Path) -> None:
    with running_server(tmp_path) as url:
        world = make_world(url)
        claim = world.submit_claim("mail-1")
        world.post(f"/v1/claims/{claim}/approve", claim_approval(world.operator, claim, note="ok"))
        with httpx.Client(base_url=url) as http:
            vkey = http.get("/log/vkey").text.strip()
        passport = world.entries["passport"]
        with chromium(tmp_path / "profile") as browser:
            browser.get(url + "/")
            assert browser.find_element(By.ID, "tree-size").text == str(world.size())
            assert "agent-passport" in browser.find_element(By.TAG_NAME, "table").text
            check_accessibility(browser)
            screenshot(browser, "explorer-home")

            browser.get(f"{url}/explorer/entries")
            check_accessibility(browser)

            browser.get(f"{url}/explorer/entries/{passport['entry']}")  # by entry id: redirected to its index
            assert browser.current_url.endswith(f"/explorer/entries/{passport['index']}")
            assert "agent-passport" in browser.page_source
            # the reader pins the key they obtained out of band (here: GET /log/vkey by another client)
            key = browser.find_element(By.ID, "log-key")
            key.clear()
            key.send_keys(vkey)
            browser.find_element(By.ID, "pin-key").click()
            outcome, text = _check(browser)
            assert outcome == "verified", text
            assert f"leaf {passport['index']}" in text and passport["entry"] in text
            check_accessibility(browser)
            screenshot(browser, "explorer-entry")

            receipt = b64(passport["receipt"])
            for position in (len(receipt) - 1, len(receipt) // 2, 20):  # the signature, the proof, the header
                flipped = receipt[:position] + bytes((receipt[position] ^ 0x01,)) + receipt[position + 1:]
                outcome, text = _check(browser, b64url(flipped))
                assert outcome == "refused", (position, text)
            outcome, text = _check(browser, b64url(receipt))
            assert outcome == "verified", text

            # another log's key, pinned: the real receipt is refused
            browser.refresh()
            key = browser.find_element(By.ID, "log-key")
            assert key.get_attribute("value") == vkey  # the pin survives a reload
            other = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            key.clear()
            key.send_keys(ed25519_vkey(vkey.split("+", 1)[0], other).encode())
            outcome, text = _check(browser)
            assert outcome == "refused" and "another key" in text, text

            browser.get(f"{url}/explorer/agents/{world.agent.identity}")
            graph = browser.find_element(By.CSS_SELECTOR, "figure.graph svg")
            assert graph.get_attribute("role") == "img"
            page = browser.find_element(By.TAG_NAME, "main").text
            assert "passport (software" in page and "approval" in page and "delegates mail" in page
            assert "tabellion verify bundle audit-bundle.json --log-keys log.keys" in page
            check_accessibility(browser)
            screenshot(browser, "explorer-agent")

            browser.get(f"{url}/explorer/entries/999999")
            assert "not-found" in browser.page_source or "entry-not-found" in browser.page_source
            check_accessibility(browser)
