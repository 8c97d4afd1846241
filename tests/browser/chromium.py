"""Debian's headless Chromium, driven over WebDriver (Selenium and Debian's chromium-driver): nothing is downloaded
(``SE_OFFLINE``, an explicit driver path), a fresh profile per browser, no network but the servers under test.

    with chromium(tmp_path) as browser:
        browser.get(url)
        authenticator = add_authenticator(browser, user_verified=True)
        check_accessibility(browser)          # axe-core: no serious or critical violation
        screenshot(browser, "explorer-home")  # docs/console/*.png when TABELLION_SCREENSHOTS is set

Tests that need a browser are skipped (with the reason) when /usr/bin/chromium or the driver is missing.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.virtual_authenticator import Credential, Protocol, Transport, VirtualAuthenticatorOptions
from selenium.webdriver.support.ui import WebDriverWait

REPO = Path(__file__).resolve().parent.parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
AXE = REPO / "tests" / "vendor" / "axe-core" / "axe.min.js"
SCREENSHOTS = REPO / "docs" / "console"
WAIT_S = 20.0

needs_chromium = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
    reason="Debian's chromium and chromium-driver are not installed (scripts/apt-packages.txt)",
)


@contextmanager
def chromium(profile: Path, *, width: int = 1280, height: int = 900) -> Iterator[webdriver.Chrome]:
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not fetch a browser or a driver
    profile.mkdir(parents=True, exist_ok=True)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--hide-scrollbars", f"--window-size={width},{height}",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    service = Service(executable_path=CHROMEDRIVER, log_output=str(profile / "chromedriver.log"))
    browser = webdriver.Chrome(options=options, service=service)
    browser.set_page_load_timeout(WAIT_S)
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


def add_authenticator(browser: webdriver.Chrome, *, user_verified: bool = True,
                      has_user_verification: bool = True) -> str:
    """A virtual CTAP2 platform authenticator with resident keys; its id."""
    options = VirtualAuthenticatorOptions(
        protocol=Protocol.CTAP2, transport=Transport.INTERNAL, has_resident_key=True,
        has_user_verification=has_user_verification, is_user_consenting=True, is_user_verified=user_verified,
    )
    browser.add_virtual_authenticator(options)
    return str(browser.virtual_authenticator_id)


def credentials(browser: webdriver.Chrome) -> list[Credential]:
    return list(browser.get_credentials())


def wait_for(browser: webdriver.Chrome, script: str, timeout: float = WAIT_S) -> Any:
    """Wait until the JavaScript expression ``script`` is truthy; its value."""
    return WebDriverWait(browser, timeout).until(lambda b: b.execute_script(f"return {script}"))


def check_accessibility(browser: webdriver.Chrome) -> list[dict[str, Any]]:
    """Run axe-core in the page; fail on any serious or critical violation. All violations are returned."""
    browser.execute_script(AXE.read_text())
    result = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then((r) => done(JSON.stringify(r.violations)),"
        " (e) => done(JSON.stringify({error: String(e)})));"
    )
    violations: Any = json.loads(result)
    assert isinstance(violations, list), violations
    grave = [v for v in violations if v.get("impact") in ("serious", "critical")]
    assert not grave, f"{browser.current_url}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:5]}" for v in grave
    )
    return list(violations)


def screenshot(browser: webdriver.Chrome, name: str) -> Path | None:
    """``docs/console/<name>.png`` of the whole page, when ``TABELLION_SCREENSHOTS`` is set (the docs' pictures are
    made by the tests: ``TABELLION_SCREENSHOTS=1 pytest tests/browser``)."""
    if not os.environ.get("TABELLION_SCREENSHOTS"):
        return None
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.set_window_size(1280, 600)
    height = int(browser.execute_script("return Math.min(document.documentElement.scrollHeight, 4000)"))
    width = int(browser.execute_script("return window.outerWidth"))
    browser.set_window_size(width, max(height + 120, 600))
    path = SCREENSHOTS / f"{name}.png"
    browser.save_screenshot(str(path))
    browser.set_window_size(1280, 900)
    return path
