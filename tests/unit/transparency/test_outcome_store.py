"""The outcome store (``transparency.snapshots.OutcomeStore``) knows how far it is complete without counting its
rows: the mark moves with the rows, in the same transactions, only over outcomes that follow on in log order."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from schemas.errors import SnapshotUnusable
from transparency.snapshots import OutcomeStore
from verifier.fold import Outcome

SIGNERS = frozenset({"did:key:z6MkLogService"})


def _outcome(index: int) -> Outcome:
    return Outcome(index, f"{index:064x}", None, True)


def _filled(path: Path, indices: range) -> OutcomeStore:
    store = OutcomeStore(path, SIGNERS)
    for i in indices:
        store.append(_outcome(i))
    store.flush()
    return store


def test_a_store_holds_what_was_flushed_in_order(tmp_path: Path) -> None:
    _filled(tmp_path / "o.sqlite", range(10)).close()
    store = OutcomeStore(tmp_path / "o.sqlite", SIGNERS)  # reopened: the mark was saved with the rows
    store.check_holds(10, f"{9:064x}")
    with pytest.raises(SnapshotUnusable, match="holds 10 of the 11 entries"):
        store.check_holds(11, f"{10:064x}")
    with pytest.raises(SnapshotUnusable, match="entry 9 is not this log's"):
        store.check_holds(10, "ab" * 32)
    store.check_holds(4, f"{3:064x}")  # a snapshot of 4 entries: the later rows go, and the mark with them
    assert store.get(4) is None and store.get(3) == _outcome(3)
    with pytest.raises(SnapshotUnusable, match="holds 4 of the 10 entries"):
        store.check_holds(10, f"{9:064x}")
    store.close()


def test_outcomes_that_do_not_follow_on_do_not_move_the_mark(tmp_path: Path) -> None:
    store = _filled(tmp_path / "o.sqlite", range(5))
    store.append(_outcome(7))  # a gap at 5 and 6
    store.flush()
    with pytest.raises(SnapshotUnusable, match="holds 5 of the 8 entries"):
        store.check_holds(8, f"{7:064x}")
    store.clear()
    with pytest.raises(SnapshotUnusable, match="holds 0 of the 1 entries"):
        store.check_holds(1, f"{0:064x}")
    store.close()


def test_a_store_of_other_code_or_signers_starts_empty(tmp_path: Path) -> None:
    _filled(tmp_path / "o.sqlite", range(3)).close()
    store = OutcomeStore(tmp_path / "o.sqlite", frozenset({"did:key:z6MkOther"}))
    with pytest.raises(SnapshotUnusable, match="holds 0 of the 3 entries"):
        store.check_holds(3, f"{2:064x}")
    store.close()


def test_a_store_from_before_the_mark_is_counted_once(tmp_path: Path) -> None:
    """A store written by the code before the mark was kept (rows, no mark) gets its mark from one count: the
    rows if they are complete from entry 0, else none (and the rows go)."""
    for rows, expected in ((range(6), 6), (range(1, 6), 0), (range(0), 0)):
        path = tmp_path / f"o{len(rows)}-{rows.start}.sqlite"
        _filled(path, rows).close()
        with sqlite3.connect(path) as conn:
            conn.execute("DELETE FROM meta WHERE key = 'complete-through'")
        conn.close()
        store = OutcomeStore(path, SIGNERS)
        if expected:
            store.check_holds(expected, f"{expected - 1:064x}")
        with pytest.raises(SnapshotUnusable, match=f"holds {expected} of the {expected + 1} entries"):
            store.check_holds(expected + 1, f"{expected:064x}")
        store.close()
