"""The one problem-details mapper: the same error answers the same way from the log and from the gateway."""

from __future__ import annotations

import asyncio
import json

import cbor2
import pytest
from starlette.requests import Request
from starlette.responses import Response

from gateway import app as gateway_app
from gateway.errors import RequestFramingAmbiguous
from schemas.errors import (
    EntryNotFound,
    LogStale,
    Overloaded,
    PolicyDenied,
    ScopeRefused,
    TabellionError,
)
from transparency.http import problems as log_problems
from transparency.problem_details import (
    ProblemHandlers,
    problem_document,
    problem_headers,
    problem_response,
    problem_status,
)


def test_status_headers_and_members() -> None:
    assert problem_status(ScopeRefused("x", "action_out_of_scope")) == 403
    assert problem_status(RequestFramingAmbiguous("x")) == 400 and problem_status(TabellionError("x")) == 500
    assert problem_headers(Overloaded("slow down", 7)) == {"Retry-After": "7"}
    assert problem_headers(Overloaded("slow down", 0)) == {"Retry-After": "1"}
    assert problem_headers(LogStale("old")) == {"Retry-After": "1"}
    assert problem_headers(ScopeRefused("x")) == {}
    document = problem_document(PolicyDenied("no", "mail-eu", "2026.1", "false"), "/proxy/mail")
    assert document == {"type": "urn:tabellion:error:policy-denied", "title": "Denied by the connection's policy",
                        "status": 403, "detail": "no", "instance": "/proxy/mail", "reason_code": "false",
                        "policy_id": "mail-eu", "policy_version": "2026.1"}
    concise = problem_response(EntryNotFound("no entry ab"), "/entries/ab", concise=True)
    assert concise.media_type == "application/concise-problem-details+cbor" and concise.status_code == 404
    assert cbor2.loads(concise.body) == {-1: "Entry not found", -2: "no entry ab", -4: 404,
                                         "urn:tabellion:error:entry-not-found": {"code": "entry-not-found"}}


def answer(handlers: ProblemHandlers, error: Exception, path: str) -> Response:
    request = Request({"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": b"",
                       "headers": [], "scheme": "http", "server": ("gw.test", 80)})
    return asyncio.run(handlers.tabellion(request, error))


@pytest.mark.parametrize("error", [ScopeRefused("outside", "resource_out_of_scope"), LogStale("old"),
                                   Overloaded("busy", 3), RuntimeError("boom")])
def test_the_log_and_the_gateway_answer_alike(error: Exception) -> None:
    a, b = answer(gateway_app.PROBLEMS, error, "/proxy/x"), answer(log_problems.PROBLEMS, error, "/proxy/x")
    assert a.status_code == b.status_code and a.headers.get("retry-after") == b.headers.get("retry-after")
    assert a.headers["content-type"] == b.headers["content-type"] == "application/problem+json"
    first, second = json.loads(bytes(a.body)), json.loads(bytes(b.body))
    if isinstance(error, TabellionError):
        assert first == second
    else:  # each service says what it did not do
        assert first["status"] == second["status"] == 500 and "nothing was forwarded" in first["detail"]
        assert "nothing was written" in second["detail"]
    concise = answer(log_problems.PROBLEMS, error, "/entries/x")
    assert concise.headers["content-type"] == "application/concise-problem-details+cbor"
    assert answer(gateway_app.PROBLEMS, error, "/entries/x").headers["content-type"] == "application/problem+json"
