"""The explorer's pages over plain HTTP: what careless readers send is answered as a page with a 4xx status and the
refusal's code, never a 5xx; every page carries the security headers (a CSP with same-origin scripts only)."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import httpx

from issuer.statements import delegation
from tests.browser.world import SCOPE, make_world
from tests.server import running_server
from transparency.client.signing import generate_key, sign_statement


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


def _deep(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth):
        value = [value]
    return value


def test_a_strangers_odd_statements_take_no_page_down(tmp_path: Path) -> None:
    """Anyone can log a statement and none is ever removed: a CBOR bignum as content format, claim label or claim
    value (``str`` refuses integers past 4,300 digits) and JSON nested past the recursion limit were each a 500 on
    their entry page — and on the home page and the entries list for everyone while they were listed. (A bignum
    iat, exp or nbf is refused at registration now; tests/unit/explorer shows how an older log's is displayed.)"""
    key = generate_key()
    big = 10**5000
    odd = [
        sign_statement(key, b"{}", subject="s", content_type=big),
        sign_statement(key, b"{}", subject="s", content_type="application/json", extra_claims={big: 1}),
        sign_statement(key, b"{}", subject="s", content_type="application/json", extra_claims={99: [big, {big: big}]}),
        sign_statement(key, b"[" * 200_000 + b"]" * 200_000, subject="s", content_type="application/json"),
        sign_statement(key, b"{}", subject="s", content_type="application/json", extra_claims={99: _deep(300)}),
    ]
    with running_server(tmp_path) as url, httpx.Client(base_url=url, timeout=60) as http:
        # a bignum exp or nbf is no time at all: refused (it answered 500, its refusal could not print it)
        refused = http.post("/entries", headers={"content-type": "application/cose"}, content=sign_statement(
            key, b"{}", subject="s", content_type="application/json", extra_claims={4: -big}))
        assert refused.status_code == 403 and b"cwt-time-invalid" in refused.content, refused.content[:300]
        refused = http.post("/entries", headers={"content-type": "application/cose"}, content=sign_statement(
            key, b"{}", subject="s", content_type="application/json", extra_claims={6: big}))  # nor is a bignum iat
        assert refused.status_code == 403 and b"cwt-time-invalid" in refused.content, refused.content[:300]
        for statement in odd:
            answer = http.post("/entries", content=statement, headers={"content-type": "application/cose"})
            assert answer.status_code in (201, 202), answer.text[:300]
        deadline = time.monotonic() + 30
        while int(http.get("/checkpoint").text.split("\n")[1]) < len(odd):
            assert time.monotonic() < deadline, "the statements were not registered in time"
            time.sleep(0.2)
        for path in ("/", "/explorer/entries", *(f"/explorer/entries/{i}" for i in range(len(odd)))):
            answer = http.get(path)
            assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
        assert "0x" in http.get("/explorer/entries/0").text  # the bignum content format, in hex
        assert int(http.get("/checkpoint").text.split("\n")[1]) == len(odd)  # the refused one was not logged


XSS = '"><img src=x onerror=alert(1)><script>alert(2)</script><svg onload=alert(3)>'


class _Tags(HTMLParser):
    """Every element and attribute of a page, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.handlers: list[tuple[str, str]] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts.append(dict(attrs))
        if tag == "img":
            self.images.append(tag)
        self.handlers += [(tag, name) for name, _ in attrs if name.startswith("on")]


def test_logged_strings_are_text_on_every_page(tmp_path: Path) -> None:
    """Stored XSS: a stranger's statement carries markup in its subject, content type, a claim and its payload; every
    page shows it as text (autoescaping) — no element, no event handler, no script but the same-origin module."""
    key = generate_key()
    statement = sign_statement(key, json.dumps({"note": XSS}).encode(), subject=XSS, content_type="application/json",
                               extra_claims=cast("dict[int, Any]", {99: XSS, XSS: 1}))  # a text label too
    typed = sign_statement(key, b"{}", subject="s", content_type=f"text/html; x={XSS}")
    with running_server(tmp_path) as url, httpx.Client(base_url=url, timeout=60) as http:
        for body in (statement, typed):
            answer = http.post("/entries", content=body, headers={"content-type": "application/cose"})
            assert answer.status_code in (201, 202), answer.text[:300]
        deadline = time.monotonic() + 30
        while int(http.get("/checkpoint").text.split("\n")[1]) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        pages = ["/", "/explorer/entries", "/explorer/entries/0", "/explorer/entries/1",
                 "/explorer/agents/did:" + quote(XSS, safe=""), "/explorer/search?q=" + quote("did:" + XSS, safe="")]
        for path in pages:
            answer = http.get(path, follow_redirects=True)
            assert answer.status_code < 500, (path, answer.status_code)
            tags = _Tags()
            tags.feed(answer.text)
            assert tags.handlers == [] and tags.images == [], (path, tags.handlers, tags.images)
            assert all((s.get("src") or "").startswith("/assets/") for s in tags.scripts), (path, tags.scripts)
            assert "script-src 'self'" in answer.headers["content-security-policy"]
        assert "&lt;script&gt;alert(2)&lt;/script&gt;" in http.get("/explorer/entries/0").text


def test_a_strangers_huge_chain_is_listed_not_drawn(tmp_path: Path) -> None:
    """Anyone may log delegations: 160 of them to one agent make a graph over the drawing bound (webui.graphs), so
    its page runs no dot and says so in one line, and still lists every delegation; a small chain is drawn."""
    with running_server(tmp_path) as url, httpx.Client(base_url=url, timeout=30) as http:
        small = make_world(url, "small")
        page = http.get(f"/explorer/agents/{quote(small.agent.identity, safe=':')}")
        assert page.status_code == 200 and '<figure class="graph"><svg' in page.text
        assert "too large to draw" not in page.text

        world = make_world(url)
        now = int(time.time())
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda n: world.post("/v1/delegations", delegation(
                world.operator, world.agent.identity, SCOPE, not_after=now + 7200 + n, max_depth=0)), range(160)))
        page = http.get(f"/explorer/agents/{quote(world.agent.identity, safe=':')}")
        assert page.status_code == 200, page.text[:300]
        assert "<svg" not in page.text and "too large to draw" in page.text
        assert page.text.count("<td>delegates mail: read mail/inbox/*</td>") == 161  # make_world's and the 160
