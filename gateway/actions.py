"""Action records (issue 4 item 6): every decision about an authenticated agent, signed by the gateway's own
key and appended to the log, so "which agent did what under whose authority" has a receipt.

``ActionRecorder`` is the gateway's ``DecisionSink``. In the request path, ``record(decision)`` builds the
``action-record`` payload (``schemas/json/action-record.schema.json``: agent, delegation chain, resource,
action, decision, policy id, request digest, time, and the connection, service, code, reason code, passport,
claim, root principal and log size the decision rested on), validates it, and stores it with one INSERT in
``<data_dir>/actions.sqlite`` (WAL: a committed row survives a crash of the process). A record that cannot be
stored refuses the request (``ActionRecordFailed``, 503): nothing goes through unrecorded.

A background thread takes the oldest pending records (``batch`` at a time, ``concurrency`` in flight), signs
each as an ``action-record`` statement — ``iss`` the gateway's did:key, ``sub`` the agent, ``iat`` the
decision's time, payload plus ``seq`` (the row's number) — keeps the signed bytes in the row, submits them to
the log (``HttpLogClient.submit``), verifies the receipt with the log's pinned receipt keys, and stores it.
A record is deterministic (RFC 8785 payload, deterministic protected header, Ed25519), and the log answers a
statement it already holds with the existing entry, so a record submitted before a crash and submitted again
after the restart is one entry. While the log is unreachable or overloaded the thread retries with
exponential backoff (``max_backoff``); a record the log refuses for good (400, 403, 413…) is kept as
``refused`` with the reason and logged as an error.

Only decisions that name an agent — the request's signature verified with the key the log holds for it — are
recorded: a request that does not prove who sent it stays in the JSON decision log only (else anyone could
write to the log through the gateway), and so does a ``rate-limited`` refusal (a flood held back by the rate
limit must not reach the log through the records of its refusals). ``seq`` numbers every record of one
gateway key consecutively, so an auditor sees a record missing from the log as a gap.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas import cose_labels as L
from schemas.errors import (
    ActionRecordFailed,
    ConfigurationError,
    GatewayKeyInvalid,
    KeyFileExists,
    LogRequestRefused,
    TabellionError,
)
from schemas.identity_statements import (
    canonical_json,
    content_type,
    encode_payload,
    parse_payload,
    validate_payload,
)
from schemas.statement import parse_statement
from transparency.client import HttpLogClient, Submitted, did_of, load_ed25519_key, save_private_key, sign_statement
from transparency.sqlite_files import connect
from verifier.keys import KeySet
from verifier.receipts import verify_receipt

from .config import GatewayConfig
from .decisions import Decision

log = logging.getLogger(__name__)

STATEMENT_TYPE: Final = "action-record"
BATCH_TYPE: Final = "action-record-batch"
ACTIONS_FILE: Final = "actions.sqlite"
GATEWAY_KEY_FILE: Final = "gateway-key.pem"
DEFAULT_POLICY_ID: Final = "tabellion:log-state"  # no policy of its own: decided from the followed log alone
VERDICTS: Final = {"allow": "ALLOW", "warn": "WARN", "refuse": "BLOCK"}
PERMANENT_STATUSES: Final = frozenset({400, 403, 413, 415, 422})  # the log refused these bytes: they never pass
MAX_RESOURCE: Final = 2048  # the schema's maxLength: a longer resource is cut (the request digest names it whole)
MAX_ACTION: Final = 256
SUBMIT_WAIT_S: Final = 10.0
MIN_BACKOFF_S: Final = 0.2
IDLE_WAIT_S: Final = 5.0  # a new record wakes the thread at once; this is only a safety net
PENDING, LOGGED, REFUSED = "pending", "logged", "refused"
UNRECORDED_CODES: Final = frozenset({"rate-limited"})


# --- the gateway's key --------------------------------------------------------------------------------


def gateway_key_path(config: GatewayConfig) -> Path:
    return config.action_records.key_file or config.data_dir / GATEWAY_KEY_FILE


def load_or_create_gateway_key(path: Path) -> Ed25519PrivateKey:
    """The gateway's Ed25519 signing key at ``path``, created (0600, exclusively) on first start. A key file
    readable by others, or not Ed25519, is refused."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            save_private_key(Ed25519PrivateKey.generate(), path)
            log.info("created the gateway's action-record key %s", path)
        except KeyFileExists:
            pass  # another worker made it first: use theirs
    try:
        return load_ed25519_key(path, "gateway key")
    except ConfigurationError as exc:
        raise GatewayKeyInvalid(exc.detail) from exc


