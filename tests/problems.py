"""Reading a refusal's stable code from either problem format the service answers (tests only)."""

from __future__ import annotations

import json

import cbor2
import httpx

from schemas.errors import PROBLEM_TYPE_BASE

CONCISE_PROBLEM = "application/concise-problem-details+cbor"
PROBLEM_JSON = "application/problem+json"


def problem_code(answer: httpx.Response) -> str:
    """The ``code`` of a problem answer: the JSON ``type`` URI's suffix, or the CBOR custom entry keyed by it.
    Raises ``AssertionError`` if the answer is not a problem with exactly one Tabellion type."""
    ctype = answer.headers.get("content-type", "")
    if ctype == PROBLEM_JSON:
        body = json.loads(answer.content)
        assert isinstance(body, dict) and body["status"] == answer.status_code, body
        kind = body["type"]
        assert isinstance(kind, str) and kind.startswith(PROBLEM_TYPE_BASE), body
        return kind.removeprefix(PROBLEM_TYPE_BASE)
    assert ctype == CONCISE_PROBLEM, f"{answer.status_code} {ctype!r}: {answer.content[:200]!r}"
    problem = cbor2.loads(answer.content)
    assert problem[-4] == answer.status_code, problem
    codes = [value["code"] for key, value in problem.items()
             if isinstance(key, str) and key.startswith(PROBLEM_TYPE_BASE)]
    assert len(codes) == 1, problem
    code: str = codes[0]
    return code


def problem(answer: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body: dict[str, object] = json.loads(answer.content)
    assert body["type"] == f"urn:tabellion:error:{code}" and body["status"] == status
    assert {"title", "detail", "instance"} <= body.keys()
    return body
