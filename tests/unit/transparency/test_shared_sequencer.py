"""Several processes on one PostgreSQL log (``postgres_storage.SharedSequencer``), here two sequencers in one
test process, each with its own connections as two ``serve`` processes have: one holds the sequencer's lock and
integrates, the other stands by, forwards what it is given and answers once it is integrated; when the first
goes, the second takes over. The database refuses a second writer at one position whatever the code does."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest

from schemas.errors import ConfigurationError, StorageError
from tests.log_tampering import statements
from tests.postgres import PostgresServer
from transparency.keys import load_or_create_log_key
from transparency.log import postgres_schema
from transparency.log.reader import LogReader
from transparency.log.sequencer import QUEUE_SEAL, Sequencer
from transparency.log.storage import open_database

ORIGIN = "shared.example/log"


STATEMENTS = statements(120, "shared")  # real signed statements: the sequencer checks what others queue


def _leaf(i: int) -> bytes:
    return STATEMENTS[i][0]


def _statement(i: int) -> bytes:
    return STATEMENTS[i][1]


class Followed:
    """What ``on_integrated`` was handed, in order (a standing-by process folds the log through it)."""

    def __init__(self) -> None:
        self.entries: list[tuple[int, bytes]] = []
        self.lock = threading.Lock()

    def __call__(self, entries: list[tuple[int, bytes]]) -> None:
        with self.lock:
            self.entries.extend(entries)


def _open(tmp_path: Path, url: str, followed: Followed | None = None, **kw: object) -> Sequencer:
    key = load_or_create_log_key(tmp_path / "log-key.pem")
    return Sequencer(url, key, ORIGIN, on_integrated=followed, batch_max_wait_ms=5, **kw)  # type: ignore[arg-type]


def _wait(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def url(postgres: PostgresServer) -> str:
    return postgres.create_database()


def test_the_second_process_stands_by_forwards_and_follows(tmp_path: Path, url: str) -> None:
    first, second = Followed(), Followed()
    a = _open(tmp_path, url, first)
    b = _open(tmp_path, url, second)
    assert a.leading and not b.leading
    a.start(0)
    b.start(0)
    try:
        own = [a.submit(_leaf(i), _statement(i)) for i in range(5)]
        forwarded = [b.submit(_leaf(100 + i), _statement(100 + i)) for i in range(5)]
        results = [f.result(10) for f in own + forwarded]
        assert sorted(r.index for r in results) == list(range(10))
        again = b.submit(_leaf(2), _statement(2)).result(10)
        assert (again.index, again.tree_size, again.leaf_data) == (results[2].index, results[2].tree_size, _leaf(2))
        assert results[2].receipt is not None and again.receipt is None  # built with its batch; a dedupe reads it
        twice = [a.submit(_leaf(7), _statement(7)), b.submit(_leaf(7), _statement(7))]
        assert twice[0].result(10).index == twice[1].result(10).index == 10
        _wait(lambda: len(second.entries) == 11)
        assert [i for i, _ in second.entries] == list(range(11))  # in log order, each once
        assert second.entries == first.entries
        head = LogReader(a.db).latest_head()
        assert head is not None and head.tree_size == 11
        assert not b.is_pending(_leaf(100))
    finally:
        b.stop()
        a.stop()


def test_the_standing_by_process_takes_over_with_what_was_queued(tmp_path: Path, url: str) -> None:
    followed = Followed()
    a = _open(tmp_path, url)
    b = _open(tmp_path, url, followed)
    a.start(0)
    b.start(0)
    try:
        assert a.submit(_leaf(0), _statement(0)).result(10).index == 0
        a.stop()  # its session ends: the lock is free, nobody integrates until b takes over
        waiting = [b.submit(_leaf(i), _statement(i)) for i in range(1, 4)]
        results = [f.result(10) for f in waiting]
        assert b.leading
        assert sorted(r.index for r in results) == [1, 2, 3] and {r.tree_size for r in results} <= {2, 3, 4}
        assert b.submit(_leaf(4), _statement(4)).result(10).index == 4
        assert [i for i, _ in followed.entries] == [0, 1, 2, 3, 4]
        reader = LogReader(b.db)
        assert [e.leaf_data for e in reader.entries(0, 10)] == [_leaf(i) for i in range(5)]
    finally:
        b.stop()


def test_a_standing_by_process_needs_a_first_head(tmp_path: Path, url: str) -> None:
    holder = psycopg.connect(url, autocommit=True)  # holds the sequencer's lock, signs nothing
    open_database(url).close()  # the schema
    holder.execute("SELECT pg_advisory_lock(%s)", (0x7461_6265_6C6C_0001,))
    try:
        with pytest.raises(ConfigurationError, match="no signed tree head yet"):
            _open(tmp_path, url, open_timeout_s=0.3)
    finally:
        holder.close()


def test_the_database_refuses_a_second_writer_at_one_position(tmp_path: Path, url: str) -> None:
    """Two sequencers that both think they lead (the lock is bypassed here): the second batch at one size fails
    and leaves the log as the first wrote it."""
    a = _open(tmp_path, url)
    a.start()
    assert a.submit(_leaf(0), _statement(0)).result(10).index == 0
    b = _open(tmp_path, url)
    b.leading = True  # as if it had the lock too
    b.size = a.size - 1 if a.size else 0  # and a stale view of the log
    b.start()
    try:
        with pytest.raises(StorageError, match="another sequencer wrote it"):
            b.submit(_leaf(1), _statement(1)).result(10)
        assert a.submit(_leaf(1), _statement(1)).result(10).index == 1
    finally:
        b.stop()
        a.stop()


def test_the_sequencer_integrates_no_queued_row_it_cannot_verify(tmp_path: Path, url: str) -> None:
    """Write access to the database is not enough to have the log sign a statement: a row queued without the log
    key's seal, or whose statement is not the entry id sealed, is dropped."""
    a = _open(tmp_path, url)
    a.start(0)
    try:
        assert a.submit(_leaf(0), _statement(0)).result(10).index == 0
        sealed = a.key.sign(QUEUE_SEAL + _leaf(2))
        with psycopg.connect(url, autocommit=True) as conn:
            rows = [(_leaf(1), _statement(1), bytes(64)),  # a seal by no log key
                    (_leaf(2), _statement(3), sealed),  # another statement than the id sealed
                    (_leaf(4), _statement(4), a.key.sign(QUEUE_SEAL + _leaf(4)))]  # as a serve process queues it
            for leaf, statement, seal in rows:
                conn.execute("INSERT INTO pending_statements (leaf_data, statement, seal) VALUES (%s, %s, %s)",
                             (leaf, statement, seal))
            conn.execute("NOTIFY tabellion_pending")
            _wait(lambda: conn.execute("SELECT COUNT(*) FROM pending_statements").fetchone() == (0,))
        reader = LogReader(a.db)
        assert [e.leaf_data for e in reader.entries(0, 10)] == [_leaf(0), _leaf(4)]
    finally:
        a.stop()


