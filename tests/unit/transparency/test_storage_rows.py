"""A batch's rows go to SQLite as one multi-row ``INSERT`` per chunk of the connection's parameter limit (one
step, so the sequencer lets go of the interpreter lock once, not once per row), and land exactly as row-by-row
inserts would put them; statements of another shape run as ``sqlite3``'s ``executemany`` does."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transparency.log.sqlite_storage import SqliteLogDatabase, open_sqlite
from transparency.log.storage import chunks, rows_statement

INSERT = "INSERT INTO t (a, b, c) VALUES (?, ?, ?)"


def _database(tmp: Path, name: str, max_parameters: int | None = None) -> SqliteLogDatabase:
    db = open_sqlite(tmp / name, create=False)
    db.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b BLOB, c TEXT)")
    if max_parameters is not None:
        db.max_parameters = max_parameters
    return db


def test_rows_statement_repeats_the_row_and_leaves_other_statements() -> None:
    assert rows_statement(INSERT, 1) == INSERT
    assert rows_statement(INSERT, 3) == "INSERT INTO t (a, b, c) VALUES (?, ?, ?), (?, ?, ?), (?, ?, ?)"
    assert rows_statement("INSERT INTO t (a) VALUES (?) ON CONFLICT DO NOTHING", 2) == (
        "INSERT INTO t (a) VALUES (?), (?) ON CONFLICT DO NOTHING")
    assert rows_statement("UPDATE t SET c = ? WHERE a = ?", 2) is None


def test_chunks_keep_under_the_parameter_limit() -> None:
    rows = [(i, b"", "") for i in range(10)]
    assert [len(c) for c in chunks(rows, 9)] == [3, 3, 3, 1]
    assert [len(c) for c in chunks(rows, 2)] == [1] * 10  # one row a statement at least
    assert list(chunks([], 9)) == []


def test_a_batch_of_rows_is_one_statement(tmp_path: Path) -> None:
    db = _database(tmp_path, "one.db")
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    db.executemany(INSERT, [(i, os.urandom(8), f"r{i}") for i in range(200)])
    db.conn.set_trace_callback(None)
    assert len(statements) == 1 and statements[0].startswith("INSERT INTO t (a, b, c) VALUES (0, ")
    assert db.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 200


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.tuples(st.binary(max_size=40), st.text(max_size=20)), max_size=60),
       limit=st.integers(min_value=1, max_value=20))
def test_multi_row_inserts_equal_row_by_row_inserts(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[bytes, str]], limit: int
) -> None:
    tmp = tmp_path_factory.mktemp("rows")
    numbered = [(i, b, c) for i, (b, c) in enumerate(rows)]
    ours = _database(tmp, "ours.db", max_parameters=limit)
    reference = _database(tmp, "reference.db")
    ours.executemany(INSERT, numbered)
    reference.conn.executemany(INSERT, numbered)  # sqlite3's own, row by row
    query = "SELECT a, b, c, typeof(b), typeof(c) FROM t ORDER BY a"
    assert ours.execute(query).fetchall() == reference.execute(query).fetchall()
    ours.close()
    reference.close()


def test_a_failing_row_fails_the_statement(tmp_path: Path) -> None:
    db = _database(tmp_path, "dup.db")
    db.begin()
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        db.executemany(INSERT, [(1, b"", ""), (1, b"", "")])
    db.rollback()
    assert db.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 0
