"""The entry-id index (an LSM of sorted runs, see transparency.log.entry_index): dedupe and lookups across seals,
merges, restarts, prefix collisions and a migrated log; interrupted batches leave no trace."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from schemas.errors import LogCorrupted, StorageError
from tests.unit.transparency.index_world import check_index, integrate, leaf, open_sequencer, statement
from transparency.log.reader import LogReader
from transparency.log.sequencer import Sequencer
from transparency.log.sqlite_storage import SqliteLogDatabase
from transparency.log.storage import open_database


def _reader(tmp_path: Path) -> LogReader:
    return LogReader(open_database(tmp_path / "log.sqlite", create=False))


def _append(seq: Sequencer, start: int, count: int) -> None:
    integrate(seq, [(leaf(i), statement(i)) for i in range(start, start + count)])


def test_dedupe_across_seals_merges_and_restarts(tmp_path: Path) -> None:
    seq = open_sequencer(tmp_path, seal=4, fanin=2)
    first = {r.leaf_data: r for r in integrate(seq, [(leaf(i), statement(i)) for i in range(3)])}
    size = 3
    for round_ in range(40):  # many seals and merges, each merge spread over several batches
        _append(seq, size, 3)
        size += 3
        again = integrate(seq, [(leaf(0), b"x"), (leaf(size - 1), b"y"), (leaf(size - 1), b"z")])
        assert again[0] == first[leaf(0)] and again[1].index == size - 1 and again[1] == again[2]
        assert seq.size == size
        if round_ % 13 == 12:
            seq.stop()
            seq = open_sequencer(tmp_path, seal=4, fanin=2)
    assert check_index(tmp_path / "log.sqlite") == size
    levels = {r.level for r in _reader(tmp_path).index_runs()}
    assert max(levels) >= 3, "the test must cross several merge levels"
    seq.stop()
    seq = open_sequencer(tmp_path, seal=4, fanin=2)  # a restart: recent ids read back from entries
    for i in (0, 5, size // 2, size - 2, size - 1):
        (hit,) = integrate(seq, [(leaf(i), b"resubmitted")])
        assert hit.index == i
    assert seq.size == size
    seq.stop()


def test_lookups_find_every_entry_before_and_after_each_merge(tmp_path: Path) -> None:
    seq = open_sequencer(tmp_path, seal=5, fanin=3)
    reader = _reader(tmp_path)  # another connection, as the service reads
    size = 0
    merging_seen = False
    for count in [1, 7, 2, 9, 4, 4, 11, 3, 6, 1, 13, 2, 8] * 3:
        _append(seq, size, count)
        size += count
        merging_seen |= any(r.filled_below is not None for r in reader.index_runs())
        for i in range(size):
            row = reader.entry_by_id(leaf(i))
            assert row is not None and (row.index, row.leaf_data, row.statement) == (i, leaf(i), statement(i))
        assert reader.entry_by_id(leaf(size)) is None
        assert reader.entry_by_id(b"short") is None
    assert merging_seen, "some lookups must happen while a merge is half done"
    check_index(tmp_path / "log.sqlite")
    seq.stop()


def test_a_recent_duplicate_is_found_in_memory_and_an_old_one_in_one_probe(tmp_path: Path) -> None:
    """The sequencer keeps the ids of the entries not yet in a large run in memory: a batch's dedupe finds a
    recent duplicate there without probing the large runs, and probes them once for the rest of the batch."""
    seq = open_sequencer(tmp_path, seal=4, fanin=2)
    for start in range(0, 200, 4):
        _append(seq, start, 4)
    assert seq.index._recent_from > 0, "the test needs large runs"
    integrate(seq, [(leaf(200), statement(200))])
    probes: list[str] = []
    assert isinstance(seq.db, SqliteLogDatabase)
    seq.db.conn.set_trace_callback(lambda sql: probes.append(sql) if "r.first_idx <" in sql else None)
    (dup,) = integrate(seq, [(leaf(200), b"the same id again")])
    assert dup.index == 200 and probes == []
    old, fresh = integrate(seq, [(leaf(3), b"an id in a large run"), (leaf(201), statement(201))])
    assert (old.index, fresh.index) == (3, 201) and len(probes) == 1
    seq.db.conn.set_trace_callback(None)
    assert seq.size == 202
    seq.stop()


def test_ids_sharing_the_8_byte_key_are_told_apart(tmp_path: Path) -> None:
    seq = open_sequencer(tmp_path, seal=2, fanin=2)
    twins = [bytes(8) + bytes([n]) * 24 for n in range(1, 6)]  # one index key, five entries
    for n, twin in enumerate(twins):
        integrate(seq, [(twin, b"twin %d" % n), (leaf(100 + n), b"other")])
    reader = _reader(tmp_path)
    for n, twin in enumerate(twins):
        row = reader.entry_by_id(twin)
        assert row is not None and row.statement == b"twin %d" % n
        assert integrate(seq, [(twin, b"again")])[0].index == row.index
    assert reader.entry_by_id(bytes(8) + b"\x07" * 24) is None
    assert seq.size == 10
    check_index(tmp_path / "log.sqlite")
    seq.stop()


def test_a_failed_batch_mid_merge_leaves_no_trace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The batch's transaction fails after its index rows and a merge slice were written: everything is
    rolled back, including the writer's memory of recent ids, and the next batches carry on."""
    seq = open_sequencer(tmp_path, seal=3, fanin=2)
    size = 0
    while not any(r.filled_below is not None for r in _reader(tmp_path).index_runs()):
        _append(seq, size, 2)
        size += 2
    before = check_index(tmp_path / "log.sqlite")

    def fail(*_: object, **__: object) -> None:
        raise sqlite3.OperationalError("disk I/O error (simulated, after the index was written)")

    monkeypatch.setattr(seq.tree, "append_leaf_data_with_paths", fail)
    with pytest.raises(StorageError):
        _append(seq, size, 5)
    monkeypatch.undo()
    assert check_index(tmp_path / "log.sqlite") == before
    assert _reader(tmp_path).entry_by_id(leaf(size)) is None
    again = integrate(seq, [(leaf(size), statement(size))])  # not a phantom duplicate: a new entry
    assert again[0].index == size == before
    for _ in range(20):
        size += 1
        _append(seq, size, 2)
        size += 1
    assert check_index(tmp_path / "log.sqlite") == seq.size
    seq.stop()


