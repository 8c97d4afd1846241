"""The storage interface of the log: the one thing a backend (SQLite, PostgreSQL) provides.

Everything above it is shared by both backends: the readers (``transparency.log.reader``), the writes of an
integration (``transparency.log.writer``), the entry-id index (``transparency.log.entry_index``), the Merkle tree
(``transparency.log.merkle_tree``), the sequencer and the checks. They speak one portable dialect of SQL with
``?`` placeholders (a backend translates them), over tables that have the same names, columns and meaning in
both backends; only the schema and its migrations (``sqlite_schema``, ``postgres_schema``), the connection,
the write lock and the coordination of several processes differ.

A backend is chosen by the log's *location*: a ``Path`` (or a plain path string) is a SQLite file, the embedded
default; a ``postgresql://`` (or ``postgres://``) URL is a PostgreSQL database (``postgres_storage``).

The record of the log (append-only, enforced by the database: rows once written never change):

- ``entries``:    0-based leaf index (the only key), entry id (= leaf_data), the logged statement, the tree
                  size whose signed head covers it, registration time.
- ``tree_nodes``: every perfect-subtree root of the Merkle tree, ``(level, index) -> hash``; level 0 holds
                  the RFC 9162 leaf hashes. Any root or proof costs O(log n) primary-key reads.
- ``tree_heads``: one per integrated batch: size, root, time, the signed checkpoint note and the receipt
                  signature shared by every receipt issued at that size.
- ``meta``:       the log's origin, written once.

Derived tables, not the record (each row can be recomputed from ``entries``): the entry-id index
(``entry_index``, ``entry_index_runs``) and, on PostgreSQL, the queue of statements that processes other than
the sequencer have checked and hand to it (``pending_statements``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

APPEND_ONLY_TABLES = ("entries", "tree_nodes", "tree_heads", "meta")
POSTGRES_SCHEMES = ("postgresql://", "postgres://")

Backend = Literal["sqlite", "postgresql"]
LogLocation = Path | str
"""Where a log is stored: a SQLite file, or a ``postgresql://`` URL."""


_ONE_ROW = re.compile(r"^(INSERT INTO .*? VALUES )(\([?, ]+\))(.*)$", re.S)


@functools.lru_cache(maxsize=256)
def rows_statement(sql: str, rows: int) -> str | None:
    """``INSERT … VALUES (?, …)`` made an insert of ``rows`` rows at once, or ``None`` for another statement.

    Both backends send a batch's rows this way (``executemany``): PostgreSQL in one round trip; SQLite in one
    step of one statement, where ``sqlite3``'s ``executemany`` steps once per row and lets go of the interpreter
    lock at every step, to wait for it again behind the event loop each time."""
    match = _ONE_ROW.match(sql)
    if match is None:
        return None
    head, row, tail = match.groups()
    return head + ", ".join([row] * rows) + tail


def chunks(rows: Sequence[Sequence[object]], max_parameters: int) -> Iterator[Sequence[Sequence[object]]]:
    """``rows`` in runs of at most ``max_parameters`` parameters (at least one row a run)."""
    per = max(1, max_parameters // max(1, len(rows[0]))) if rows else 1
    for start in range(0, len(rows), per):
        yield rows[start:start + per]


class Cursor(Protocol):
    """The result of one statement (``sqlite3.Cursor`` and ``psycopg.Cursor`` both are)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class LogDatabase(Protocol):
    """One connection to the log's tables, in autocommit mode: every statement outside ``begin``/``commit``
    sees the latest committed rows. Statements use ``?`` placeholders."""

    backend: Backend

    def execute(self, sql: str, params: Sequence[object] = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None: ...

    def stream(self, sql: str, params: Sequence[object] = ()) -> Iterator[tuple[Any, ...]]:
        """The rows of a large query, read as they are consumed (memory independent of the result's size)."""
        ...

    def pipeline(self) -> AbstractContextManager[object]:
        """A block whose statements may be sent together (PostgreSQL: one round trip for writes whose results are
        not read); errors are raised by the end of the block at the latest."""
        ...

    def begin(self) -> None:
        """Begin a write transaction (SQLite takes the write lock at once: ``BEGIN IMMEDIATE``)."""
        ...

    def begin_snapshot(self) -> None:
        """Begin a read-only transaction whose reads all see one snapshot (fsck)."""
        ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    @property
    def in_transaction(self) -> bool: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Queued:
    """A checked statement that a process other than the sequencer hands to it."""

    leaf_data: bytes
    statement: bytes
    seal: bytes  # the forwarding process's signature of the entry id with the log key (``sequencer.QUEUE_SEAL``)


Wake = Callable[[str], None]
"""Called by a backend's listener with what happened: ``PENDING`` or ``INTEGRATED``."""
PENDING = "pending"
INTEGRATED = "integrated"


class Coordination(Protocol):
    """How the processes that serve one log agree on its one sequencer (Tessera: one integrator at a time).

    On SQLite the log has one process (``SoleSequencer``): it is the sequencer. On PostgreSQL
    (``postgres_storage.SharedSequencer``) any number of ``serve`` processes share the database; the one that
    holds the sequencer's lock integrates, the others check statements, ``forward`` them through a queue table
    and wait until the sequencer has integrated them, and one of them takes the lock over when its holder is
    gone."""

    shared: bool  # other processes may write to this log's queue
    poll_s: float | None  # how often the sequencer looks at the queue and the lock when nothing wakes it

    def try_lead(self) -> bool:
        """Take the sequencer's lock if nobody holds it; whether this process is now the sequencer."""
        ...

    def forward(self, items: Sequence[Queued]) -> None:
        """Queue checked statements for the sequencer (one transaction), and wake it."""
        ...

    def claim(self, limit: int) -> list[Queued]:
        """Inside the sequencer's integration transaction: take up to ``limit`` queued statements, oldest first
        (they leave the queue when that transaction commits)."""
        ...

    def still_queued(self, leaf_datas: Sequence[bytes]) -> set[bytes]:
        """Which of these statements are still waiting in the queue."""
        ...

    def announce(self, tree_size: int) -> None:
        """Inside an integration transaction that adds no head (every statement claimed was in the log already):
        wake the other processes when it commits, as a new head does."""
        ...

    def listen(self, wake: Wake) -> None:
        """Call ``wake`` (from another thread) whenever a statement is queued or the log grows."""
        ...

    def close(self) -> None: ...


def is_postgres(location: LogLocation) -> bool:
    return isinstance(location, str) and location.startswith(POSTGRES_SCHEMES)


def open_database(location: LogLocation, *, create: bool = True) -> LogDatabase:
    """Open a connection to the log at ``location``; with ``create``, create its schema on first use and bring
    an older one up to date (in one transaction)."""
    if is_postgres(location):
        from transparency.log.postgres_storage import open_postgres

        return open_postgres(str(location), create=create)
    from transparency.log.sqlite_storage import open_sqlite

    return open_sqlite(Path(location), create=create)


def open_coordination(db: LogDatabase, location: LogLocation) -> Coordination:
    """The coordination of the log's sequencer, through ``db`` (the sequencer's own connection)."""
    if is_postgres(location):
        from transparency.log.postgres_storage import SharedSequencer

        return SharedSequencer(db, str(location))
    from transparency.log.sqlite_storage import SoleSequencer

    return SoleSequencer()


def describe(location: LogLocation) -> str:
    """The location as a log line shows it: a PostgreSQL URL without its password."""
    if not is_postgres(location):
        return str(location)
    from transparency.log.postgres_storage import redacted

    return redacted(str(location))
