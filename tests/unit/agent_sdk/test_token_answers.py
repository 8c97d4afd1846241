"""The SDK refuses what a malicious or broken registry answers for a task-bound token (``token-answer-malformed``):
not JSON, a token that is not a compact JWS (it goes into an Authorization header: no CR LF smuggled), an expiry
that is not an integer, a chain that is not a list of entry ids — against a real server on 127.0.0.1."""

from __future__ import annotations

import json

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent_sdk.keys import FileKey
from agent_sdk.tokens import TokenAnswerMalformed, request_task_token
from tests.hostile_server import hostile_server

GOOD: dict[str, object] = {"token": "eyJhbGciOiJFZERTQSJ9.e30.c2ln", "expires_at": 1_900_000_000, "chain": ["ab" * 32],
        "scope": "read"}
BAD: dict[str, bytes] = {
    "not-json": b"<html>",
    "not-an-object": b"[1]",
    "no-token": json.dumps({**GOOD, "token": None}).encode(),
    "header-smuggling": json.dumps({**GOOD, "token": "a.b.c\r\nX-Injected: 1"}).encode(),
    "not-a-jws": json.dumps({**GOOD, "token": "just text"}).encode(),
    "expiry-text": json.dumps({**GOOD, "expires_at": "soon"}).encode(),
    "expiry-bool": json.dumps({**GOOD, "expires_at": True}).encode(),
    "expiry-float": json.dumps({**GOOD, "expires_at": 1e400}).encode().replace(b"Infinity", b"1e400"),
    "chain-text": json.dumps({**GOOD, "chain": "abc"}).encode(),
    "chain-numbers": json.dumps({**GOOD, "chain": [1, 2]}).encode(),
    "scope-object": json.dumps({**GOOD, "scope": {"a": 1}}).encode(),
}
FIELDS = {"agent": "did:key:z6Mk", "task_id": "t", "tools": ["read"], "service": "mail", "resource": "inbox/*",
          "delegation": "ab" * 32}


def test_a_well_formed_answer_is_taken() -> None:
    key = FileKey(Ed25519PrivateKey.generate())
    with hostile_server({"/good/v1/tokens": (201, json.dumps(GOOD).encode())}) as url, httpx.Client() as http:
        token = request_task_token(http, f"{url}/good", key, **FIELDS)
    assert token.token == GOOD["token"] and token.chain == ("ab" * 32,) and token.expires_at == 1_900_000_000


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_malformed_answer_is_refused(case: str) -> None:
    key = FileKey(Ed25519PrivateKey.generate())
    with hostile_server({f"/{case}/v1/tokens": (201, BAD[case])}) as url, httpx.Client() as http, \
            pytest.raises(TokenAnswerMalformed) as refused:
        request_task_token(http, f"{url}/{case}", key, **FIELDS)
    assert refused.value.code == "token-answer-malformed"
