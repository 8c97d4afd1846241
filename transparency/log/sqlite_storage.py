"""The log on SQLite (the embedded default): one file in WAL mode, ``synchronous=FULL``
(``transparency.sqlite_files``), schema in ``sqlite_schema``.

The statements of the shared code run as they are (SQLite's placeholders are ``?``). ``conn`` is the
``sqlite3`` connection itself, for what only SQLite has (``PRAGMA``s in benchmarks, a trace callback in tests).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from transparency.log.storage import Backend, Queued, Wake, chunks, rows_statement
from transparency.sqlite_files import connect


class SqliteLogDatabase:
    backend: Backend = "sqlite"

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self.max_parameters = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)

    def execute(self, sql: str, params: Sequence[object] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """An ``INSERT … VALUES`` of many rows runs as one statement per ``max_parameters`` parameters
        (``storage.rows_statement``: one step, not one per row, each letting go of the interpreter lock)."""
        for chunk in chunks(rows, self.max_parameters):
            statement = rows_statement(sql, len(chunk))
            if statement is None:
                self.conn.executemany(sql, chunk)
            else:
                self.conn.execute(statement, [value for row in chunk for value in row])

    def stream(self, sql: str, params: Sequence[object] = ()) -> Iterator[tuple[Any, ...]]:
        yield from self.conn.execute(sql, params)  # a sqlite3 cursor steps through the rows as they are read

    def pipeline(self) -> AbstractContextManager[object]:
        return nullcontext()  # in-process: nothing to save

    def begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def begin_snapshot(self) -> None:
        self.conn.execute("BEGIN")  # a read transaction: its first read fixes the snapshot (WAL)

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        self.conn.execute("ROLLBACK")

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    def close(self) -> None:
        self.conn.close()


class SoleSequencer:
    """A SQLite log is served by one process, whose sequencer is the only writer: there is nothing to agree on."""

    shared = False
    poll_s: float | None = None

    def try_lead(self) -> bool:
        return True

    def forward(self, items: Sequence[Queued]) -> None:
        raise NotImplementedError("a SQLite log has no queue: its one process is its sequencer")

    def claim(self, limit: int) -> list[Queued]:
        return []

    def still_queued(self, leaf_datas: Sequence[bytes]) -> set[bytes]:
        return set()

    def announce(self, tree_size: int) -> None:
        return None

    def listen(self, wake: Wake) -> None:
        return None

    def close(self) -> None:
        return None


def open_sqlite(path: Path, *, create: bool = True) -> SqliteLogDatabase:
    from transparency.log.sqlite_schema import create_or_migrate

    db = SqliteLogDatabase(connect(path), path)
    db.execute("PRAGMA foreign_keys=ON")
    if create:
        try:
            create_or_migrate(db)
        except BaseException:
            db.close()
            raise
    return db