# --- records ------------------------------------------------------------------------------------------


def record_payload(decision: Decision) -> dict[str, Any] | None:
    """The ``action-record`` payload of a decision (without ``seq``), or None when it is not recorded: it
    names no agent, or it is a refusal in ``UNRECORDED_CODES``."""
    if decision.agent is None or decision.code in UNRECORDED_CODES:
        return None
    payload: dict[str, Any] = {
        "agent": decision.agent,
        "delegation_chain": list(decision.chain),
        "resource": decision.resource[:MAX_RESOURCE],
        "action": decision.action[:MAX_ACTION],
        "decision": VERDICTS.get(decision.outcome, "ALLOW") if decision.allowed else "BLOCK",
        "policy_id": decision.policy_id or DEFAULT_POLICY_ID,
        "request_digest": decision.request_digest,
        "at": decision.at,
        "connection": decision.connection,
        "service": decision.service,
        "code": decision.code,
        "reason_code": decision.reason_code,
        "log_size": decision.log_size,
        "passport": decision.passport,
        "claim": decision.claim,
        "root_principal": decision.root_principal,
        "policy_version": decision.policy_version,
    }
    return {k: v for k, v in payload.items() if v is not None and v != ""}


def record_statement(key: Ed25519PrivateKey, seq: int, payload: dict[str, Any]) -> bytes:
    """The signed ``action-record`` statement of record ``seq``: the same bytes each time it is made."""
    body = encode_payload(STATEMENT_TYPE, {**payload, "seq": seq})
    return sign_statement(key, body, subject=payload["agent"], content_type=content_type(STATEMENT_TYPE),
                          extra_claims={L.CWT_IAT: payload["at"]})


def batch_statement(key: Ed25519PrivateKey, did: str, records: Sequence[tuple[int, dict[str, Any]]]) -> bytes:
    """The signed ``action-record-batch`` statement of ``(seq, payload)`` records, in ``seq`` order: ``sub`` the
    gateway itself, ``iat`` the latest decision's time; the same bytes each time it is made."""
    ordered = sorted(records, key=lambda r: r[0])
    value = {"records": [{**payload, "seq": seq} for seq, payload in ordered]}
    validate_payload(BATCH_TYPE, value)  # JSON's own types (read back from the queue): the bytes say the same
    body = canonical_json(value)
    return sign_statement(key, body, subject=did, content_type=content_type(BATCH_TYPE),
                          extra_claims={L.CWT_IAT: max(payload["at"] for _, payload in ordered)})


def records_in(statement: bytes) -> list[dict[str, Any]]:
    """The action records an ``action-record`` or ``action-record-batch`` statement holds (for auditors and tests)."""
    parsed = parse_statement(statement)
    if parsed.content_type == content_type(BATCH_TYPE):
        return list(parse_payload(BATCH_TYPE, parsed.payload)["records"])
    return [parse_payload(STATEMENT_TYPE, parsed.payload)]


@dataclass(frozen=True)
class QueuedRecord:
    """A row of the queue: ``state`` is pending, logged (``entry_id`` and ``receipt`` stored) or refused."""

    seq: int
    at: int
    payload: dict[str, Any]
    state: str
    statement: bytes | None
    entry_id: str | None
    receipt: bytes | None
    attempts: int
    error: str | None


