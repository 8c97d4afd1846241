"""The explorer's pages over plain HTTP: what careless readers send is answered as a page with a 4xx status and the
refusal's code, never a 5xx; every page carries the security headers (a CSP with same-origin scripts only)."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.browser.world import make_world
from tests.server import running_server


def test_bad_input_is_a_4xx_page_with_its_code(tmp_path: Path) -> None:
    with running_server(tmp_path) as url, httpx.Client(base_url=url, timeout=30) as http:
        world = make_world(url)
        for path in ("/", "/explorer/entries", "/explorer/entries/0", f"/explorer/agents/{world.agent.identity}"):
            answer = http.get(path)
            assert answer.status_code == 200, path
            assert answer.headers["content-type"].startswith("text/html")
            assert "script-src 'self'" in answer.headers["content-security-policy"]
            assert answer.headers["x-content-type-options"] == "nosniff"
        cases = {
            "/explorer/entries/999999": (404, "entry-not-found"),
            "/explorer/entries/-1": (404, "not-found"),
            "/explorer/entries/" + "ab" * 32: (404, "entry-not-found"),
            "/explorer/entries?before=x": (400, "invalid-parameter"),
            "/explorer/entries?before=" + "9" * 30: (400, "invalid-parameter"),
            "/explorer/agents/did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK": (404, "audit-subject-unknown"),
            "/explorer/agents/not-a-did": (404, "audit-subject-unknown"),
            "/explorer/search?q=": (400, "invalid-parameter"),
            "/explorer/search?q=%00%ff": (400, "invalid-parameter"),
            # digits int() refuses although str.isdigit() takes them (superscripts): a 4xx, not a 500
            "/explorer/entries?before=%C2%B2": (400, "invalid-parameter"),
            "/explorer/entries/%C2%B2": (404, "not-found"),
            "/explorer/search?q=%C2%B2": (400, "invalid-parameter"),
        }
        for path, (status, code) in cases.items():
            answer = http.get(path)
            assert answer.status_code == status, (path, answer.status_code, answer.text[:300])
            assert f"<code>{code}</code>" in answer.text, (path, answer.text[:500])
        assert http.get("/explorer/search?q=0", follow_redirects=False).headers["location"] == "/explorer/entries/0"
        assert http.post("/").status_code == 405  # the explorer only reads
