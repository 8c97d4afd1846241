"""transparency.client.http against scripted answers (httpx.MockTransport); the real server is in
tests/unit/cli/test_commands.py."""

from __future__ import annotations

import email.utils
import json
from collections.abc import Callable, Iterator

import cbor2
import httpx
import pytest

from schemas.errors import (
    InvalidParameter,
    LogRequestRefused,
    LogUnreachable,
    MalformedCbor,
    RegistrationPending,
    TabellionError,
)
from schemas.proofs import ConsistencyProof
from transparency.client import HttpLogClient, LogEntry, retry_after

ID = "ab" * 32
LOCATION = f"/entries/{ID}"
RECEIPT = b"\xd2receipt"
PROBLEM_CBOR = "application/concise-problem-details+cbor"

Handler = Callable[[httpx.Request], httpx.Response]


def _client(
    answers: list[httpx.Response] | Handler, *, wait: float = 30.0
) -> tuple[HttpLogClient, list[httpx.Request], list[float]]:
    requests: list[httpx.Request] = []
    sleeps: list[float] = []
    queue: Iterator[httpx.Response] | None = iter(answers) if isinstance(answers, list) else None

    def handle(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if queue is not None:
            return next(queue)
        assert callable(answers)
        return answers(request)

    client = HttpLogClient("http://log.test/", wait=wait, transport=httpx.MockTransport(handle),
                           sleep=sleeps.append)
    return client, requests, sleeps


def _problem(status: int, title: str, detail: str, code: str = "signature-invalid") -> httpx.Response:
    body = cbor2.dumps({-1: title, -2: detail, -4: status, f"urn:tabellion:error:{code}": {"code": code}})
    return httpx.Response(status, content=body, headers={"Content-Type": PROBLEM_CBOR})


def test_201_returns_the_receipt_at_once() -> None:
    client, requests, sleeps = _client([httpx.Response(201, content=RECEIPT, headers={"Location": LOCATION})])
    done = client.submit(b"statement")
    assert (done.entry_id, done.location, done.receipt) == (ID, f"http://log.test{LOCATION}", RECEIPT)
    assert requests[0].method == "POST" and requests[0].url.path == "/entries"
    assert requests[0].headers["content-type"] == "application/cose"
    assert requests[0].content == b"statement"
    assert sleeps == []


def test_202_polls_the_location_honouring_retry_after() -> None:
    pending: list[tuple[str, float]] = []
    client, requests, sleeps = _client([
        httpx.Response(202, headers={"Location": LOCATION, "Retry-After": "2"}),
        httpx.Response(204, headers={"Retry-After": "3"}),
        httpx.Response(200, content=RECEIPT),
    ])
    done = client.submit(b"statement", on_pending=lambda ident, waited: pending.append((ident, waited)))
    assert done.receipt == RECEIPT
    assert [r.url.path for r in requests] == ["/entries", LOCATION, LOCATION]
    assert [r.method for r in requests] == ["POST", "GET", "GET"]
    assert sleeps == [2.0, 3.0]
    assert [ident for ident, _ in pending] == [ID, ID]


def test_202_past_the_deadline_has_no_receipt() -> None:
    client, requests, _ = _client([httpx.Response(202, headers={"Location": LOCATION})], wait=0.0)
    done = client.submit(b"statement")
    assert done.receipt is None and done.entry_id == ID
    assert len(requests) == 1


def test_429_is_retried_after_the_time_asked() -> None:
    client, _, sleeps = _client([
        httpx.Response(429, headers={"Retry-After": "4"}),
        httpx.Response(201, content=RECEIPT, headers={"Location": LOCATION}),
    ])
    assert client.submit(b"statement").receipt == RECEIPT
    assert sleeps == [4.0]


def test_concise_problem_becomes_log_request_refused() -> None:
    client, _, _ = _client([_problem(400, "Signature invalid", "the EdDSA signature does not verify")])
    with pytest.raises(LogRequestRefused) as caught:
        client.submit(b"statement")
    assert str(caught.value) == "Signature invalid: the EdDSA signature does not verify"
    assert caught.value.answer_status == 400
    assert caught.value.problem_type == "urn:tabellion:error:signature-invalid"
    assert isinstance(caught.value, TabellionError)


def test_problem_json_becomes_log_request_refused() -> None:
    body = json.dumps({"type": "urn:tabellion:error:invalid-parameter", "title": "Invalid request parameter",
                       "status": 400, "detail": "need 1 <= old <= new"})
    headers = {"Content-Type": "application/problem+json"}
    client, _, _ = _client([httpx.Response(400, content=body, headers=headers)])
    with pytest.raises(LogRequestRefused) as caught:
        client.consistency(5, 1)
    assert str(caught.value) == "Invalid request parameter: need 1 <= old <= new"
    assert caught.value.answer_status == 400
    assert caught.value.problem_type == "urn:tabellion:error:invalid-parameter"


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(500, content=b"Internal Server Error", headers={"Content-Type": "text/plain"}),
        httpx.Response(502, content=b"\xff\x00garbage", headers={"Content-Type": PROBLEM_CBOR}),
        httpx.Response(404, content=b"[1,2]", headers={"Content-Type": "application/problem+json"}),
    ],
)
def test_an_answer_without_problem_details_is_refused_with_its_status(answer: httpx.Response) -> None:
    client, _, _ = _client([answer])
    with pytest.raises(LogRequestRefused, match=f"^HTTP {answer.status_code}") as caught:
        client.checkpoint()
    assert caught.value.answer_status == answer.status_code


