"""A log over HTTP as the issuer end-to-end tests drive it (posts, receipts, refusals) and their passport values."""

from __future__ import annotations

import base64
import urllib.parse
from typing import Any

import httpx

from schemas.cose_sign1 import decode_sign1
from schemas.leaf import entry_id, leaf_data

COSE = {"content-type": "application/cose"}
STATUS_LIST = "https://issuer.example/v1/status/1"
FINGERPRINT = "sha256:" + "ab" * 32
BUNDLE = "sha256:" + "cd" * 32


def _id(statement: bytes) -> str:
    return entry_id(leaf_data(decode_sign1(statement)))


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Log:
    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)
        self.statements: dict[str, bytes] = {}
        self.receipts: dict[str, bytes] = {}

    def post(self, path: str, statement: bytes) -> httpx.Response:
        answer = self.http.post(path, content=statement, headers=COSE)
        if answer.status_code == 201:
            body = answer.json()
            self.statements[body["entry"]] = statement
            self.receipts[body["entry"]] = _b64(body["receipt"])
        return answer

    def ok(self, path: str, statement: bytes) -> dict[str, Any]:
        answer = self.post(path, statement)
        assert answer.status_code == 201, answer.text
        body: dict[str, Any] = answer.json()
        assert body["entry"] == _id(statement)
        return body

    def size(self) -> int:
        return int(self.http.get("/checkpoint").text.split("\n")[1])

    def refused(self, path: str, statement: bytes, status: int = 403) -> dict[str, Any]:
        before = self.size()
        answer = self.post(path, statement)
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert self.size() == before, "a refused statement changed the log"
        problem: dict[str, Any] = answer.json()
        return problem

    def verify(self, agent: str, action: str = "read", resource: str = "mail/inbox/1") -> httpx.Response:
        query = urllib.parse.urlencode({"agent": agent, "service": "mail", "action": action, "resource": resource})
        return self.http.get(f"/v1/verify?{query}")
