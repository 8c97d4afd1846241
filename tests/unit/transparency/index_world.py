"""Helpers for the entry-id index tests: a sequencer with tiny runs, and the index's invariants checked
against the ``entries`` rows with plain SQL (not with the code under test), on either backend."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg

from transparency.keys import load_or_create_log_key
from transparency.log.sequencer import Integrated, Sequencer, _Pending
from transparency.log.storage import LogLocation, is_postgres

ORIGIN = "index.example/log"


def leaf(i: int) -> bytes:
    return hashlib.sha256(b"entry %d" % i).digest()


def statement(i: int) -> bytes:
    return b"statement %d" % i


def open_sequencer(directory: Path, *, seal: int = 4, fanin: int = 2, database: str | None = None) -> Sequencer:
    """A sequencer whose index seals a run every ``seal`` entries and merges ``fanin`` runs at a time, so
    merges (each spread over several batches) happen all the time. Its thread is not started. The log is
    ``directory/log.sqlite``, or the PostgreSQL ``database``; its key is in ``directory``."""
    key = load_or_create_log_key(directory / "log-key.pem")
    deadline = time.monotonic() + 10
    while True:
        seq = Sequencer(location(directory, database), key, ORIGIN, index_seal_entries=seal, index_fanin=fanin)
        if seq.leading:
            return seq
        # PostgreSQL: the session of a writer killed just before still holds the sequencer's lock (for a moment)
        seq.stop()
        assert time.monotonic() < deadline, "the sequencer's lock was never released"
        time.sleep(0.05)


def location(directory: Path, database: str | None = None) -> LogLocation:
    return database or directory / "log.sqlite"


def raw_connection(where: LogLocation) -> Any:
    """A plain DB-API connection (sqlite3 or psycopg, autocommit), not the code under test."""
    if is_postgres(where):
        return psycopg.connect(str(where), autocommit=True)
    return sqlite3.connect(str(where))


def integrate(sequencer: Sequencer, items: list[tuple[bytes, bytes]]) -> list[Integrated]:
    """One batch through the integration step; re-raises if the batch failed. Where each entry landed, without
    the receipts of the new ones (the index's tests compare positions; ``test_sequencer`` checks the receipts)."""
    batch = [_Pending(leaf_data, stmt, Future()) for leaf_data, stmt in items]
    sequencer._integrate(batch)
    return [replace(p.future.result(), receipt=None) for p in batch]


def check_index(where: LogLocation) -> int:
    """Assert the index's invariants on committed rows; the tree size.

    Every entry has exactly one index row, in a live run whose range covers it, keyed by its id's first
    8 bytes; a run being filled by a merge holds exactly the rows of its range below ``filled_below`` and its
    sources the others; the runs not being merged away tile the log; exactly one run is open.
    """
    conn = raw_connection(where)
    try:
        size = conn.execute("SELECT MAX(tree_size) FROM tree_heads").fetchone()[0]
        assert conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == size
        runs = {
            r[0]: (r[1], r[2], size if r[3] is None else r[3], r[4])
            for r in conn.execute("SELECT run, level, first_idx, end_idx, filled_below FROM entry_index_runs")
        }
        assert conn.execute("SELECT COUNT(*) FROM entry_index_runs WHERE end_idx IS NULL").fetchone()[0] == 1
        rows = conn.execute(
            "SELECT x.run, x.key, x.idx, e.entry_id FROM entry_index x LEFT JOIN entries e ON e.idx = x.idx"
        ).fetchall()
        assert sorted(r[2] for r in rows) == list(range(size)), "each entry has exactly one index row"
        targets = {run: v for run, v in runs.items() if v[3] is not None}
        for run, key, idx, entry_id in rows:
            assert run in runs, f"row of entry {idx} in a run that is not live"
            _, first, end, _ = runs[run]
            assert first <= idx < end and bytes(key) == bytes(entry_id)[:8]
            for target, (_, t_first, t_end, below) in targets.items():
                if t_first <= idx < t_end:
                    assert (run == target) == (bytes(key) < bytes(below)), f"entry {idx}: wrong side of a merge"
        covering = sorted(
            (first, end) for run, (_, first, end, _) in runs.items()
            if not any(t != run and tf <= first and end <= te for t, (_, tf, te, _) in targets.items())
        )
        position = 0
        for first, end in covering:
            assert first == position
            position = end
        assert position == size
        return int(size)
    finally:
        conn.close()
