"""Action records end to end, every part a real process on 127.0.0.1: the transparency service, ``tabellion
gateway`` in a subprocess, a recording upstream and, for the crash test, a gate in front of the log. Allowed
and refused calls become action-record statements on the log, signed by the gateway's did:key, with receipts
that verify offline with the log's key set alone; a ``kill -9`` of the gateway loses none and duplicates
none."""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.actions import ACTIONS_FILE, GATEWAY_KEY_FILE, ActionQueue, load_or_create_gateway_key, records_in
from issuer.statements import Signer
from schemas.identity_statements import content_type
from schemas.statement import parse_statement
from tests.e2e.gateway_deployment import gateway_deployment, send, signed
from tests.gateway_world import World
from tests.http_stub import serving
from tests.server import ServerUrl
from transparency.client import HttpLogClient, did_of
from verifier.keys import KeySet, parse_key_set
from verifier.receipts import verify_receipt
from verifier.statements import DidKeyResolver, verify_statement

ACTION_RECORD = content_type("action-record")
ACTION_RECORD_BATCH = content_type("action-record-batch")  # the gateway's default: up to 64 records a statement


def logged_records(log_url: str, gateway_did: str) -> list[tuple[bytes, bytes, dict[str, Any]]]:
    """(statement, receipt, payload) of every action record on the log signed by ``gateway_did``, in log order."""
    found = []
    with HttpLogClient(log_url) as client:
        start = 0
        while page := client.entries(start, 100):
            for entry in page:
                statement = parse_statement(entry.statement)
                if statement.content_type in (ACTION_RECORD, ACTION_RECORD_BATCH) and statement.issuer == gateway_did:
                    found += [(entry.statement, entry.receipt, payload) for payload in records_in(entry.statement)]
            start = page[-1].leaf_index + 1
    return found


