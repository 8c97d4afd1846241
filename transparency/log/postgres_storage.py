"""The log on PostgreSQL (``tabellion serve --database postgresql://…``), with psycopg 3.

Connections are in autocommit mode; the shared code's ``?`` placeholders become psycopg's ``%s``. A
transaction is opened explicitly (``begin``) and committed with PostgreSQL's default durability
(``synchronous_commit=on``: the commit's WAL is flushed before COMMIT returns), so, as on SQLite, no receipt is
issued for an entry that is not durable. The schema and its migrations are in ``postgres_schema``; the
append-only guarantee is the database's own (triggers refuse UPDATE, DELETE and TRUNCATE on the record).

Several ``serve`` processes may share one database (``SharedSequencer``):

- **one sequencer at a time**: the process whose sequencer connection holds a session-level advisory lock
  (``pg_try_advisory_lock``) integrates. PostgreSQL releases the lock when that session ends, also when its
  process is killed (the server sees the connection close). Every integration re-reads the latest head inside
  its transaction (``LogWriter.check_size``) and the primary keys refuse a second entry, node or head at one
  position, so even two processes that both believed they held the lock could not fork the log: the second
  commit fails.
- **the others take registrations**: they check statements as the sequencer does, insert them into
  ``pending_statements`` (keyed by entry id, so a statement queued twice is queued once), each sealed with
  the log key (the sequencer integrates no row it cannot verify: write access to the database is not enough
  to have the log sign a statement nobody checked), and ``NOTIFY``; the
  sequencer claims queued rows in its integration transaction (they leave the queue when the batch commits,
  so a sequencer killed mid-batch leaves them for the next one). Every new head is ``NOTIFY``ed by a trigger
  (``postgres_schema``) when its batch commits; the others then read the new entries (their identity
  follower folds them) and answer their submitters.
- **take-over**: the others try the lock every ``poll_s``; the first to get it runs the start-up checks
  and carries on from the committed log and the queue.

One log per database: the lock and the channels are named for the database, not for a schema in it.
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import pq

from schemas.errors import ConfigurationError
from transparency.log.storage import (
    INTEGRATED,
    PENDING,
    Backend,
    LogDatabase,
    Queued,
    Wake,
    chunks,
    rows_statement,
)

log = logging.getLogger(__name__)

SEQUENCER_LOCK = 0x7461_6265_6C6C_0001  # pg advisory lock key: "tabell" + 1 (a bigint)
SCHEMA_LOCK = 0x7461_6265_6C6C_0002
CHANNELS = {PENDING: "tabellion_pending", INTEGRATED: "tabellion_integrated"}
CONNECT_TIMEOUT_S = 10
POLL_S = 0.25
STREAM_ROWS = 2000


@functools.lru_cache(maxsize=256)
def _dialect(sql: str) -> str:
    """The shared SQL for psycopg: ``?`` placeholders become ``%s`` (a literal ``%`` is doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


MAX_PARAMETERS = 32767  # a statement's parameters (the protocol allows 65535)


@functools.lru_cache(maxsize=64)
def _rows_statement(sql: str, rows: int) -> str | None:
    """``INSERT … VALUES (?, …)`` for ``rows`` rows at once (one round trip), or ``None`` for another statement."""
    statement = rows_statement(sql, rows)
    return None if statement is None else _dialect(statement)


def redacted(url: str) -> str:
    """The URL without its password (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{netloc[-1]}"))


def connect(url: str) -> psycopg.Connection[tuple[Any, ...]]:
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                               application_name="tabellion")
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigurationError(f"cannot connect to the log database {redacted(url)}: {reason}") from exc


class PostgresLogDatabase:
    backend: Backend = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn = connect(url)
        self._names = itertools.count()

    def execute(self, sql: str, params: Sequence[object] = ()) -> psycopg.Cursor[tuple[Any, ...]]:
        return self.conn.execute(_dialect(sql), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """An ``INSERT … VALUES`` of many rows is sent as one statement per ``MAX_PARAMETERS`` parameters."""
        if not rows:
            return
        for chunk in chunks(rows, MAX_PARAMETERS):
            statement = _rows_statement(sql, len(chunk))
            if statement is None:
                with self.conn.cursor() as cursor:
                    cursor.executemany(_dialect(sql), chunk)
                continue
            self.conn.execute(statement, [value for row in chunk for value in row])

    def stream(self, sql: str, params: Sequence[object] = ()) -> Iterator[tuple[Any, ...]]:
        """A server-side cursor (inside the snapshot transaction): rows arrive ``STREAM_ROWS`` at a time."""
        with self.conn.cursor(name=f"tabellion_stream_{next(self._names)}") as cursor:
            cursor.itersize = STREAM_ROWS
            cursor.execute(_dialect(sql), params)
            yield from cursor

    def pipeline(self) -> AbstractContextManager[object]:
        """psycopg's pipeline mode: the statements are sent without waiting for each answer; a read, or the end of
        the block, waits for them all (and raises the first error)."""
        return self.conn.pipeline()

    def begin(self) -> None:
        self.conn.execute("BEGIN")

    def begin_snapshot(self) -> None:
        self.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        if not self.conn.closed:
            self.conn.execute("ROLLBACK")

    @property
    def in_transaction(self) -> bool:
        return self.conn.info.transaction_status in (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR)

    @property
    def broken(self) -> bool:
        """The connection is lost (the server restarted, the network failed): ``reconnect`` before using it."""
        return self.conn.closed or self.conn.broken

    def reconnect(self) -> None:
        """A fresh session (whatever it held, the sequencer's lock included, is gone with the old one)."""
        old, self.conn = self.conn, connect(self.url)
        old.close()

    def close(self) -> None:
        self.conn.close()


def open_postgres(url: str, *, create: bool = True) -> PostgresLogDatabase:
    from transparency.log.postgres_schema import create_or_migrate

    db = PostgresLogDatabase(url)
    if create:
        try:
            create_or_migrate(db)
        except BaseException:
            db.close()
            raise
    return db


class SharedSequencer:
    """The coordination of several processes on one PostgreSQL log (see the module docstring)."""

    shared = True
    poll_s: float | None = POLL_S

    def __init__(self, db: LogDatabase, url: str) -> None:
        if not isinstance(db, PostgresLogDatabase):
            raise TypeError("the shared sequencer needs a PostgreSQL connection")
        self.db = db
        self.url = url
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None

    def try_lead(self) -> bool:
        row = self.db.execute("SELECT pg_try_advisory_lock(?)", (SEQUENCER_LOCK,)).fetchone()
        return row is not None and bool(row[0])

    def forward(self, items: Sequence[Queued]) -> None:
        self.db.begin()
        try:
            self.db.executemany(
                "INSERT INTO pending_statements (leaf_data, statement, seal) VALUES (?, ?, ?) "
                "ON CONFLICT (leaf_data) DO NOTHING",
                [(q.leaf_data, q.statement, q.seal) for q in items],
            )
            self.db.execute("SELECT pg_notify(?, '')", (CHANNELS[PENDING],))
            self.db.commit()
        except BaseException:
            self.db.rollback()
            raise

    def claim(self, limit: int) -> list[Queued]:
        rows = self.db.execute(
            "DELETE FROM pending_statements WHERE leaf_data IN (SELECT leaf_data FROM pending_statements "
            "ORDER BY seq LIMIT ? FOR UPDATE SKIP LOCKED) RETURNING seq, leaf_data, statement, seal",
            (limit,),
        ).fetchall()
        return [Queued(bytes(r[1]), bytes(r[2]), bytes(r[3])) for r in sorted(rows)]

    def still_queued(self, leaf_datas: Sequence[bytes]) -> set[bytes]:
        if not leaf_datas:
            return set()
        rows = self.db.execute(
            "SELECT leaf_data FROM pending_statements WHERE leaf_data = ANY(?)", (list(leaf_datas),)
        ).fetchall()
        return {bytes(r[0]) for r in rows}

    def announce(self, tree_size: int) -> None:
        self.db.execute("SELECT pg_notify(?, ?)", (CHANNELS[INTEGRATED], str(tree_size)))

    def listen(self, wake: Wake) -> None:
        self._listener = threading.Thread(target=self._listen, args=(wake,), name="tabellion-listener",
                                          daemon=True)
        self._listener.start()

    def _listen(self, wake: Wake) -> None:
        kinds = {channel: kind for kind, channel in CHANNELS.items()}
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
                    for channel in CHANNELS.values():
                        conn.execute(f"LISTEN {channel}")
                    wake(INTEGRATED)  # anything missed while not listening
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=POLL_S):
                            wake(kinds.get(note.channel, INTEGRATED))
            except psycopg.Error as exc:  # the sequencer's poll covers the gap; listen again shortly
                log.warning("listening for the log's notifications failed (%s); retrying", exc)
                self._stop.wait(1.0)

    def close(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.join(5)
            self._listener = None
