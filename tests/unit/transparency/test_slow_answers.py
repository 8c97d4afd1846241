"""A server that answers a byte every 0.1 s (each read well within httpx's per-read timeout) cannot hold a client
for ever: every answer has a total deadline (``answer-too-slow``, a ``LogUnreachable``), for a dripped body and
for dripped headers, against a real hostile server on 127.0.0.1; and a follower of a log behind a proxy that drips
its first answers gives them up and follows the log."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from gateway.state import FollowedLog
from schemas.errors import AnswerTooSlow, LogUnreachable, TabellionError
from schemas.note import ed25519_vkey, parse_vkey
from tests.did_web_host import TestCa, did_web_host
from tests.hostile_server import dripping_proxy, hostile_server
from tests.server import running_server
from transparency.client import HttpLogClient
from transparency.client.bounded import BoundedTransport, bounded_request
from transparency.client.signing import generate_key, sign_statement
from transparency.client.tiles import TileLogClient
from transparency.client.witness import WitnessClient
from verifier.keys import parse_key_set

VKEY = ed25519_vkey("witness.example/w1", bytes(32))
DEADLINE = 1.0
READ_TIMEOUT = 5.0  # per read: a drip of a byte every 0.1 s never trips it


def _gives_up_in_time(started: float, refused: pytest.ExceptionInfo[AnswerTooSlow]) -> None:
    assert refused.value.code == "answer-too-slow"
    assert isinstance(refused.value, LogUnreachable)  # callers that retry an unreachable log retry
    assert DEADLINE <= time.monotonic() - started < DEADLINE + 1.0


@pytest.mark.parametrize("kind", ["drip", "drip-headers"])
def test_a_dripped_answer_is_given_up_at_the_deadline(kind: str) -> None:
    with hostile_server() as url, HttpLogClient(f"{url}/{kind}", READ_TIMEOUT, answer_deadline_s=DEADLINE) as log:
        started = time.monotonic()
        with pytest.raises(AnswerTooSlow) as refused:
            log.checkpoint(wait=0)
        _gives_up_in_time(started, refused)


@pytest.mark.parametrize("kind", ["drip", "drip-headers"])
def test_every_bounded_client_has_the_deadline(kind: str) -> None:
    with hostile_server() as url:
        for read in (
            lambda: WitnessClient(f"{url}/{kind}", VKEY, timeout=READ_TIMEOUT,
                                  answer_deadline_s=DEADLINE).checkpoint("example.com/log"),
            lambda: TileLogClient(f"{url}/{kind}", READ_TIMEOUT, answer_deadline_s=DEADLINE).checkpoint(),
            lambda: bounded_request("GET", f"{url}/{kind}/x", timeout=READ_TIMEOUT, deadline_s=DEADLINE),
        ):
            started = time.monotonic()
            with pytest.raises(AnswerTooSlow) as refused:
                read()
            _gives_up_in_time(started, refused)


def test_a_transport_of_the_callers_own_is_checked_at_every_chunk() -> None:
    """Without the capped sockets (a caller's own inner transport), a dripped body is still given up at the first
    chunk past the deadline."""
    transport = BoundedTransport(httpx.HTTPTransport(), deadline_s=DEADLINE)
    with hostile_server() as url, httpx.Client(transport=transport, timeout=READ_TIMEOUT) as http:
        started = time.monotonic()
        with pytest.raises(AnswerTooSlow) as refused:
            http.get(f"{url}/drip/x")
        _gives_up_in_time(started, refused)


def test_a_long_poll_is_given_its_wait_on_top_of_the_deadline(tmp_path: Path) -> None:
    """The log may hold ``GET /checkpoint?after=N&wait=W`` W seconds: that is not a slow answer."""
    with running_server(tmp_path) as url, HttpLogClient(url, answer_deadline_s=DEADLINE) as log:
        started = time.monotonic()
        assert log.checkpoint(after=0, wait=2).startswith("tabellion.localhost/log\n0\n")
        assert time.monotonic() - started >= 1.5


def test_a_follower_gives_up_dripped_answers_and_follows(tmp_path: Path) -> None:
    key = generate_key()
    with running_server(tmp_path) as url, httpx.Client(base_url=url, timeout=30) as http:
        for n in range(3):
            statement = sign_statement(key, bytes([n]), subject="s", content_type="application/octet-stream")
            assert http.post("/entries", content=statement, headers={"content-type": "application/cose"}).is_success
        deadline = time.monotonic() + 30
        while int(http.get("/checkpoint").text.split("\n")[1]) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        with HttpLogClient(url) as direct:
            vkey, keys = parse_vkey(direct.vkey()), parse_key_set(direct.key_set())
        with dripping_proxy(url, drips=2) as proxy, \
                HttpLogClient(proxy.url, READ_TIMEOUT, answer_deadline_s=DEADLINE) as client:
            log = FollowedLog(client, vkey, keys, poll_interval=0.05)
            started = time.monotonic()
            log.start()
            try:
                while True:
                    try:
                        if log.position().size == 3:
                            break
                    except TabellionError:  # not followed yet
                        pass
                    assert time.monotonic() - started < 2 * DEADLINE + 10, "the follower is held by the drip"
                    time.sleep(0.05)
            finally:
                log.stop()
            assert proxy.dripped == 2  # two answers given up, then the log followed
            assert time.monotonic() - started >= 2 * DEADLINE


def test_the_capped_sockets_speak_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default transport's sockets are httpcore's own under TLS too (certificates checked as httpx checks them),
    and a TLS answer held past the deadline is given up."""
    ca = TestCa.create(tmp_path / "ca")
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.cert_path))  # httpx's trust store, from the environment
    with did_web_host(ca) as host:
        host.put("/fast.json", b"{}", content_type="application/json")
        host.put("/slow.json", b"{}", content_type="application/json", delay_s=3.0)
        fast = bounded_request("GET", f"{host.origin}/fast.json", timeout=READ_TIMEOUT, deadline_s=DEADLINE)
        assert fast.status_code == 200 and fast.json() == {}
        started = time.monotonic()
        with pytest.raises(AnswerTooSlow) as refused:
            bounded_request("GET", f"{host.origin}/slow.json", timeout=READ_TIMEOUT, deadline_s=DEADLINE)
        _gives_up_in_time(started, refused)
    monkeypatch.delenv("SSL_CERT_FILE")
    with did_web_host(ca) as host, pytest.raises(httpx.ConnectError):  # the test CA, no longer trusted
        bounded_request("GET", f"{host.origin}/fast.json", timeout=READ_TIMEOUT, deadline_s=DEADLINE)