def wait_until_logged(queue_path: Path, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    with ActionQueue(queue_path) as queue:
        while (counts := queue.counts())["logged"] < count:
            assert time.monotonic() < deadline, f"the action records did not reach the log: {counts}"
            time.sleep(0.05)
        assert counts == {"pending": 0, "logged": count, "refused": 0}, counts


def check_record(statement: bytes, receipt: bytes, keys: KeySet, gateway_did: str) -> None:
    """Offline: the receipt with the log's key set alone, the statement under the gateway's did:key."""
    verify_receipt(receipt, statement, keys)
    assert verify_statement(statement, DidKeyResolver()).issuer == gateway_did


def test_allowed_and_refused_calls_become_action_records_with_receipts(tmp_path: Path) -> None:
    with gateway_deployment(tmp_path) as deployment:
        world, url, gateway, log_url = deployment.world, deployment.url, deployment.gateway, deployment.log
        assert send(signed(world, url, "/proxy/mail-api/inbox/1")).status_code == 200
        assert send(signed(world, url, "/proxy/mail-api/inbox/drafts", "POST", b'{"to": "b"}')).status_code == 200
        assert send(signed(world, url, "/proxy/mail-api/outbox/1")).status_code == 403
        assert send(signed(world, url, "/proxy/mail-api/inbox/1", "DELETE")).status_code == 403
        # not proven: the agent is unknown or the signature fails, so there is no agent to record
        assert send(signed(world, url, agent=Signer(Ed25519PrivateKey.generate()))).status_code == 401
        assert send(signed(world, url, key=Ed25519PrivateKey.generate())).status_code == 401
        wait_until_logged(tmp_path / "gw-data" / ACTIONS_FILE, 4)
        gateway.stop()

        gateway_did = did_of(load_or_create_gateway_key(tmp_path / "gw-data" / GATEWAY_KEY_FILE))
        with HttpLogClient(log_url) as client:
            keys = parse_key_set(client.key_set())  # all a regulator needs, with the records
        records = logged_records(log_url, gateway_did)
        assert [p["seq"] for _, _, p in records] == [1, 2, 3, 4]
        for statement, receipt, payload in records:
            check_record(statement, receipt, keys, gateway_did)
            assert payload["agent"] == world.c.identity and payload["service"] == "mail"
            assert payload["request_digest"].startswith("sha-256:") and payload["log_size"] >= len(world.statements)
        read, write, outside, delete = (p for _, _, p in records)
        assert (read["decision"], read["action"], read["resource"]) == ("ALLOW", "read", "inbox/1")
        assert read["delegation_chain"] == list(world.chain) and read["claim"] == world.claim
        assert read["root_principal"] == world.operator.identity
        assert (write["decision"], write["action"], write["resource"]) == ("ALLOW", "write", "inbox/drafts")
        assert (outside["decision"], outside["code"], outside["reason_code"]) == (
            "BLOCK", "scope-refused", "resource_out_of_scope")
        assert (delete["decision"], delete["action"], delete["reason_code"]) == (
            "BLOCK", "delete", "action_out_of_scope")

        # the receipts the gateway stored are the log's, and verify the same way
        with ActionQueue(tmp_path / "gw-data" / ACTIONS_FILE) as queue:
            stored = queue.records()
        assert [r.statement for r in stored] == [s for s, _, _ in records]
        for record in stored:
            assert record.statement is not None and record.receipt is not None
            check_record(record.statement, record.receipt, keys, gateway_did)


# --- a crash before the records reach the log --------------------------------------------------------------


class LogGate(BaseHTTPRequestHandler):
    """Forwards to the real log. ``mode``: ``pass``; ``block`` answers ``POST /entries`` 503 without forwarding;
    ``swallow`` forwards it (the log registers the statement) and answers 503 (the answer is lost)."""

    real: str
    mode = "pass"
    swallowed = 0

    def do_GET(self) -> None:  # noqa: N802 - the http.server hook
        answer = httpx.get(self.real + self.path, timeout=40)
        self._relay(answer.status_code, answer.headers, answer.content)

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if LogGate.mode == "block":
            self._relay(503, {"Retry-After": "1"}, b"")
            return
        answer = httpx.post(self.real + self.path, content=body, headers={"Content-Type": "application/cose"},
                            timeout=40)
        if LogGate.mode == "swallow":
            LogGate.swallowed += 1
            self._relay(503, {"Retry-After": "1"}, b"")
            return
        self._relay(answer.status_code, answer.headers, answer.content)

    def _relay(self, status: int, headers: Any, body: bytes) -> None:
        self.send_response(status)
        for name in ("Content-Type", "Location", "Retry-After"):
            if headers.get(name) is not None:
                self.send_header(name, headers[name])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


def gated(log_url: ServerUrl) -> AbstractContextManager[str]:
    """A ``LogGate`` in front of ``log_url``, passing everything until its ``mode`` is changed."""
    LogGate.real, LogGate.mode, LogGate.swallowed = log_url, "pass", 0
    return serving(LogGate)


def calls(world: World, url: str, n: int) -> None:
    for i in range(n):
        ok = send(signed(world, url, f"/proxy/mail-api/inbox/{i}"))
        assert ok.status_code == 200, ok.text
        assert send(signed(world, url, f"/proxy/mail-api/outbox/{i}")).status_code == 403


def test_a_kill_9_before_submission_loses_no_record_and_duplicates_none(tmp_path: Path) -> None:
    with gateway_deployment(tmp_path, log_front=gated, long_poll=1,
                            tables="\n[action_records]\nmax_backoff = 0.5\n") as deployment:
        world, gateway, log_url = deployment.world, deployment.gateway, deployment.log
        queue_path = tmp_path / "gw-data" / ACTIONS_FILE
        gateway_did = did_of(load_or_create_gateway_key(tmp_path / "gw-data" / GATEWAY_KEY_FILE))
        LogGate.mode = "block"  # the log takes no record: they wait in the gateway's queue
        calls(world, gateway.url, 3)
        LogGate.mode = "swallow"  # the log takes them, the gateway never hears so
        deadline = time.monotonic() + 20
        while LogGate.swallowed < 6:
            assert time.monotonic() < deadline, "the gateway submitted nothing"
            time.sleep(0.05)
        calls(world, gateway.url, 2)
        with ActionQueue(queue_path) as queue:
            assert queue.counts()["logged"] == 0 and queue.counts()["pending"] == 10
        assert gateway.process is not None
        gateway.process.kill()  # kill -9: no shut-down of any kind
        gateway.process.wait(5)
        assert len(logged_records(log_url, gateway_did)) >= 6  # some are on the log already

        LogGate.mode = "pass"
        gateway.start()  # the same data folder: the queue and the key
        wait_until_logged(queue_path, 10)
        gateway.stop()

        with HttpLogClient(log_url) as client:
            keys = parse_key_set(client.key_set())
        records = logged_records(log_url, gateway_did)
        assert sorted(p["seq"] for _, _, p in records) == list(range(1, 11))  # every one, once
        for statement, receipt, _ in records:
            check_record(statement, receipt, keys, gateway_did)
        decisions = [p["decision"] for _, _, p in sorted(records, key=lambda r: r[2]["seq"])]
        assert decisions == ["ALLOW", "BLOCK"] * 5