# --- the queue ----------------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS action_records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'logged', 'refused')),
    statement BLOB,
    entry_id TEXT,
    receipt BLOB,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT
);
CREATE INDEX IF NOT EXISTS action_records_pending ON action_records (seq) WHERE state = 'pending';
"""
_COLUMNS = "seq, at, payload, state, statement, entry_id, receipt, attempts, error"


class ActionQueue:
    """The durable queue of action records, one SQLite file (WAL) shared by the request path and the submitter."""

    def __init__(self, path: Path | str, *, timeout: float = 30.0) -> None:
        # WAL + NORMAL: a committed row survives a process crash
        self._db = connect(path, synchronous="NORMAL", timeout=timeout)
        self._lock = threading.Lock()
        self._db.executescript(_SCHEMA)

    def enqueue(self, at: int, payload: dict[str, Any]) -> int:
        """Store a record as pending (one INSERT); its ``seq``."""
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        with self._lock:
            cursor = self._db.execute("INSERT INTO action_records (at, payload) VALUES (?, ?)", (at, text))
        return int(cursor.lastrowid or 0)

    def pending(self, limit: int) -> list[QueuedRecord]:
        """The oldest pending records, in ``seq`` order."""
        return self._select(f"SELECT {_COLUMNS} FROM action_records WHERE state = 'pending' "  # noqa: S608
                            "ORDER BY seq LIMIT ?", (limit,))

    def records(self, after: int = 0, limit: int = 1000) -> list[QueuedRecord]:
        """Every record with ``seq`` above ``after``, in order, whatever its state."""
        return self._select(f"SELECT {_COLUMNS} FROM action_records WHERE seq > ? "  # noqa: S608
                            "ORDER BY seq LIMIT ?", (after, limit))

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, count(*) FROM action_records GROUP BY state").fetchall()
        return {PENDING: 0, LOGGED: 0, REFUSED: 0} | {str(s): int(n) for s, n in rows}

    def keep_statements(self, signed: Sequence[tuple[int, bytes]]) -> None:
        """Keep the signed bytes of records, so that every later submission sends the same bytes."""
        with self._transaction() as db:
            db.executemany("UPDATE action_records SET statement = ? WHERE seq = ? AND statement IS NULL",
                           [(statement, seq) for seq, statement in signed])

    def mark_logged(self, seq: int, entry_id: str, receipt: bytes) -> None:
        with self._lock:
            self._db.execute("UPDATE action_records SET state = 'logged', entry_id = ?, receipt = ?, error = NULL, "
                             "attempts = attempts + 1 WHERE seq = ?", (entry_id, receipt, seq))

    def mark_logged_all(self, seqs: Sequence[int], entry_id: str, receipt: bytes) -> None:
        """Records logged in one statement: one transaction."""
        with self._transaction() as db:
            db.executemany("UPDATE action_records SET state = 'logged', entry_id = ?, receipt = ?, error = NULL, "
                           "attempts = attempts + 1 WHERE seq = ?", [(entry_id, receipt, seq) for seq in seqs])

    def mark_refused(self, seq: int, error: str) -> None:
        with self._lock:
            self._db.execute("UPDATE action_records SET state = 'refused', error = ?, attempts = attempts + 1 "
                             "WHERE seq = ? AND state = 'pending'", (error, seq))

    def note_failure(self, seq: int, error: str) -> None:
        with self._lock:
            self._db.execute("UPDATE action_records SET error = ?, attempts = attempts + 1 WHERE seq = ?",
                             (error, seq))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> ActionQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _select(self, sql: str, params: tuple[Any, ...]) -> list[QueuedRecord]:
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return [QueuedRecord(int(r[0]), int(r[1]), json.loads(r[2]), str(r[3]), r[4], r[5], r[6], int(r[7]), r[8])
                for r in rows]

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")


# --- submitting -----------------------------------------------------------------------------------------


class LogSubmitter(Protocol):
    """Where records go (``transparency.client.HttpLogClient``)."""

    def submit(self, statement: bytes, *, wait: float | None = None) -> Submitted: ...


@dataclass(frozen=True)
class Round:
    """What one submission round did: records ``logged``, ``refused`` for good, ``failed`` (to retry)."""

    logged: int = 0
    refused: int = 0
    failed: int = 0
    error: str = ""

    @property
    def taken(self) -> int:
        return self.logged + self.refused + self.failed


def next_backoff(current: float, limit: float) -> float:
    """The wait after another failed round: doubled, from ``MIN_BACKOFF_S`` up to ``limit``."""
    return min(limit, max(MIN_BACKOFF_S, current * 2))


class ActionRecorder:
    """The ``DecisionSink`` that turns decisions into action records on the log (see the module docstring)."""

    def __init__(
        self,
        queue: ActionQueue,
        key: Ed25519PrivateKey,
        client: LogSubmitter,
        receipt_keys: KeySet | None,
        *,
        batch: int = 64,
        concurrency: int = 8,
        max_backoff: float = 30.0,
        idle_wait: float = IDLE_WAIT_S,
        per_statement: int = 1,
        linger: float = 0.0,
    ) -> None:
        self.idle_wait = idle_wait
        self.linger = linger
        self.per_statement = per_statement
        self.queue = queue
        self.key = key
        self.did = did_of(key)
        self.client = client
        self.receipt_keys = receipt_keys
        self.batch = batch
        self.concurrency = concurrency
        self.max_backoff = max_backoff
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(concurrency, "gateway-action-submit") if concurrency > 1 else None
        self._closers: list[HttpLogClient] = []

    @classmethod
    def from_config(cls, config: GatewayConfig, key: Ed25519PrivateKey | None = None, *,
                    idle_wait: float = IDLE_WAIT_S) -> ActionRecorder:
        """The recorder of a configured gateway: its key (loaded or created unless given),
        ``<data_dir>/actions.sqlite``, the log of ``[log]``."""
        settings = config.action_records
        key = key or load_or_create_gateway_key(gateway_key_path(config))
        queue = ActionQueue(config.data_dir / ACTIONS_FILE)
        client = HttpLogClient(config.log.url, timeout=SUBMIT_WAIT_S)
        recorder = cls(queue, key, client, config.log.receipt_keys, batch=settings.batch,
                       concurrency=settings.concurrency, max_backoff=settings.max_backoff, idle_wait=idle_wait,
                       per_statement=settings.per_statement, linger=settings.linger)
        recorder._closers.append(client)
        return recorder

    # --- DecisionSink (the request path) ------------------------------------------------------------------

    def record(self, decision: Decision) -> None:
        payload = record_payload(decision)
        if payload is None:
            return
        try:
            validate_payload(STATEMENT_TYPE, {**payload, "seq": 1})  # a record that cannot be signed fails now
            self.queue.enqueue(decision.at, payload)
        except (sqlite3.Error, TabellionError) as exc:
            log.error("cannot store the action record of a decision: %s", exc)
            raise ActionRecordFailed(f"the decision could not be stored as an action record: {exc}") from exc
        self._wake.set()

    # --- the submitter ----------------------------------------------------------------------------------

    def submit_pending(self) -> Round:
        """One round: sign, submit and store the receipts of the oldest pending records (up to ``batch``), up to
        ``per_statement`` records in each statement. A record signed before (and perhaps logged, its answer lost)
        goes again in the same bytes, with the records signed with it."""
        records = self.queue.pending(self.batch)
        if not records:
            return Round()
        groups: dict[bytes, list[int]] = {}
        for r in records:  # signed before: the same statement again
            if r.statement is not None:
                groups.setdefault(r.statement, []).append(r.seq)
        fresh = [r for r in records if r.statement is None]
        kept: list[tuple[int, bytes]] = []
        for start in range(0, len(fresh), self.per_statement):
            chunk = fresh[start:start + self.per_statement]
            if self.per_statement == 1:
                statement = record_statement(self.key, chunk[0].seq, chunk[0].payload)
            else:
                statement = batch_statement(self.key, self.did, [(r.seq, r.payload) for r in chunk])
            groups[statement] = [r.seq for r in chunk]
            kept += [(r.seq, statement) for r in chunk]
        self.queue.keep_statements(kept)
        ordered = sorted(groups.items(), key=lambda g: g[1][0])
        if self._pool is not None:
            outcomes = list(self._pool.map(self._submit, ordered))
        else:  # one after the other: the first failure ends the round, so the log gets them in seq order
            outcomes = []
            for group in ordered:
                outcomes.append(self._submit(group))
                if outcomes[-1] not in (LOGGED, REFUSED):
                    break
        logged = sum(len(seqs) for (_, seqs), o in zip(ordered, outcomes, strict=False) if o == LOGGED)
        refused = sum(len(seqs) for (_, seqs), o in zip(ordered, outcomes, strict=False) if o == REFUSED)
        failures = [(seqs, o) for (_, seqs), o in zip(ordered, outcomes, strict=False) if o not in (LOGGED, REFUSED)]
        return Round(logged, refused, sum(len(seqs) for seqs, _ in failures), failures[0][1] if failures else "")

    def _submit(self, group: tuple[bytes, list[int]]) -> str:
        """Submit one statement and settle its records: LOGGED, REFUSED, or the reason it is to be retried."""
        statement, seqs = group
        try:
            submitted = self.client.submit(statement, wait=SUBMIT_WAIT_S)
            if submitted.receipt is None:
                raise LogRequestRefused(f"the log is still registering entry {submitted.entry_id}", status=202)
            if self.receipt_keys is not None:
                verify_receipt(submitted.receipt, statement, self.receipt_keys)
        except LogRequestRefused as exc:
            if exc.answer_status in PERMANENT_STATUSES:
                log.error("the log refused action records %s for good: %s", _span(seqs), exc)
                for seq in seqs:
                    self.queue.mark_refused(seq, str(exc))
                return REFUSED
            for seq in seqs:
                self.queue.note_failure(seq, str(exc))
            return str(exc)
        except TabellionError as exc:  # unreachable, or a receipt that does not verify: try again later
            for seq in seqs:
                self.queue.note_failure(seq, str(exc))
            return str(exc)
        self.queue.mark_logged_all(seqs, submitted.entry_id, submitted.receipt)
        return LOGGED

    def start(self) -> None:
        """Submit in a daemon thread until ``stop()``."""
        if self._thread is not None:
            return
        log.info("action records signed by %s", self.did)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="gateway-action-records", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def close(self) -> None:
        """Stop, then release the queue and the log client; pending records stay queued for the next start."""
        self.stop()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        for closer in self._closers:
            closer.close()
        self.queue.close()

    def _run(self) -> None:
        backoff, last_error = 0.0, ""
        while not self._stop.is_set():
            self._wake.clear()
            try:
                done = self.submit_pending()
            except Exception as exc:  # noqa: BLE001 - the thread's edge: keep the records, say why, retry
                log.exception("submitting action records failed unexpectedly")
                done = Round(failed=1, error=f"unexpected {type(exc).__name__}: {exc}")
            if done.failed:
                backoff = next_backoff(backoff, self.max_backoff)
                if done.error != last_error:
                    log.warning("action records wait for the log (retry in %.1f s): %s", backoff, done.error)
                last_error = done.error
                self._stop.wait(backoff)
                continue
            if last_error:
                log.info("action records reach the log again")
            backoff, last_error = 0.0, ""
            if done.taken < self.batch:
                self._wake.wait(self.idle_wait)
                if self.linger:  # more records come while it waits: one statement, one entry, for them all
                    self._stop.wait(self.linger)


def _span(seqs: Sequence[int]) -> str:
    return str(seqs[0]) if len(seqs) == 1 else f"{seqs[0]}-{seqs[-1]}"