def test_a_success_without_location_is_refused() -> None:
    client, _, _ = _client([httpx.Response(201, content=RECEIPT)])
    with pytest.raises(LogRequestRefused, match="without a Location"):
        client.submit(b"statement")


def test_a_location_naming_no_entry_is_refused() -> None:
    client, _, _ = _client([httpx.Response(201, content=RECEIPT, headers={"Location": "/entries/xyz"})])
    with pytest.raises(LogRequestRefused, match="names no entry id"):
        client.submit(b"statement")


def test_receipt_is_none_while_pending() -> None:
    client, requests, _ = _client([httpx.Response(204), httpx.Response(200, content=RECEIPT)])
    assert client.receipt(ID) is None
    assert client.receipt(ID) == RECEIPT
    assert requests[0].url.path == LOCATION


def test_a_malformed_entry_id_is_refused_before_any_request() -> None:
    client, requests, _ = _client([])
    with pytest.raises(InvalidParameter):
        client.receipt("../checkpoint")
    assert requests == []


def test_transparent_statement_waits_then_gives_up() -> None:
    client, requests, _ = _client(lambda request: httpx.Response(204), wait=0.0)
    with pytest.raises(RegistrationPending):
        client.transparent_statement(ID)
    assert requests[0].url.path == f"{LOCATION}/statement"


def test_reads() -> None:
    proof = ConsistencyProof(3, 7, (b"\x01" * 32, b"\x02" * 32))

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/checkpoint":
            return httpx.Response(200, text="origin\n1\nroot\n\n— sig\n")
        if request.url.path == "/log/vkey":
            return httpx.Response(200, text="origin+01020304+AQID\n")
        if request.url.path == "/.well-known/scitt-keys":
            return httpx.Response(200, content=b"\x80")
        if request.url.path == "/proofs/consistency":
            assert dict(request.url.params) == {"old": "3", "new": "7"}
            return httpx.Response(200, content=proof.encode())
        assert request.url.path == "/entries" and dict(request.url.params) == {"start": "5", "limit": "2"}
        return httpx.Response(200, content=cbor2.dumps([[5, b"s5", b"r5"], [6, b"s6", b"r6"]]))

    client, _, _ = _client(answer)
    assert client.checkpoint() == "origin\n1\nroot\n\n— sig\n"
    assert client.vkey() == "origin+01020304+AQID"
    assert client.key_set() == b"\x80"
    assert client.consistency(3, 7) == proof
    entries = client.entries(5, 2)
    assert entries == [LogEntry(5, b"s5", b"r5"), LogEntry(6, b"s6", b"r6")]
    index, statement, receipt = entries[0]
    assert (index, statement, receipt) == (5, b"s5", b"r5")


def test_a_consistency_proof_for_other_sizes_is_refused() -> None:
    client, _, _ = _client([httpx.Response(200, content=ConsistencyProof(1, 7, ()).encode())])
    with pytest.raises(LogRequestRefused, match="answered 1 and 7"):
        client.consistency(3, 7)


@pytest.mark.parametrize("page", [{"a": 1}, [[1, b"s"]], [["1", b"s", b"r"]], [[True, b"s", b"r"]]])
def test_a_malformed_entries_page_is_refused(page: object) -> None:
    client, _, _ = _client([httpx.Response(200, content=cbor2.dumps(page))])
    with pytest.raises(MalformedCbor):
        client.entries()


def test_an_unreachable_log() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client, _, _ = _client(refuse)
    with pytest.raises(LogUnreachable, match="connection refused"):
        client.checkpoint()


def test_a_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(InvalidParameter):
        HttpLogClient("file:///etc/passwd")


def test_retry_after_forms() -> None:
    assert retry_after(None) == 1.0
    assert retry_after("5") == 5.0
    assert retry_after("100000") == 60.0
    assert retry_after("soon") == 1.0
    assert retry_after("²") == retry_after("٣") == 1.0  # Unicode digits are not delay-seconds
    now = 1_700_000_000.0
    assert retry_after(email.utils.formatdate(now + 7, usegmt=True), now=now) == 7.0
    assert retry_after(email.utils.formatdate(now - 7, usegmt=True), now=now) == 0.0