def test_a_queue_of_schema_1_is_migrated_and_what_it_held_is_integrated(
    tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migration 2 drops the queue's ``absent_below`` column, which nothing reads any more: a database of schema 1
    holding a statement queued by a process of that version is migrated at the next start, in one transaction, and
    the queued statement is integrated."""
    monkeypatch.setattr(postgres_schema, "MIGRATIONS", postgres_schema.MIGRATIONS[:1])
    open_database(url).close()  # a log of schema 1
    key = load_or_create_log_key(tmp_path / "log-key.pem")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO pending_statements (leaf_data, statement, absent_below, seal) VALUES (%s, %s, 7, %s)",
                     (_leaf(1), _statement(1), key.sign(QUEUE_SEAL + _leaf(1))))
    monkeypatch.undo()

    a = _open(tmp_path, url)
    a.start(0)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            applied = [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
            assert applied == [1, 2]
            columns = [c for (c,) in conn.execute("SELECT column_name FROM information_schema.columns WHERE "
                                                  "table_name = 'pending_statements' ORDER BY ordinal_position")]
            assert columns == ["seq", "leaf_data", "statement", "seal", "queued_at"]
            assert a.submit(_leaf(0), _statement(0)).result(10).index in (0, 1)
            conn.execute("NOTIFY tabellion_pending")
            _wait(lambda: conn.execute("SELECT COUNT(*) FROM pending_statements").fetchone() == (0,))
        assert sorted(e.leaf_data for e in LogReader(a.db).entries(0, 10)) == sorted([_leaf(0), _leaf(1)])
    finally:
        a.stop()
