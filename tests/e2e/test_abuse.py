"""The service under abuse, over real HTTP: every refusal is a problem with a stable code, never a 5xx, and the
log does not change. Integer parameters (Unicode digits, numbers beyond SQLite's range), deeply nested JSON,
request bodies that stall or trickle (a raw socket against a server with a 2 s body timeout)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import cbor2
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.cose_builder import sign1
from tests.problems import CONCISE_PROBLEM, PROBLEM_JSON, problem_code
from tests.server import ServerUrl, running_server

BODY_TIMEOUT_S = 2.0
JSON_ROUTES = ["/v1/tokens", "/api/agent/verify"]

NOT_INTEGERS = ["²", "١٢", "٣", "𝟗", "9999999999999999999", "1" * 25, "1" * 5000, "-1", "", "+1", " 1", "1.0", "0x1",
                "1_000", "1e3"]
INTEGER_PARAMETERS = [
    ("/entries", "start", {"limit": "1"}),
    ("/entries", "limit", {}),
    ("/checkpoint", "after", {"wait": "0"}),
    ("/checkpoint", "wait", {"after": "0"}),
    ("/proofs/consistency", "old", {"new": "1"}),
    ("/proofs/consistency", "new", {"old": "1"}),
    ("/v1/claims/approved", "after", {}),
    ("/v1/claims/approved", "limit", {}),
]


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerUrl]:
    with running_server(tmp_path_factory.mktemp("abuse"), body_read_timeout_s=BODY_TIMEOUT_S) as running:
        yield running


@pytest.fixture(scope="module")
def http(url: ServerUrl) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=30) as client:
        yield client


def _size(http: httpx.Client) -> int:
    return int(http.get("/checkpoint").text.split("\n")[1])


@pytest.mark.parametrize(("path", "name", "others"), INTEGER_PARAMETERS)
def test_integer_parameters_take_ascii_digits_in_range_only(http: httpx.Client, path: str, name: str,
                                                            others: dict[str, str]) -> None:
    before = _size(http)
    for value in NOT_INTEGERS:
        answer = http.get(path, params={**others, name: value})
        assert answer.status_code == 400, (value, answer.status_code, answer.text[:300])
        assert problem_code(answer) == "invalid-parameter", value
    assert _size(http) == before


def test_integers_at_the_edges_of_the_range(http: httpx.Client) -> None:
    """The largest 64-bit index is a valid parameter (an empty page), one above it is refused, not a 500."""
    assert http.get("/entries", params={"start": str(2**63 - 1)}).status_code == 200
    assert http.get("/entries", params={"start": "00000000000000000001"}).status_code == 400  # 20 digits
    assert http.get("/entries", params={"start": "0000000000000000001"}).status_code == 200
    assert http.get("/v1/claims/approved", params={"after": str(2**63 - 1)}).status_code == 200
    answer = http.get("/v1/claims/approved", params={"limit": "1001"})
    assert answer.status_code == 400 and problem_code(answer) == "invalid-parameter"


@pytest.mark.parametrize("path", ["/entries/{}", "/entries/{}/statement", "/v1/claims/{}"])
def test_path_identifiers_with_unicode_digits(http: httpx.Client, path: str) -> None:
    for text in ["²" * 64, "٣" * 64, "1" * 5000]:
        answer = http.get(path.format(text))
        assert answer.status_code == 400 and problem_code(answer) == "invalid-parameter", text


# --- JSON nesting ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", JSON_ROUTES)
@pytest.mark.parametrize("body", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"agent":' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    b'{"a":' * 33 + b"1" + b"}" * 33,
    b"[" * 200_000,  # unbalanced: json.loads would recurse into it before finding the error
])
def test_deeply_nested_json_is_refused_before_parsing(http: httpx.Client, path: str, body: bytes) -> None:
    before = _size(http)
    answer = http.post(path, content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 400, answer.text[:300]
    assert problem_code(answer) == "json-too-deep"
    assert _size(http) == before


@pytest.mark.parametrize("path", JSON_ROUTES)
@pytest.mark.parametrize("body", [b'{"agent": ' + b"1" * 5000 + b"}", b'{"agent": NaN}', b"\xff\xfe{}", b"[]"])
def test_json_that_python_reads_loosely_is_refused(http: httpx.Client, path: str, body: bytes) -> None:
    answer = http.post(path, content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 400 and problem_code(answer) == "payload-invalid", answer.text[:300]


def test_nesting_within_the_bound_is_read(http: httpx.Client) -> None:
    body = b'{"agent": "did:example:a", "credential": {"x": ' + b"[" * 29 + b"]" * 29 + b"}}"
    answer = http.post("/api/agent/verify", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 200 and answer.json()["verified"] is False  # read, and answered


# --- request bodies that stall or trickle ------------------------------------------------------------------------


def _raw_post(url: str, path: str, ctype: str, declared: int, parts: list[tuple[float, bytes]],
              wait_s: float = 3 * BODY_TIMEOUT_S + 5) -> tuple[httpx.Response, float]:
    """POST over a raw socket: the head, then each part after its pause (a broken pipe ends the sending); the
    answer as parsed by httpx, and the seconds from the head to the answer's first byte."""
    split = urlsplit(url)
    with socket.create_connection((split.hostname, split.port), timeout=wait_s) as sock:
        head = (f"POST {path} HTTP/1.1\r\nHost: {split.netloc}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {declared}\r\n\r\n")
        started = time.monotonic()
        sock.sendall(head.encode("ascii"))
        sock.setblocking(False)
        answer = b""
        for pause, data in parts:
            end = time.monotonic() + pause
            while time.monotonic() < end and not answer:
                try:
                    answer = sock.recv(65536)
                except BlockingIOError:
                    time.sleep(0.02)
            if answer:
                break
            try:
                sock.sendall(data)
            except OSError:
                break
        sock.settimeout(wait_s)
        while True:
            if answer:
                elapsed = time.monotonic() - started
                break
            answer = sock.recv(65536)
            assert answer, "the server closed the connection without an answer"
        while chunk := _recv_rest(sock):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    headers_text, _, body = rest.partition(b"\r\n\r\n")
    headers = dict(line.split(": ", 1) for line in headers_text.decode("latin-1").split("\r\n") if line)
    length = int(headers.get("content-length", len(body)))
    return httpx.Response(int(status_line.split()[1]), headers=headers, content=body[:length]), elapsed