def test_an_old_log_is_migrated_in_one_transaction(tmp_path: Path) -> None:
    """A log written before the index (unique index on entries.entry_id) is opened: the index is built as
    one run of every entry, the old index is dropped, and dedupe and lookups work."""
    seq = open_sequencer(tmp_path)
    _append(seq, 0, 300)
    seq.stop()
    conn = sqlite3.connect(str(tmp_path / "log.sqlite"))
    conn.executescript(
        "DROP TABLE entry_index; DROP TABLE entry_index_runs; "
        "CREATE UNIQUE INDEX idx_entries_entry_id ON entries (entry_id);"
    )
    conn.close()
    seq = open_sequencer(tmp_path)
    runs = _reader(tmp_path).index_runs()
    assert [(r.first_idx, r.end_idx, r.filled_below) for r in runs] == [(0, 300, None), (300, None, None)]
    conn = sqlite3.connect(str(tmp_path / "log.sqlite"))
    indices = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'entries'")
    assert indices.fetchall() == []
    conn.close()
    assert integrate(seq, [(leaf(123), b"again")])[0].index == 123
    _append(seq, 300, 50)
    assert _reader(tmp_path).entry_by_id(leaf(7)) is not None
    assert check_index(tmp_path / "log.sqlite") == 350
    seq.stop()


def test_index_rows_are_never_updated_and_the_log_stays_append_only(tmp_path: Path) -> None:
    seq = open_sequencer(tmp_path)
    _append(seq, 0, 10)
    for sql in (
        "UPDATE entry_index SET idx = 99",
        "UPDATE entries SET statement = x'00'",
        "DELETE FROM entries",
        "DELETE FROM tree_nodes",
        "UPDATE tree_heads SET root = x'00'",
        "DELETE FROM meta",
    ):
        with pytest.raises(sqlite3.IntegrityError):
            seq.db.execute(sql)
    seq.stop()


def test_a_damaged_index_refuses_to_start(tmp_path: Path) -> None:
    seq = open_sequencer(tmp_path, seal=1000)
    _append(seq, 0, 10)
    seq.stop()
    conn = sqlite3.connect(str(tmp_path / "log.sqlite"))
    conn.execute("DELETE FROM entry_index WHERE idx = 4")
    conn.commit()
    conn.close()
    with pytest.raises(LogCorrupted, match="open run holds 9 rows for 10 entries"):
        open_sequencer(tmp_path, seal=1000)
