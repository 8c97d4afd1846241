"""The webhook outbox: subscriptions, events and their deliveries, in SQLite (WAL, synchronous=FULL).

The tables live in the issuer's cache database (the caller gives the file) next to the tables folded from
the log, under their own ``webhook_`` names. Unlike those, they are not derived from the log: an enqueued
event is committed (fsync'd) before ``enqueue`` returns and stays until it is delivered or dead-lettered,
so it is delivered at least once across a crash or restart. If the whole cache file is thrown away and
rebuilt from the log, the follower enqueues every event again under the same deterministic event ids
(``log_event_id``): receivers see the same ``webhook-id`` and dedupe.

Tables:
- ``webhook_subscriptions``: an endpoint URL and the event types it wants (exact, ``prefix.*`` or ``*``).
- ``webhook_events``:        one per event id, in sequence order (``seq``), with its body as sent.
- ``webhook_deliveries``:    one per (subscription, event), ``pending`` -> ``delivered`` | ``failed`` (the
                             dead letter, kept visible), with attempts, the next attempt time, the last
                             status and error.
- ``webhook_log_cursor``:    the first log entry whose events have not been derived yet (``issuer.log_state``),
                             so a start derives only the events of entries logged since.

Per subscription, deliveries go out one at a time in event sequence: only the lowest pending event of a
subscription is ever due, so event n+1 waits until event n is delivered or dead-lettered. A delivery that is
being attempted is *claimed* (its attempt counted, its next attempt moved past the attempt's deadline) in
the same transaction that finds it due; a dispatcher killed mid-attempt leaves it to be retried when that
lease runs out.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import rfc8785
import sqlite_utils

from schemas.errors import (
    WebhookDeliveryNotFound,
    WebhookEventConflict,
    WebhookEventInvalid,
    WebhookSubscriptionInvalid,
    WebhookSubscriptionNotFound,
)
from transparency.sqlite_files import connect

EVENT_TYPES: Final = (
    "statement.submitted",
    "passport.issued",
    "delegation.granted",
    "claim.submitted",
    "claim.approved",
    "claim.rejected",
    "claim.revoked",
    "key.rotated",
    "key.revoked",
    "credential.revoked",
)
"""Every lifecycle change the issuer reports, one event per change, named ``<subject>.<change>``."""

DeliveryStatus = Literal["pending", "delivered", "failed"]

# Standard Webhooks: the id is signed as "{id}.{timestamp}.{body}", so it must not contain a full stop.
_EVENT_ID: Final = re.compile(r"[A-Za-z0-9_:-]{1,256}", re.ASCII)
_MAX_URL_LENGTH: Final = 2048
# The one delivery of a subscription that may be attempted: its lowest pending event. The queries run from the
# subscriptions (CROSS JOIN fixes SQLite's loop order), so finding the heads costs O(subscriptions * log n).
_HEAD: Final = (
    "d.status = 'pending' AND s.active = 1 AND d.seq = (SELECT MIN(p.seq) FROM webhook_deliveries p "
    "WHERE p.subscription_id = s.id AND p.status = 'pending')"
)
_NEXT_DUE: Final = (
    "SELECT MIN(d.next_attempt_at) FROM webhook_subscriptions s "  # noqa: S608 (constants only)
    "CROSS JOIN webhook_deliveries d ON d.subscription_id = s.id WHERE " + _HEAD
)
_SELECT_DELIVERIES: Final = (
    "SELECT d.subscription_id, s.url, d.seq, e.event_id, e.type, e.body, d.status, d.attempts, "
    "d.next_attempt_at, d.last_status, d.last_error, d.delivered_at "
    "FROM webhook_subscriptions s CROSS JOIN webhook_deliveries d ON d.subscription_id = s.id "
    "JOIN webhook_events e ON e.seq = d.seq "
)


@dataclass(frozen=True)
class Subscription:
    id: int
    url: str
    event_types: tuple[str, ...]
    active: bool

    def wants(self, event_type: str) -> bool:
        return any(_matches(pattern, event_type) for pattern in self.event_types)


@dataclass(frozen=True)
class Delivery:
    """One (subscription, event) pair and where its delivery stands."""

    subscription_id: int
    url: str
    seq: int
    event_id: str
    event_type: str
    body: bytes
    status: DeliveryStatus
    attempts: int
    next_attempt_at: float
    last_status: int | None
    last_error: str | None
    delivered_at: float | None


def log_event_id(entry_id: str, event_type: str) -> str:
    """The event id of the change ``event_type`` made by log entry ``entry_id`` (the same on every rebuild)."""
    _check_event_type(event_type)
    return _check_event_id(f"{entry_id}:{event_type.replace('.', '_')}")


def open_outbox(path: Path) -> Outbox:
    """Open (and on first use create) the outbox tables in the database file at ``path``."""
    db = sqlite_utils.Database(connect(path))
    db.execute("PRAGMA foreign_keys=ON")
    outbox = Outbox(db)
    outbox.create_tables()
    return outbox


class Outbox:
    """Subscriptions and the durable queue of deliveries. One instance per connection (per thread)."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        self.conn: sqlite3.Connection = db.conn

    def close(self) -> None:
        self.conn.close()

    def create_tables(self) -> None:
        with self._write():
            self.db.table("webhook_subscriptions").create(
                {"id": int, "url": str, "event_types": str, "active": int, "created_at": float},
                pk="id", not_null={"url", "event_types", "active", "created_at"}, if_not_exists=True,
            )
            self.db.table("webhook_events").create(
                {"seq": int, "event_id": str, "type": str, "data": str, "body": bytes, "created_at": float},
                pk="seq", not_null={"event_id", "type", "data", "body", "created_at"}, if_not_exists=True,
            )
            self.db.table("webhook_events").create_index(["event_id"], unique=True, if_not_exists=True)
            self.db.table("webhook_deliveries").create(
                {"subscription_id": int, "seq": int, "status": str, "attempts": int, "next_attempt_at": float,
                 "last_status": int, "last_error": str, "delivered_at": float},
                pk=("subscription_id", "seq"), not_null={"status", "attempts", "next_attempt_at"},
                foreign_keys=[("subscription_id", "webhook_subscriptions", "id"), ("seq", "webhook_events", "seq")],
                if_not_exists=True,
            )
            self.db.table("webhook_deliveries").create_index(
                ["status", "subscription_id", "seq"], if_not_exists=True
            )
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS webhook_log_cursor (id INTEGER PRIMARY KEY CHECK (id = 1), "
                "next_index INTEGER NOT NULL)"
            )

    # --- where the events were derived up to ---------------------------------------------------------

    def log_cursor(self) -> int | None:
        """The first log entry whose events have not been derived yet; ``None`` for a new outbox."""
        row = self.conn.execute("SELECT next_index FROM webhook_log_cursor WHERE id = 1").fetchone()
        return None if row is None else int(row[0])

    def set_log_cursor(self, next_index: int) -> None:
        with self._write():
            self.conn.execute("INSERT OR REPLACE INTO webhook_log_cursor (id, next_index) VALUES (1, ?)",
                              (next_index,))

    # --- subscriptions -----------------------------------------------------------------------------

    def subscribe(self, url: str, event_types: Iterable[str]) -> Subscription:
        """A new active subscription of ``url`` (http or https) to ``event_types``; it gets events enqueued from now."""
        _check_url(url)
        patterns = tuple(event_types)
        if not patterns:
            raise WebhookSubscriptionInvalid("a subscription needs at least one event type")
        for pattern in patterns:
            _check_pattern(pattern)
        with self._write():
            cursor = self.conn.execute(
                "INSERT INTO webhook_subscriptions (url, event_types, active, created_at) VALUES (?, ?, 1, ?)",
                (url, json.dumps(patterns), time.time()),
            )
        return Subscription(int(cursor.lastrowid or 0), url, patterns, True)

    def unsubscribe(self, subscription_id: int) -> None:
        """Stop delivering to a subscription; its pending deliveries stay visible and are no longer attempted."""
        with self._write():
            cursor = self.conn.execute(
                "UPDATE webhook_subscriptions SET active = 0 WHERE id = ?", (subscription_id,)
            )
        if cursor.rowcount == 0:
            raise WebhookSubscriptionNotFound(f"no webhook subscription {subscription_id}")

    def subscriptions(self, *, active_only: bool = True) -> list[Subscription]:
        rows = self.conn.execute(
            "SELECT id, url, event_types, active FROM webhook_subscriptions WHERE active >= ? ORDER BY id",
            (1 if active_only else 0,),
        ).fetchall()
        return [Subscription(r[0], r[1], tuple(json.loads(r[2])), bool(r[3])) for r in rows]

    # --- events --------------------------------------------------------------------------------------

    def enqueue(
        self, event_type: str, data: Mapping[str, Any], event_id: str, *, created: datetime | None = None
    ) -> int:
        """Record event ``event_id`` and one pending delivery per active subscription that wants its type.

        Idempotent: an event id already recorded adds nothing (0 is returned) — unless it comes with another
        type or other data, which is a conflict. Returns the number of deliveries added. The row is durable
        when this returns.
        """
        _check_event_type(event_type)
        _check_event_id(event_id)
        canonical_data = _canonical(data)
        created = datetime.now(UTC) if created is None else created
        if created.tzinfo is None:
            raise WebhookEventInvalid("the event's created time must carry a time zone")
        body = _canonical({
            "id": event_id,
            "type": event_type,
            "created": created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "data": dict(data),
        })
        with self._write():
            existing = self.conn.execute(
                "SELECT type, data FROM webhook_events WHERE event_id = ?", (event_id,)
            ).fetchone()
            if existing is not None:
                if (existing[0], existing[1]) != (event_type, canonical_data.decode()):
                    raise WebhookEventConflict(
                        f"event {event_id} was enqueued before with another type or other data"
                    )
                return 0
            seq = self.conn.execute(
                "INSERT INTO webhook_events (event_id, type, data, body, created_at) VALUES (?, ?, ?, ?, ?)",
                (event_id, event_type, canonical_data.decode(), body, created.timestamp()),
            ).lastrowid
            wanting = [s.id for s in self.subscriptions() if s.wants(event_type)]
            self.conn.executemany(
                "INSERT INTO webhook_deliveries (subscription_id, seq, status, attempts, next_attempt_at) "
                "VALUES (?, ?, 'pending', 0, 0)",
                [(subscription_id, seq) for subscription_id in wanting],
            )
        return len(wanting)

    # --- the dispatcher's side -----------------------------------------------------------------------

    def claim_due(self, now: float, lease_until: float, limit: int = 100) -> list[Delivery]:
        """The deliveries due at ``now`` (at most one per subscription, its lowest pending event), claimed.

        Claiming counts the attempt and moves the next attempt to ``lease_until`` in the same transaction, so
        a second dispatcher does not pick them, and a crashed one's attempts are retried after the lease.
        """
        with self._write():
            due = self._select(
                "WHERE " + _HEAD + " AND d.next_attempt_at <= ? ORDER BY d.next_attempt_at, d.subscription_id LIMIT ?",
                (now, limit),
            )
            self.conn.executemany(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = ? "
                "WHERE subscription_id = ? AND seq = ?",
                [(lease_until, d.subscription_id, d.seq) for d in due],
            )
        return [replace(d, attempts=d.attempts + 1, next_attempt_at=lease_until) for d in due]

    def next_due_at(self) -> float | None:
        """When the earliest pending delivery of an active subscription is due (``None``: nothing pending)."""
        row = self.conn.execute(_NEXT_DUE).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def mark_delivered(self, subscription_id: int, seq: int, now: float, http_status: int) -> None:
        self._update(subscription_id, seq, "status = 'delivered', delivered_at = ?, last_status = ?, last_error = NULL",
                     (now, http_status))

    def mark_retry(
        self, subscription_id: int, seq: int, next_attempt_at: float, http_status: int | None, error: str
    ) -> None:
        self._update(subscription_id, seq, "next_attempt_at = ?, last_status = ?, last_error = ?",
                     (next_attempt_at, http_status, error[:1000]))

    def mark_failed(self, subscription_id: int, seq: int, http_status: int | None, error: str) -> None:
        """Dead-letter a delivery: no more attempts; it stays listed with its last status and error."""
        self._update(subscription_id, seq, "status = 'failed', last_status = ?, last_error = ?",
                     (http_status, error[:1000]))

    def requeue(self, subscription_id: int, seq: int, now: float) -> None:
        """Give a dead-lettered delivery a fresh set of attempts (a manual replay)."""
        self._update(subscription_id, seq, "status = 'pending', attempts = 0, next_attempt_at = ?", (now,),
                     only_status="failed")

    def deliveries(self, status: DeliveryStatus | None = None) -> list[Delivery]:
        """Every delivery (or those with ``status``), by subscription and event sequence."""
        if status is None:
            return self._select("ORDER BY d.subscription_id, d.seq", ())
        return self._select("WHERE d.status = ? ORDER BY d.subscription_id, d.seq", (status,))

    # --- internals ----------------------------------------------------------------------------------

    def _select(self, where: str, params: tuple[Any, ...]) -> list[Delivery]:
        query = _SELECT_DELIVERIES + where  # noqa: S608 (where is one of the literals in this class)
        rows = self.conn.execute(query, params).fetchall()
        return [Delivery(r[0], r[1], r[2], r[3], r[4], bytes(r[5]), *r[6:]) for r in rows]

    def _update(
        self, subscription_id: int, seq: int, assignments: str, params: tuple[Any, ...],
        only_status: DeliveryStatus = "pending",
    ) -> None:
        with self._write():
            cursor = self.conn.execute(
                f"UPDATE webhook_deliveries SET {assignments} "  # noqa: S608 (assignments are literals above)
                "WHERE subscription_id = ? AND seq = ? AND status = ?",
                (*params, subscription_id, seq, only_status),
            )
        if cursor.rowcount != 1:
            raise WebhookDeliveryNotFound(
                f"no {only_status} delivery of event {seq} to subscription {subscription_id}"
            )

    @contextmanager
    def _write(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")


def _matches(pattern: str, event_type: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def _check_event_type(event_type: Any) -> None:
    if event_type not in EVENT_TYPES:
        raise WebhookEventInvalid(f"unknown event type {str(event_type)[:80]!r}; known: {', '.join(EVENT_TYPES)}")


def _check_event_id(event_id: Any) -> str:
    if not isinstance(event_id, str) or not _EVENT_ID.fullmatch(event_id):
        raise WebhookEventInvalid(
            f"event id {str(event_id)[:80]!r} must be 1-256 characters of A-Z a-z 0-9 _ : - (no full stop)"
        )
    return event_id


def _check_pattern(pattern: Any) -> None:
    if pattern == "*" or pattern in EVENT_TYPES:
        return
    if isinstance(pattern, str) and pattern.endswith(".*") and any(t.startswith(pattern[:-1]) for t in EVENT_TYPES):
        return
    raise WebhookSubscriptionInvalid(
        f"event type {str(pattern)[:80]!r} is not '*', a known type or '<prefix>.*' of one"
    )


def _check_url(url: Any) -> None:
    if not isinstance(url, str) or len(url) > _MAX_URL_LENGTH:
        raise WebhookSubscriptionInvalid("a webhook URL must be a string of at most 2048 characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment or parts.username:
        raise WebhookSubscriptionInvalid(
            f"webhook URL {url[:120]!r} must be an absolute http(s) URL without credentials or fragment"
        )


def _canonical(value: Any) -> bytes:
    if not isinstance(value, Mapping):
        raise WebhookEventInvalid("event data must be a JSON object")
    try:
        return bytes(rfc8785.dumps(dict(value)))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise WebhookEventInvalid(f"event data is not JSON (RFC 8785): {exc}") from exc
