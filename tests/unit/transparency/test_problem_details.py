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
    STATUS_BY_CODE,
    ProblemHandlers,
    problem_document,
    problem_headers,
    problem_response,
    problem_status,
    status_of_class,
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


def _every_error_class() -> list[type[TabellionError]]:
    """Every TabellionError subclass of every package (each module imported, so that each class exists)."""
    import importlib
    import pkgutil

    for package in ("schemas", "verifier", "transparency", "issuer", "gateway", "witness", "monitor", "webui",
                    "explorer", "console", "agent_sdk", "cli"):
        for info in pkgutil.walk_packages(importlib.import_module(package).__path__, package + "."):
            importlib.import_module(info.name)
    found, todo = [], [TabellionError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_statuses_are_decided_by_the_mapper_alone() -> None:
    """No error class carries a status; every entry of the table names a code some error class has; families and
    their exceptions map as before the statuses left the classes (a known-answer sample of each)."""
    classes = _every_error_class()
    assert len(classes) > 150
    assert not [c for c in classes if "status" in vars(c)], "a status belongs in transparency.problem_details"
    codes = {vars(c).get("code") for c in classes}
    assert set(STATUS_BY_CODE) <= codes
    from console.state import CsrfRefused
    from gateway.errors import MethodOverrideRefused, UpstreamAnswerUnreadable
    from schemas import errors as e
    from witness.errors import CheckpointRefused, OldSizeConflict
    known = {e.BadInput: 400, e.MalformedCbor: 400, e.SignatureInputInvalid: 400, e.SignatureBaseInvalid: 400,
             e.RequestSignatureRefused: 401, e.ReplayDetected: 401, e.TokenScopeRefused: 403,
             e.ScopeRefused: 403, e.PolicyDenied: 403, e.EntryNotFound: 404, e.McpMethodNotAllowed: 405,
             e.RequestBodyTimeout: 408, e.WebhookEventConflict: 409, e.PayloadTooLarge: 413,
             e.UnsupportedMediaType: 415, e.Overloaded: 429, e.RateLimited: 429, e.TabellionError: 500,
             e.StorageError: 500, e.DidWebUnreachable: 502, e.UpstreamUnreachable: 502, e.LogStale: 503,
             e.LogUnwitnessed: 503, e.RegistrationPending: 503, e.UpstreamTimeout: 504,
             MethodOverrideRefused: 400, UpstreamAnswerUnreadable: 502, CheckpointRefused: 422, OldSizeConflict: 409,
             CsrfRefused: 403}
    assert {cls: status_of_class(cls) for cls in known} == known
    relayed = e.LogRequestRefused("the log said no", status=400)
    assert problem_status(relayed) == 400 and status_of_class(e.LogRequestRefused) == 502
