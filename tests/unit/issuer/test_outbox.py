"""The webhook outbox: idempotent enqueue, fan-out by event type, per-subscription order, claims, durability."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from issuer.outbox import EVENT_TYPES, Outbox, log_event_id, open_outbox
from schemas.errors import (
    WebhookDeliveryNotFound,
    WebhookEventConflict,
    WebhookEventInvalid,
    WebhookSubscriptionInvalid,
    WebhookSubscriptionNotFound,
)

URL = "http://127.0.0.1:9/hook"
ENTRY = "ab" * 32


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = open_outbox(tmp_path / "cache.sqlite")
    yield box
    box.close()


def _event_id(n: int, event_type: str = "claim.approved") -> str:
    return log_event_id(f"{n:064x}", event_type)


def test_the_database_is_durable_wal(outbox: Outbox) -> None:
    assert outbox.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert outbox.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_log_event_id_is_entry_id_and_type_without_full_stops() -> None:
    assert log_event_id(ENTRY, "claim.approved") == f"{ENTRY}:claim_approved"
    assert all("." not in log_event_id(ENTRY, t) for t in EVENT_TYPES)
    with pytest.raises(WebhookEventInvalid):
        log_event_id(ENTRY, "claim.exploded")
    with pytest.raises(WebhookEventInvalid):
        log_event_id("a.b", "claim.approved")


def test_enqueue_makes_one_delivery_per_matching_subscription(outbox: Outbox) -> None:
    exact = outbox.subscribe(URL + "/1", ["claim.approved"])
    prefix = outbox.subscribe(URL + "/2", ["claim.*"])
    everything = outbox.subscribe(URL + "/3", ["*"])
    keys = outbox.subscribe(URL + "/4", ["key.rotated", "key.revoked"])
    assert outbox.enqueue("claim.approved", {"claim": "c1"}, _event_id(1, "claim.approved")) == 3
    assert outbox.enqueue("claim.rejected", {"claim": "c2"}, _event_id(2, "claim.rejected")) == 2
    assert outbox.enqueue("key.rotated", {"key": "k"}, _event_id(3, "key.rotated")) == 2
    by_subscription: dict[int, list[str]] = {}
    for d in outbox.deliveries():
        by_subscription.setdefault(d.subscription_id, []).append(d.event_type)
    assert by_subscription == {
        exact.id: ["claim.approved"],
        prefix.id: ["claim.approved", "claim.rejected"],
        everything.id: ["claim.approved", "claim.rejected", "key.rotated"],
        keys.id: ["key.rotated"],
    }
    assert {d.status for d in outbox.deliveries()} == {"pending"}


def test_enqueue_is_idempotent_on_the_event_id(outbox: Outbox) -> None:
    outbox.subscribe(URL, ["*"])
    event_id = _event_id(1)
    assert outbox.enqueue("claim.approved", {"claim": "c1", "by": "human"}, event_id) == 1
    assert outbox.enqueue("claim.approved", {"by": "human", "claim": "c1"}, event_id) == 0  # same JSON
    later = datetime.now(UTC) + timedelta(hours=1)
    assert outbox.enqueue("claim.approved", {"claim": "c1", "by": "human"}, event_id, created=later) == 0
    assert len(outbox.deliveries()) == 1
    assert outbox.conn.execute("SELECT COUNT(*) FROM webhook_events").fetchone()[0] == 1


def test_an_event_id_again_with_other_content_is_a_conflict(outbox: Outbox) -> None:
    outbox.subscribe(URL, ["*"])
    event_id = _event_id(1)
    outbox.enqueue("claim.approved", {"claim": "c1"}, event_id)
    with pytest.raises(WebhookEventConflict):
        outbox.enqueue("claim.approved", {"claim": "c2"}, event_id)
    with pytest.raises(WebhookEventConflict):
        outbox.enqueue("claim.rejected", {"claim": "c1"}, event_id)
    assert len(outbox.deliveries()) == 1


def test_an_event_already_recorded_is_not_fanned_out_to_a_later_subscription(outbox: Outbox) -> None:
    outbox.enqueue("passport.issued", {"agent": "did:key:z1"}, _event_id(1, "passport.issued"))
    outbox.subscribe(URL, ["*"])
    assert outbox.enqueue("passport.issued", {"agent": "did:key:z1"}, _event_id(1, "passport.issued")) == 0
    assert outbox.deliveries() == []
    assert outbox.enqueue("passport.issued", {"agent": "did:key:z2"}, _event_id(2, "passport.issued")) == 1


def test_the_body_is_the_canonical_event(outbox: Outbox) -> None:
    outbox.subscribe(URL, ["*"])
    created = datetime(2024, 5, 6, 9, 8, 7, 654321, tzinfo=timezone(timedelta(hours=2)))
    outbox.enqueue("delegation.granted", {"to": "did:key:z2", "scope": ["read"]}, _event_id(7), created=created)
    (delivery,) = outbox.deliveries()
    assert delivery.body == (
        b'{"created":"2024-05-06T07:08:07.654321Z","data":{"scope":["read"],"to":"did:key:z2"},'
        b'"id":"' + _event_id(7).encode() + b'","type":"delegation.granted"}'
    )
    assert json.loads(delivery.body)["id"] == delivery.event_id


@pytest.mark.parametrize(
    ("event_type", "data", "event_id"),
    [
        ("claim.exploded", {}, "e1"),
        ("", {}, "e1"),
        ("claim.approved", {}, ""),
        ("claim.approved", {}, "has.full.stop"),
        ("claim.approved", {}, "spaces are bad"),
        ("claim.approved", {}, "x" * 257),
        ("claim.approved", {"n": float("nan")}, "e1"),
        ("claim.approved", {"b": b"bytes"}, "e1"),
        ("claim.approved", {"n": 2**60}, "e1"),  # outside I-JSON's exact integers
        ("claim.approved", ["not", "an", "object"], "e1"),
    ],
)
def test_bad_events_are_refused(outbox: Outbox, event_type: str, data: object, event_id: str) -> None:
    outbox.subscribe(URL, ["*"])
    with pytest.raises(WebhookEventInvalid):
        outbox.enqueue(event_type, data, event_id)  # type: ignore[arg-type]
    assert outbox.deliveries() == []


def test_a_naive_created_time_is_refused(outbox: Outbox) -> None:
    with pytest.raises(WebhookEventInvalid, match="time zone"):
        outbox.enqueue("claim.approved", {}, "e1", created=datetime(2024, 1, 1))


@pytest.mark.parametrize(
    ("url", "types"),
    [
        ("ftp://example.com/hook", ["*"]),
        ("/relative/hook", ["*"]),
        ("http:///no-host", ["*"]),
        ("https://user:pw@example.com/hook", ["*"]),
        ("https://example.com/hook#frag", ["*"]),
        ("https://example.com/" + "a" * 3000, ["*"]),
        (URL, []),
        (URL, ["claim.exploded"]),
        (URL, ["nothing.*"]),
        (URL, ["claim*"]),
    ],
)
def test_bad_subscriptions_are_refused(outbox: Outbox, url: str, types: list[str]) -> None:
    with pytest.raises(WebhookSubscriptionInvalid):
        outbox.subscribe(url, types)
    assert outbox.subscriptions(active_only=False) == []


def test_unsubscribe_stops_fan_out_and_delivery(outbox: Outbox) -> None:
    subscription = outbox.subscribe(URL, ["*"])
    outbox.enqueue("claim.approved", {}, _event_id(1))
    outbox.unsubscribe(subscription.id)
    assert outbox.subscriptions() == []
    assert [s.active for s in outbox.subscriptions(active_only=False)] == [False]
    assert outbox.enqueue("claim.approved", {}, _event_id(2)) == 0
    assert outbox.claim_due(now=10.0, lease_until=20.0) == []
    assert outbox.next_due_at() is None
    assert [d.status for d in outbox.deliveries()] == ["pending"]  # still visible
    with pytest.raises(WebhookSubscriptionNotFound):
        outbox.unsubscribe(999)


def test_only_the_lowest_pending_event_of_a_subscription_is_due(outbox: Outbox) -> None:
    a = outbox.subscribe(URL + "/a", ["*"])
    b = outbox.subscribe(URL + "/b", ["claim.*"])
    for n in range(1, 4):
        outbox.enqueue("claim.approved", {"n": n}, _event_id(n))
    first = outbox.claim_due(now=1.0, lease_until=100.0)
    assert sorted((d.subscription_id, json.loads(d.body)["data"]["n"]) for d in first) == [(a.id, 1), (b.id, 1)]
    assert all(d.attempts == 1 and d.next_attempt_at == 100.0 for d in first)
    assert outbox.claim_due(now=2.0, lease_until=100.0) == []  # claimed: in flight, nothing else due
    # subscription a's first delivery fails and waits: its second event must wait too
    outbox.mark_retry(a.id, first[0].seq, next_attempt_at=50.0, http_status=500, error="HTTP 500")
    outbox.mark_delivered(b.id, first[0].seq, now=3.0, http_status=200)
    second = outbox.claim_due(now=4.0, lease_until=100.0)
    assert [(d.subscription_id, json.loads(d.body)["data"]["n"]) for d in second] == [(b.id, 2)]
    assert outbox.next_due_at() == 50.0
    again = outbox.claim_due(now=50.0, lease_until=100.0)
    assert [(d.subscription_id, d.seq, d.attempts) for d in again] == [(a.id, first[0].seq, 2)]
    assert again[0].last_status == 500 and again[0].last_error == "HTTP 500"


def test_a_dead_letter_unblocks_the_next_event_and_stays_visible(outbox: Outbox) -> None:
    s = outbox.subscribe(URL, ["*"])
    outbox.enqueue("claim.approved", {"n": 1}, _event_id(1))
    outbox.enqueue("claim.approved", {"n": 2}, _event_id(2))
    (first,) = outbox.claim_due(now=1.0, lease_until=10.0)
    outbox.mark_failed(s.id, first.seq, http_status=None, error="ConnectError: refused")
    (second,) = outbox.claim_due(now=1.0, lease_until=10.0)
    assert second.seq > first.seq
    (failed,) = outbox.deliveries("failed")
    assert (failed.seq, failed.attempts, failed.last_error) == (first.seq, 1, "ConnectError: refused")
    with pytest.raises(WebhookDeliveryNotFound):
        outbox.mark_delivered(s.id, first.seq, now=2.0, http_status=200)  # a dead letter is not pending
    outbox.requeue(s.id, first.seq, now=5.0)
    (requeued,) = [d for d in outbox.deliveries() if d.seq == first.seq]
    assert (requeued.status, requeued.attempts, requeued.next_attempt_at) == ("pending", 0, 5.0)


def test_an_expired_claim_is_due_again(outbox: Outbox) -> None:
    outbox.subscribe(URL, ["*"])
    outbox.enqueue("claim.approved", {}, _event_id(1))
    (claimed,) = outbox.claim_due(now=1.0, lease_until=20.0)
    assert outbox.claim_due(now=19.9, lease_until=40.0) == []
    (reclaimed,) = outbox.claim_due(now=20.0, lease_until=40.0)  # the claimer died: retry after the lease
    assert (reclaimed.seq, reclaimed.attempts) == (claimed.seq, 2)


def test_marking_an_unknown_delivery_is_refused(outbox: Outbox) -> None:
    with pytest.raises(WebhookDeliveryNotFound):
        outbox.mark_retry(1, 1, next_attempt_at=2.0, http_status=None, error="x")


def test_enqueued_events_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    box = open_outbox(path)
    box.subscribe(URL, ["*"])
    box.enqueue("key.rotated", {"n": 1}, _event_id(1, "key.rotated"))
    box.conn.close()  # no clean shut-down of anything else: what was committed is there
    again = open_outbox(path)
    try:
        assert [d.event_type for d in again.deliveries("pending")] == ["key.rotated"]
        assert again.enqueue("key.rotated", {"n": 1}, _event_id(1, "key.rotated")) == 0
    finally:
        again.close()


def test_tables_coexist_with_other_cache_tables(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE folded_state (k TEXT PRIMARY KEY, v TEXT)")
    conn.commit()
    conn.close()
    box = open_outbox(path)
    box.close()
    box = open_outbox(path)  # opening twice creates nothing twice
    try:
        names = set(box.db.table_names())
        assert {"folded_state", "webhook_subscriptions", "webhook_events", "webhook_deliveries"} <= names
    finally:
        box.close()
