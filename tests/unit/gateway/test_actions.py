"""Action records: payloads from decisions, deterministic statements signed by the gateway's key, the durable
queue (order, reopening), and the submitter against a real transparency service in process (receipts verify,
a resubmission is the same entry) and against a log that fails (retried, nothing lost)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.actions import (
    DEFAULT_POLICY_ID,
    PENDING,
    ActionQueue,
    ActionRecorder,
    Round,
    batch_statement,
    gateway_key_path,
    load_or_create_gateway_key,
    next_backoff,
    record_payload,
    record_statement,
    records_in,
)
from gateway.config import ActionRecordsConfig, load_config
from gateway.decisions import Decision
from schemas import cose_labels as L
from schemas.errors import (
    ActionRecordFailed,
    GatewayKeyInvalid,
    LogRequestRefused,
    LogUnreachable,
)
from schemas.identity_statements import content_type, parse_payload
from schemas.leaf import entry_id, leaf_data
from schemas.statement import parse_statement
from tests.unit.gateway.allowed_decision import AGENT, ALLOWED, OPERATOR
from tests.unit.gateway.config_files import write_config
from transparency.client import Submitted, did_of, save_private_key
from transparency.client.local import LocalLogClient
from transparency.service import TransparencyService
from transparency.settings import Settings
from verifier.fold import Fold, FoldEntry
from verifier.keys import parse_key_set
from verifier.receipts import verify_receipt
from verifier.statements import DidKeyResolver, verify_statement

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
REFUSED = replace(ALLOWED, outcome="refuse", status=403, code="scope-refused", reason_code="resource_out_of_scope",
                  resource="outbox/1", chain=(), root_principal=None, claim=None)


def decision(n: int) -> Decision:
    return replace(ALLOWED, at=ALLOWED.at + n, resource=f"inbox/{n}")


# --- payloads and statements -----------------------------------------------------------------------------


def test_a_decision_becomes_a_payload_naming_agent_chain_and_decision() -> None:
    allowed = record_payload(ALLOWED)
    assert allowed == {
        "agent": AGENT, "delegation_chain": ["02" * 32, "03" * 32], "resource": "inbox/1", "action": "read",
        "decision": "ALLOW", "policy_id": DEFAULT_POLICY_ID, "request_digest": ALLOWED.request_digest,
        "at": ALLOWED.at, "connection": "mail-api", "service": "mail", "code": "ok", "reason_code": "ok",
        "log_size": 9, "passport": "01" * 32, "claim": "04" * 32, "root_principal": OPERATOR,
    }
    refused = record_payload(REFUSED)
    assert refused is not None and refused["decision"] == "BLOCK" and refused["delegation_chain"] == []
    assert refused["reason_code"] == "resource_out_of_scope" and "claim" not in refused
    assert record_payload(replace(ALLOWED, outcome="warn"))["decision"] == "WARN"  # type: ignore[index]
    with_policy = record_payload(replace(ALLOWED, policy_id="mail-eu", policy_version="2026.1"))
    assert with_policy is not None
    assert (with_policy["policy_id"], with_policy["policy_version"]) == ("mail-eu", "2026.1")
    long = record_payload(replace(ALLOWED, resource="x" * 5000))
    assert long is not None and len(long["resource"]) == 2048


def test_unauthenticated_and_rate_limited_refusals_are_not_recorded() -> None:
    assert record_payload(replace(REFUSED, agent=None, keyid=None, code="request-signature-invalid")) is None
    assert record_payload(replace(REFUSED, code="rate-limited", status=429)) is None


def test_a_record_is_signed_by_the_gateway_the_same_way_every_time() -> None:
    payload = record_payload(ALLOWED)
    assert payload is not None
    statement = record_statement(KEY, 5, payload)
    assert record_statement(KEY, 5, payload) == statement  # a resubmission is the same entry
    assert record_statement(KEY, 6, payload) != statement
    verified = verify_statement(statement, DidKeyResolver())
    assert verified.issuer == did_of(KEY) and verified.content_type == content_type("action-record")
    assert verified.message.protected[L.CWT_CLAIMS][L.CWT_SUB] == AGENT
    assert verified.message.protected[L.CWT_CLAIMS][L.CWT_IAT] == ALLOWED.at
    assert parse_payload("action-record", verified.payload) == payload | {"seq": 5}
    outcome = Fold().apply(FoldEntry(0, statement))  # the fold knows the type and accepts it
    assert outcome.accepted and outcome.statement_type == "action-record"


# --- the gateway's key -----------------------------------------------------------------------------------


def test_the_gateway_key_is_created_once_owner_only_and_ed25519(tmp_path: Path) -> None:
    path = tmp_path / "data" / "gateway-key.pem"
    key = load_or_create_gateway_key(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert did_of(load_or_create_gateway_key(path)) == did_of(key)
    os.chmod(path, 0o640)
    with pytest.raises(GatewayKeyInvalid, match="chmod 600"):
        load_or_create_gateway_key(path)
    p256 = tmp_path / "p256.pem"
    save_private_key(ec.generate_private_key(ec.SECP256R1()), p256)
    with pytest.raises(GatewayKeyInvalid, match="Ed25519"):
        load_or_create_gateway_key(p256)
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"not a key")
    junk.chmod(0o600)
    with pytest.raises(GatewayKeyInvalid, match="not a PEM"):
        load_or_create_gateway_key(junk)


# --- the queue -------------------------------------------------------------------------------------------


def test_the_queue_keeps_records_in_order_across_reopening(tmp_path: Path) -> None:
    path = tmp_path / "actions.sqlite"
    with ActionQueue(path) as queue:
        seqs = [queue.enqueue(d.at, record_payload(d) or {}) for d in map(decision, range(5))]
        assert seqs == [1, 2, 3, 4, 5]
        queue.keep_statements([(1, b"one")])
        queue.keep_statements([(1, b"other")])  # the first signed bytes stay
    with ActionQueue(path) as queue:  # a restart: everything still pending, in order
        pending = queue.pending(3)
        assert [r.seq for r in pending] == [1, 2, 3] and pending[0].statement == b"one"
        assert pending[2].payload == record_payload(decision(2)) and pending[2].state == PENDING
        queue.mark_logged(1, "aa" * 32, b"receipt")
        queue.mark_refused(2, "refused")
        queue.note_failure(3, "unreachable")
        assert [r.seq for r in queue.pending(10)] == [3, 4, 5]
        assert queue.counts() == {"pending": 3, "logged": 1, "refused": 1}
        assert queue.enqueue(decision(9).at, {}) == 6
    with ActionQueue(path) as queue:
        first, second, third = queue.records()[:3]
        assert (first.state, first.entry_id, first.receipt, first.attempts) == ("logged", "aa" * 32, b"receipt", 1)
        assert (second.state, second.error) == ("refused", "refused")
        assert (third.state, third.error, third.attempts) == ("pending", "unreachable", 1)
        assert [r.seq for r in queue.records(after=4)] == [5, 6]


# --- submitting ------------------------------------------------------------------------------------------


class ServiceLog:
    """A transparency service in process, as the recorder's client; ``down`` makes it unreachable, ``lose``
    registers the statement but loses the answer (a crash between the log's 201 and marking it done)."""

    def __init__(self, service: TransparencyService) -> None:
        self.client = LocalLogClient(service)
        self.down = 0
        self.lose = 0
        self.refuse: int | None = None
        self.sent: list[bytes] = []

    def submit(self, statement: bytes, *, wait: float | None = None) -> Submitted:
        self.sent.append(statement)
        if self.down:
            self.down -= 1
            raise LogUnreachable("POST /entries: connection refused")
        if self.refuse is not None:
            raise LogRequestRefused("the statement is refused", status=self.refuse)
        submitted = asyncio.run(self.client.submit(statement))
        if self.lose:
            self.lose -= 1
            raise LogUnreachable("POST /entries: the answer was lost")
        return submitted


@pytest.fixture
def service(tmp_path: Path) -> Iterator[TransparencyService]:
    service = TransparencyService(Settings(data_dir=tmp_path / "log", origin="gateway.test/log",
                                           batch_max_wait_ms=1.0))
    try:
        yield service
    finally:
        service.close()


def recorder(tmp_path: Path, client: ServiceLog, **kw: int) -> ActionRecorder:
    keys = parse_key_set(client.client.key_set())
    options = {"batch": 4, "concurrency": 1} | kw
    return ActionRecorder(ActionQueue(tmp_path / "actions.sqlite"), KEY, client, keys, **options)


def test_records_reach_the_log_in_order_with_receipts_that_verify(tmp_path: Path, service: TransparencyService) -> None:
    log = ServiceLog(service)
    rec = recorder(tmp_path, log)
    for n in range(6):
        rec.record(decision(n))
    rec.record(REFUSED)
    rec.record(replace(REFUSED, agent=None))  # not recorded
    assert rec.submit_pending() == Round(logged=4)
    assert rec.submit_pending() == Round(logged=3)
    assert rec.submit_pending() == Round()
    keys = parse_key_set(log.client.key_set())
    records = rec.queue.records()
    assert [r.state for r in records] == ["logged"] * 7
    entries = log.client.entries(0, 100)
    assert [e.statement for e in entries] == [r.statement for r in records]  # in seq order on the log
    for record in records:
        assert record.statement is not None and record.receipt is not None
        assert verify_receipt(record.receipt, record.statement, keys).leaf_index == record.seq - 1
        assert record.entry_id == entry_id(leaf_data(parse_statement(record.statement).message))
    assert parse_payload("action-record", parse_statement(records[-1].statement or b"").payload)["decision"] == "BLOCK"
    rec.close()


def test_a_failing_log_is_retried_and_a_lost_answer_is_not_a_duplicate(tmp_path: Path,
                                                                        service: TransparencyService) -> None:
    log = ServiceLog(service)
    rec = recorder(tmp_path, log)
    for n in range(3):
        rec.record(decision(n))
    log.down = 2
    failed = rec.submit_pending()  # one after the other: the first failure ends the round
    assert failed == Round(failed=1, error=failed.error) and "connection refused" in failed.error
    assert rec.submit_pending().failed == 1
    log.lose = 1  # the log registers record 1 but its answer is lost: it stays pending
    assert rec.submit_pending() == Round(failed=1, error="Log unreachable: POST /entries: the answer was lost")
    assert len(log.client.entries(0, 100)) == 1
    rec.close()
    rec = recorder(tmp_path, log)  # a restart over the same queue
    assert rec.submit_pending() == Round(logged=3)
    records = rec.queue.records()
    assert [r.state for r in records] == ["logged"] * 3 and [r.attempts for r in records] == [4, 1, 1]
    entries = log.client.entries(0, 100)
    assert [e.statement for e in entries] == [r.statement for r in records]  # in order, no duplicate
    assert log.sent == [records[0].statement] * 4 + [records[1].statement, records[2].statement]
    rec.close()


def test_a_record_the_log_refuses_for_good_is_kept_as_refused(tmp_path: Path, service: TransparencyService) -> None:
    log = ServiceLog(service)
    rec = recorder(tmp_path, log)
    rec.record(decision(0))
    log.refuse = 503
    assert rec.submit_pending().failed == 1
    log.refuse = 403
    assert rec.submit_pending() == Round(refused=1)
    (record,) = rec.queue.records()
    assert record.state == "refused" and record.error is not None and "refused" in record.error
    rec.close()


def test_a_receipt_that_does_not_verify_is_not_stored(tmp_path: Path, service: TransparencyService) -> None:
    log = ServiceLog(service)
    other = TransparencyService(Settings(data_dir=tmp_path / "other", origin="other.test/log"))
    try:
        queue = ActionQueue(tmp_path / "actions.sqlite")
        rec = ActionRecorder(queue, KEY, log, parse_key_set(other.key_set_cbor), concurrency=1)
        rec.record(decision(0))
        assert rec.submit_pending().failed == 1 and queue.records()[0].state == "pending"
        rec.close()
    finally:
        other.close()


def test_a_record_that_cannot_be_stored_refuses_the_request(tmp_path: Path, service: TransparencyService) -> None:
    rec = recorder(tmp_path, ServiceLog(service))
    rec.queue.close()
    with pytest.raises(ActionRecordFailed):
        rec.record(decision(0))
    with pytest.raises(ActionRecordFailed):
        recorder(tmp_path, ServiceLog(service)).record(replace(ALLOWED, reason_code="not a code!"))


def test_the_thread_backs_off_while_the_log_is_down_then_catches_up(tmp_path: Path,
                                                                    service: TransparencyService) -> None:
    assert [next_backoff(b, 1.0) for b in (0.0, 0.2, 0.4, 0.8)] == [0.2, 0.4, 0.8, 1.0]
    log = ServiceLog(service)
    log.down = 3
    rec = recorder(tmp_path, log, max_backoff=1)
    rec.start()
    for n in range(10):
        rec.record(decision(n))
    deadline = time.monotonic() + 20
    while rec.queue.counts()["logged"] < 10:
        assert time.monotonic() < deadline, rec.queue.counts()
        time.sleep(0.05)
    rec.close()
    assert len(log.client.entries(0, 100)) == 10


class CountingLog:
    """A log that answers every statement with an entry id of its own, from many threads at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[bytes, str] = {}
        self.in_flight = self.most_in_flight = 0

    def submit(self, statement: bytes, *, wait: float | None = None) -> Submitted:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(0.01)
        with self.lock:
            self.in_flight -= 1
            ident = self.entries.setdefault(statement, entry_id(leaf_data(parse_statement(statement).message)))
        return Submitted(ident, f"/entries/{ident}", b"receipt")


def test_a_round_submits_concurrently(tmp_path: Path) -> None:
    log = CountingLog()
    rec = ActionRecorder(ActionQueue(tmp_path / "actions.sqlite"), KEY, log, None, batch=8, concurrency=4)
    for n in range(10):
        rec.record(decision(n))
    assert rec.submit_pending() == Round(logged=8) and rec.submit_pending() == Round(logged=2)
    assert len(log.entries) == 10 and log.most_in_flight > 1
    rec.close()


def test_action_records_configuration(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    assert config.action_records == ActionRecordsConfig() and config.action_records.enabled
    assert gateway_key_path(config) == tmp_path / "gateway-data" / "gateway-key.pem"
    config = load_config(write_config(tmp_path, '[action_records]\nenabled = false\nkey_file = "k/gw.pem"\n'
                                                'batch = 10\nconcurrency = 1\nmax_backoff = 2.5\nlinger = 0\n'))
    assert config.action_records == ActionRecordsConfig(False, tmp_path / "k" / "gw.pem", 10, 1, 2.5, linger=0.0)
    assert gateway_key_path(config) == tmp_path / "k" / "gw.pem"


def test_records_go_to_the_log_in_batch_statements_each_with_its_receipt(tmp_path: Path,
                                                                        service: TransparencyService) -> None:
    log = ServiceLog(service)
    rec = recorder(tmp_path, log, batch=10, per_statement=4)
    for n in range(6):
        rec.record(decision(n))
    rec.record(REFUSED)
    assert rec.submit_pending() == Round(logged=7)
    records = rec.queue.records()
    statements = list(dict.fromkeys(r.statement or b"" for r in records))
    assert len(statements) == 2 and len(log.client.entries(0, 100)) == 2  # 4 + 3 records: two log entries
    keys = parse_key_set(log.client.key_set())
    for record in records:
        assert record.statement is not None and record.receipt is not None
        verify_receipt(record.receipt, record.statement, keys)  # each record's receipt verifies offline
        (held,) = [r for r in records_in(record.statement) if r["seq"] == record.seq]
        assert held == record.payload | {"seq": record.seq}
    assert records_in(statements[1])[-1]["decision"] == "BLOCK"
    assert batch_statement(KEY, rec.did, [(r.seq, r.payload) for r in records[:4]]) == statements[0]  # same bytes
    rec.close()


def test_a_batch_signed_before_a_crash_goes_again_as_it_was(tmp_path: Path, service: TransparencyService) -> None:
    log = ServiceLog(service)
    rec = recorder(tmp_path, log, batch=10, per_statement=3)
    for n in range(3):
        rec.record(decision(n))
    log.lose = 1  # the log registers the batch, its answer is lost
    assert rec.submit_pending().failed == 3
    for n in range(3, 5):
        rec.record(decision(n))  # new records after the loss go in a new batch, not into the signed one
    rec.close()
    rec = recorder(tmp_path, log, batch=10, per_statement=3)  # a restart over the same queue
    assert rec.submit_pending() == Round(logged=5)
    entries = log.client.entries(0, 100)
    assert len(entries) == 2 and sorted(r["seq"] for e in entries for r in records_in(e.statement)) == [1, 2, 3, 4, 5]
    rec.close()