def _recv_rest(sock: socket.socket) -> bytes:
    sock.settimeout(0.5)
    try:
        return sock.recv(65536)
    except (TimeoutError, OSError):
        return b""


def test_a_stalled_body_is_refused_with_408(url: ServerUrl, http: httpx.Client) -> None:
    before = _size(http)
    statement = sign1(Ed25519PrivateKey.generate(), None)
    stall = 6 * BODY_TIMEOUT_S
    answer, elapsed = _raw_post(url, "/entries", "application/cose", len(statement),
                                [(0, statement[:10]), (stall, statement[10:])], wait_s=stall + 5)
    assert answer.status_code == 408 and answer.headers["content-type"] == CONCISE_PROBLEM
    assert problem_code(answer) == "request-body-timeout"
    # at the timeout, not before, and not when the client sends the rest: the server cut the stalled body
    assert BODY_TIMEOUT_S - 0.2 <= elapsed < stall - 1, elapsed
    assert _size(http) == before


def test_a_trickled_body_is_refused_with_408(url: ServerUrl, http: httpx.Client) -> None:
    """A byte every 0.3 s never stalls for the timeout, but averages far under the minimum rate."""
    before = _size(http)
    body = b'{"agent": "did:example:slow"}'
    parts = [(0.3, body[i:i + 1]) for i in range(len(body))]
    answer, elapsed = _raw_post(url, "/api/agent/verify", "application/json", len(body), parts)
    assert answer.status_code == 408 and answer.headers["content-type"] == PROBLEM_JSON
    assert problem_code(answer) == "request-body-timeout"
    # at the timeout, not before, and before the client's last byte: the server cut the trickle
    assert BODY_TIMEOUT_S - 0.2 <= elapsed < sum(pause for pause, _ in parts) - 0.5, elapsed
    assert _size(http) == before


def test_a_body_sent_in_parts_with_short_pauses_is_read(url: ServerUrl, http: httpx.Client) -> None:
    statement = sign1(Ed25519PrivateKey.generate(), None, payload=b'{"parts": 3}')
    third = len(statement) // 3
    answer, _ = _raw_post(url, "/entries", "application/cose", len(statement),
                          [(0, statement[:third]), (0.5, statement[third:2 * third]), (0.5, statement[2 * third:])])
    assert answer.status_code == 201, cbor2.loads(answer.content) if answer.content else answer


# --- Starlette's own refusals --------------------------------------------------------------------------------------


def test_unknown_paths_and_methods_are_problems_too(http: httpx.Client) -> None:
    for method, path, status, code in [("GET", "/nope", 404, "not-found"), ("GET", "/entries/x/y/z", 404, "not-found"),
                                       ("DELETE", "/entries", 405, "method-not-allowed"),
                                       ("PUT", "/checkpoint", 405, "method-not-allowed"),
                                       ("GET", "/v1/tokens", 405, "method-not-allowed")]:
        answer = http.request(method, path)
        assert answer.status_code == status and problem_code(answer) == code, (method, path, answer.text)
        if status == 405:
            assert answer.headers["allow"]
