"""The log's SQLite storage (WAL) through sqlite-utils: schema, append-only triggers, the entry-id index.

The record of the log (append-only, enforced by triggers; rows once written never change):
- ``entries``:    0-based leaf index (the only key), entry id (= leaf_data), the logged statement, the tree
                  size whose signed head covers it, registration time.
- ``tree_nodes``: every perfect-subtree root of the Merkle tree, ``(level, index) -> hash``; level 0 holds
                  the RFC 9162 leaf hashes. Any root or proof costs O(log n) primary-key reads.
- ``tree_heads``: one per integrated batch: size, root, time, the signed checkpoint note and the receipt
                  signature shared by every receipt issued at that size.
- ``meta``:       the log's origin and key id, written once.

The entry-id index (entry id -> leaf index: dedupe, ``GET /entries/{id}``) is not a B-tree index on
``entries.entry_id``. Entry ids are hashes, so once such an index is larger than a batch every insert of a
batch dirties a different page: at 10^6 entries a 256-entry commit wrote 388 WAL pages instead of 57.
It is a log-structured merge tree (as in LevelDB) of sorted *runs*, kept in the batch's own transaction:

- ``entry_index``:      ``(run, key, idx)`` where ``key`` is the first 8 bytes of the entry id. Each run
                        covers a contiguous range of leaf indices and holds one row per entry in it.
- ``entry_index_runs``: the live runs: level, ``[first_idx, end_idx)``; ``end_idx`` is NULL for the one
                        *open* run, which covers the entries from ``first_idx`` to the tree size.

Every batch inserts its keys into the open run, which is sealed after ``SEAL_ENTRIES`` entries, so a batch
writes to a few hot pages whatever the size of the log. ``MERGE_FANIN`` sealed runs of one level are merged
into one run of the next level, written in key order (dense pages at the end of the table), one slice of
the key space per batch: the merge work of a batch is bounded by the entries it appends (``1 + top level``
rows each), so there is no stop-the-world merge. A lookup probes every live run, one seek each (about
``FANIN - 1`` runs per level, ``O(log n)`` in all), newest first, and confirms the full entry id on the
``entries`` row, so two ids sharing a key are told apart. The writer keeps the ids of the entries that
are not yet in a large run in memory (Tessera's antispam keeps recent ids in memory too), so a batch's
dedupe probes only the few large runs, and none at all for statements the service looked up just before
submitting them (``Sequencer.submit(absent_below=...)``).

While a run is being filled by a merge (``filled_below`` not NULL), the rows whose key is below
``filled_below`` are in it and the others still in its sources; each slice moves rows (insert into the
target, delete from the sources) and advances ``filled_below`` in the batch's transaction. So at every
commit each entry has exactly one index row, and a crash at any point loses nothing and needs no
catch-up. The two index tables are therefore not append-only: they are not the record of the log, every
row in them is derived from an ``entries`` row (``entry_id``, ``idx``), rows move between runs and the
run list changes. ``entry_index`` still refuses UPDATE (rows are only inserted and deleted).
A log written before the index is migrated on first open, in one transaction (one run of every entry).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from schemas.errors import EntryIndexCorrupted, EntryMissing, LogCorrupted
from transparency.sqlite_files import connect

APPEND_ONLY_TABLES = ("entries", "tree_nodes", "tree_heads", "meta")

KEY_BYTES = 8  # entry ids are SHA-256 outputs: their first 8 bytes are uniform over the key space
SEAL_ENTRIES = 1024  # the open run is sealed once it covers this many entries
MERGE_FANIN = 8  # this many sealed runs of one level merge into one run of the next level
RECENT_LEVEL = 2  # the writer keeps in memory the ids of entries not yet in a run of this level or above
_KEY_SPACE = 1 << (8 * KEY_BYTES)
_LOOKUP_CHUNK = 500  # keys per IN (...) list in a batch lookup

# one seek per live run (the run list is a handful of rows), newest run first, then the entries row
_LOOKUP = (
    "SELECT e.idx, e.entry_id, e.statement, e.tree_size, e.registered_at "
    "FROM entry_index_runs r CROSS JOIN entry_index x CROSS JOIN entries e "
    "WHERE x.run = r.run AND x.key = ? AND e.idx = x.idx AND e.entry_id = ? ORDER BY r.run DESC LIMIT 1"
)

# the same for a batch of keys in the runs of entries below an index (the writer's dedupe, for the entries
# it does not keep in memory); the caller checks the full id of each entries row found
_FIND = (
    "SELECT e.entry_id, e.idx, e.tree_size "
    "FROM entry_index_runs r CROSS JOIN entry_index x CROSS JOIN entries e "
    "WHERE r.first_idx < ? AND x.run = r.run AND x.key IN ({marks}) AND e.idx = x.idx"
)


@dataclass(frozen=True)
class TreeHead:
    tree_size: int
    root: bytes
    timestamp: int
    checkpoint: str
    receipt_protected: bytes
    receipt_signature: bytes


@dataclass(frozen=True)
class EntryRow:
    index: int
    leaf_data: bytes
    statement: bytes
    tree_size: int
    registered_at: int


@dataclass(frozen=True)
class IndexRun:
    """A live run of the entry-id index."""

    run: int
    level: int
    first_idx: int
    end_idx: int | None  # None: the open run
    filled_below: bytes | None  # not None while a merge fills this run


def index_key(leaf_data: bytes) -> bytes:
    """The entry-id index key of an entry: the first ``KEY_BYTES`` bytes of its id."""
    if len(leaf_data) < KEY_BYTES:
        raise LogCorrupted(f"an entry id of {len(leaf_data)} bytes is too short to index")
    return leaf_data[:KEY_BYTES]


def open_database(path: Path, *, create: bool = True) -> sqlite_utils.Database:
    """Open (and on first use create, or bring up to date) the log database with durable WAL settings."""
    db = sqlite_utils.Database(connect(path))
    db.execute("PRAGMA foreign_keys=ON")
    if create:
        _create_schema(db)
        _migrate_entry_index(db)
    return db


def _create_schema(db: sqlite_utils.Database) -> None:
    if "entries" in db.table_names():
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        db.table("entries").create(
            {"idx": int, "entry_id": bytes, "statement": bytes, "tree_size": int, "registered_at": int},
            pk="idx", not_null={"entry_id", "statement", "tree_size", "registered_at"},
        )
        db.execute(
            "CREATE TABLE tree_nodes (level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL, "
            "PRIMARY KEY (level, idx)) WITHOUT ROWID"
        )
        db.table("tree_heads").create(
            {"tree_size": int, "root": bytes, "timestamp": int, "checkpoint": str,
             "receipt_protected": bytes, "receipt_signature": bytes},
            pk="tree_size",
            not_null={"root", "timestamp", "checkpoint", "receipt_protected", "receipt_signature"},
        )
        db.table("meta").create({"key": str, "value": str}, pk="key", not_null={"value"})
        for table in APPEND_ONLY_TABLES:
            for op in ("UPDATE", "DELETE"):
                db.execute(
                    f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "  # noqa: S608
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )
        _create_entry_index(db, 0)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _create_entry_index(db: sqlite_utils.Database, size: int) -> None:
    """The index tables, with one sealed run of the ``size`` entries already logged and the open run."""
    db.execute(
        "CREATE TABLE entry_index_runs (run INTEGER PRIMARY KEY, level INTEGER NOT NULL, "
        "first_idx INTEGER NOT NULL, end_idx INTEGER, filled_below BLOB)"
    )
    db.execute(
        "CREATE TABLE entry_index (run INTEGER NOT NULL, key BLOB NOT NULL, idx INTEGER NOT NULL, "
        "PRIMARY KEY (run, key, idx)) WITHOUT ROWID"
    )
    db.execute(
        "CREATE TRIGGER entry_index_no_update BEFORE UPDATE ON entry_index "
        "BEGIN SELECT RAISE(ABORT, 'entry_index rows are only inserted and deleted'); END"
    )
    if size:
        level = 0
        while SEAL_ENTRIES * MERGE_FANIN ** (level + 1) <= size:
            level += 1
        db.execute(
            "INSERT INTO entry_index_runs (run, level, first_idx, end_idx) VALUES (1, ?, 0, ?)", (level, size)
        )
        db.execute(
            "INSERT INTO entry_index (run, key, idx) SELECT 1, substr(entry_id, 1, ?), idx FROM entries "
            "ORDER BY 2, 3", (KEY_BYTES,),
        )
    db.execute("INSERT INTO entry_index_runs (level, first_idx) VALUES (0, ?)", (size,))


def _migrate_entry_index(db: sqlite_utils.Database) -> None:
    """A log written before the entry-id index: build it (one run of every entry) and drop the old
    unique index on ``entries.entry_id``, in one transaction."""
    if "entry_index" in db.table_names():
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        row = db.execute("SELECT COALESCE(MAX(idx) + 1, 0), COUNT(*) FROM entries").fetchone()
        if row[0] != row[1]:
            raise EntryMissing(f"entries holds {row[1]} rows but its last index is {row[0] - 1}")
        _create_entry_index(db, int(row[0]))
        for index in db.execute("PRAGMA index_list(entries)").fetchall():
            columns = [c[2] for c in db.execute(f"PRAGMA index_info({index[1]!r})").fetchall()]
            if index[3] == "c" and columns == ["entry_id"]:
                db.execute(f"DROP INDEX {index[1]!r}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _recent_start(runs: list[IndexRun]) -> int:
    """The first entry index not in a complete run of level ``RECENT_LEVEL`` or above. Levels never grow
    along the log, so those runs are a prefix of it, and a merge into such a run covers only older runs."""
    return max(
        (r.end_idx for r in runs if r.level >= RECENT_LEVEL and r.filled_below is None and r.end_idx is not None),
        default=0,
    )


def _index_runs(conn: sqlite3.Connection) -> list[IndexRun]:
    rows = conn.execute(
        "SELECT run, level, first_idx, end_idx, filled_below FROM entry_index_runs ORDER BY first_idx, level"
    ).fetchall()
    return [IndexRun(int(r[0]), int(r[1]), int(r[2]), r[3], r[4]) for r in rows]


class EntryIndexWriter:
    """The sequencer's side of the entry-id index. ``find`` and ``add`` run inside the sequencer's
    transaction, so a rolled-back batch leaves no trace in the tables.

    For its dedupe lookups the writer also keeps the ids of the *recent* entries in memory: those not yet in
    a complete run of level ``RECENT_LEVEL`` or above (the open run and the small runs, at most about
    ``2 * fanin**RECENT_LEVEL * seal_entries`` entries, read back from ``entries`` at start-up), so a batch
    probes only the few large runs in SQL. The memory copy changes only after COMMIT (``committed``).
    """

    def __init__(self, conn: sqlite3.Connection, *, seal_entries: int = SEAL_ENTRIES,
                 fanin: int = MERGE_FANIN) -> None:
        if seal_entries < 1 or fanin < 2:
            raise ValueError("seal_entries must be >= 1 and fanin >= 2")
        self.conn = conn
        self.seal_entries = seal_entries
        self.fanin = fanin
        self.moved = 0  # index rows moved by merges in committed batches since start (for benchmarks)
        # leaf_data -> index, for index >= _recent_from. Only bytes and ints, so the garbage collector never
        # has to walk it (a dict of tuples is walked by every full collection: ~1 ms per batch at 10^6)
        self._recent: dict[bytes, int] = {}
        self._recent_from = 0
        self._staged: tuple[dict[bytes, int], int, int] | None = None  # (new ids, recent start, rows moved)
        self.load_recent()

    def load_recent(self) -> None:
        """(Re)read the recent entries' ids from committed rows: a bounded read, not a rebuild."""
        start = _recent_start(_index_runs(self.conn))
        rows = self.conn.execute("SELECT entry_id, idx FROM entries WHERE idx >= ?", (start,))
        self._recent = {bytes(e): int(i) for e, i in rows}
        self._recent_from = start
        self._staged = None

    def find(
        self, leaf_datas: Sequence[bytes], absent_below: Mapping[bytes, int] | None = None
    ) -> dict[bytes, tuple[int, int]]:
        """``leaf_data -> (index, tree_size)`` of those already in the log. ``absent_below[d]``: the caller
        already knows ``d`` is not among the first ``absent_below[d]`` entries (0: knows nothing)."""
        found: dict[bytes, tuple[int, int]] = {}
        for d in leaf_datas:
            if d in self._recent:  # a re-submission of a recent entry: rare, one row read
                idx = self._recent[d]
                found[d] = (idx, int(self.conn.execute("SELECT tree_size FROM entries WHERE idx = ?", (idx,))
                                     .fetchone()[0]))
        known = absent_below or {}
        # in memory: the entries from _recent_from on; the caller vouches for those below absent_below
        wanted = {d for d in leaf_datas if d not in found and known.get(d, 0) < self._recent_from}
        if not wanted:
            return found
        keys = sorted({index_key(d) for d in wanted})
        for start in range(0, len(keys), _LOOKUP_CHUNK):
            chunk = keys[start:start + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self.conn.execute(_FIND.format(marks=marks), (self._recent_from, *chunk)).fetchall()
            for entry_id, idx, tree_size in rows:
                if bytes(entry_id) in wanted:
                    found[bytes(entry_id)] = (int(idx), int(tree_size))
        return found

    @property
    def recent_from(self) -> int:
        """The first entry whose id the writer keeps in memory (``load_recent``): it holds those up to the size."""
        return self._recent_from

    def committed(self) -> None:
        """The transaction of the last ``add`` committed: bring the memory copy up to date."""
        if self._staged is None:
            return
        added, start, moved = self._staged
        self._staged = None
        self.moved += moved
        self._recent.update(added)
        if start > self._recent_from:  # a merge into a large run completed: those ids are found in SQL now
            self._recent = {d: idx for d, idx in self._recent.items() if idx >= start}
            self._recent_from = start

    def rolled_back(self) -> None:
        self._staged = None

    def check(self, size: int) -> None:
        """Start-up check of the run list against the tree size (a few catalog rows and one bounded count):
        the runs not being merged away tile ``[0, size)`` and the open run holds a row per entry it covers."""
        runs = _index_runs(self.conn)
        targets = [r for r in runs if r.filled_below is not None]
        tiling = [r for r in runs if not any(
            t.run != r.run and t.first_idx <= r.first_idx and r.end_idx is not None and r.end_idx <= (t.end_idx or 0)
            for t in targets
        )]
        position = 0
        for run in tiling:
            end = size if run.end_idx is None else run.end_idx
            if run.first_idx != position or end < position or (run.end_idx is None and run is not tiling[-1]):
                raise EntryIndexCorrupted(
                    f"the entry-id index runs do not cover the log's {size} entries (run {run.run})"
                )
            position = end
        if not tiling or tiling[-1].end_idx is not None or position != size:
            raise EntryIndexCorrupted(f"the entry-id index runs do not cover the log's {size} entries")
        count = self.conn.execute("SELECT COUNT(*) FROM entry_index WHERE run = ?", (tiling[-1].run,)).fetchone()
        if count[0] != size - tiling[-1].first_idx:
            raise EntryIndexCorrupted(
                f"the entry-id index's open run holds {count[0]} rows for {size - tiling[-1].first_idx} entries"
            )

    def add(self, first_idx: int, leaf_datas: Sequence[bytes]) -> None:
        """Index the entries ``first_idx, first_idx + 1, ...`` (inserted in this transaction); then seal the
        open run if it is full, start the merges that are due and do this batch's share of merge work."""
        if not leaf_datas:
            return
        runs = _index_runs(self.conn)
        opened = [r for r in runs if r.end_idx is None]
        if len(opened) != 1 or opened[0].first_idx > first_idx:
            raise EntryIndexCorrupted(f"the entry-id index has no open run for entry {first_idx}")
        open_run = opened[0]
        self.conn.executemany(
            "INSERT INTO entry_index (run, key, idx) VALUES (?, ?, ?)",
            [(open_run.run, index_key(d), first_idx + i) for i, d in enumerate(leaf_datas)],
        )
        size = first_idx + len(leaf_datas)
        if size - open_run.first_idx >= self.seal_entries:
            self.conn.execute("UPDATE entry_index_runs SET end_idx = ? WHERE run = ?", (size, open_run.run))
            self.conn.execute("INSERT INTO entry_index_runs (level, first_idx) VALUES (0, ?)", (size,))
            runs = _index_runs(self.conn)
        if self._start_merges(runs):
            runs = _index_runs(self.conn)
        # each new entry pays for one move at every level it will climb, plus one: merges keep up
        budget = len(leaf_datas) * (1 + max(r.level for r in runs))
        completed, moved = self._merge(
            sorted((r for r in runs if r.filled_below is not None), key=lambda r: r.level), budget
        )
        if completed:
            runs = _index_runs(self.conn)
        self._staged = ({d: first_idx + i for i, d in enumerate(leaf_datas)}, _recent_start(runs), moved)

    def _start_merges(self, runs: list[IndexRun]) -> bool:
        """For every level with ``fanin`` sealed runs that no merge is reading yet, start merging the oldest
        ``fanin`` of them into an empty run of the next level."""
        targets = [r for r in runs if r.filled_below is not None]

        def free(r: IndexRun) -> bool:
            if r.end_idx is None or r.filled_below is not None:
                return False
            return not any(t.first_idx <= r.first_idx and r.end_idx <= (t.end_idx or 0) for t in targets)

        started = False
        for level in sorted({r.level for r in runs}):
            group = [r for r in runs if r.level == level and free(r)]
            while len(group) >= self.fanin:
                sources, group = group[:self.fanin], group[self.fanin:]
                for left, right in zip(sources, sources[1:], strict=False):
                    if left.end_idx != right.first_idx:
                        raise EntryIndexCorrupted(
                            f"entry-id index runs {left.run} and {right.run} are not adjacent"
                        )
                self.conn.execute(
                    "INSERT INTO entry_index_runs (level, first_idx, end_idx, filled_below) VALUES (?, ?, ?, ?)",
                    (level + 1, sources[0].first_idx, sources[-1].end_idx, bytes(KEY_BYTES)),
                )
                started = True
        return started

    def _merge(self, targets: list[IndexRun], budget: int) -> tuple[bool, int]:
        """Move up to about ``budget`` index rows into the runs being merged, lowest level first; whether a
        merge completed, and the rows moved. A slice is a key range: with uniform keys, ``budget / entries``
        of the key space moves about ``budget`` rows."""
        completed = False
        total = 0
        for target in targets:
            if budget <= 0:
                break
            if target.end_idx is None or target.filled_below is None:
                raise EntryIndexCorrupted(f"entry-id index run {target.run} is not being merged")
            entries = target.end_idx - target.first_idx
            done = int.from_bytes(target.filled_below, "big")
            upto = done + -(-budget * _KEY_SPACE // entries)
            sources = (
                "run IN (SELECT run FROM entry_index_runs WHERE first_idx >= ? AND end_idx <= ? AND run != ?)"
            )
            bounds: tuple[object, ...] = (target.first_idx, target.end_idx, target.run)
            if upto < _KEY_SPACE:
                limit, bounds = " AND key < ?", (*bounds, upto.to_bytes(KEY_BYTES, "big"))
            else:
                limit = ""
            moved = self.conn.execute(
                f"INSERT INTO entry_index (run, key, idx) SELECT ?, key, idx FROM entry_index "  # noqa: S608
                f"WHERE {sources}{limit} ORDER BY key, idx", (target.run, *bounds),
            ).rowcount
            self.conn.execute(f"DELETE FROM entry_index WHERE {sources}{limit}", bounds)  # noqa: S608
            if limit:
                self.conn.execute(
                    "UPDATE entry_index_runs SET filled_below = ? WHERE run = ?",
                    (upto.to_bytes(KEY_BYTES, "big"), target.run),
                )
            else:  # the last slice: the sources are empty now
                self.conn.execute(
                    "DELETE FROM entry_index_runs WHERE first_idx >= ? AND end_idx <= ? AND run != ?",
                    (target.first_idx, target.end_idx, target.run),
                )
                self.conn.execute("UPDATE entry_index_runs SET filled_below = NULL WHERE run = ?", (target.run,))
                completed = True
            total += moved
            budget -= max(moved, 1)
        return completed, total


class LogReader:
    """Read-only queries over committed rows. Safe to use while the sequencer writes (WAL snapshots)."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        self.conn: sqlite3.Connection = db.conn

    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def latest_head(self) -> TreeHead | None:
        row = self.conn.execute(
            "SELECT tree_size, root, timestamp, checkpoint, receipt_protected, receipt_signature "
            "FROM tree_heads ORDER BY tree_size DESC LIMIT 1"
        ).fetchone()
        return None if row is None else TreeHead(*row)

    def head(self, tree_size: int) -> TreeHead | None:
        row = self.conn.execute(
            "SELECT tree_size, root, timestamp, checkpoint, receipt_protected, receipt_signature "
            "FROM tree_heads WHERE tree_size = ?", (tree_size,)
        ).fetchone()
        return None if row is None else TreeHead(*row)

    def entry_by_id(self, leaf_data: bytes) -> EntryRow | None:
        """The entry whose id is ``leaf_data``, through the entry-id index (one seek per live run)."""
        if len(leaf_data) < KEY_BYTES:
            return None
        row = self.conn.execute(_LOOKUP, (index_key(leaf_data), leaf_data)).fetchone()
        return None if row is None else EntryRow(*row)

    def index_runs(self) -> list[IndexRun]:
        """The live runs of the entry-id index, in log order."""
        return _index_runs(self.conn)

    def entries(self, start: int, limit: int) -> list[EntryRow]:
        rows = self.conn.execute(
            "SELECT idx, entry_id, statement, tree_size, registered_at FROM entries "
            "WHERE idx >= ? ORDER BY idx LIMIT ?", (start, limit),
        ).fetchall()
        return [EntryRow(*r) for r in rows]

    def entries_end(self) -> int:
        """1 + the index of the last stored entry (0 for none): one seek, whatever the size of the log."""
        row = self.conn.execute("SELECT MAX(idx) FROM entries").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def entry_ids(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """``(index, entry id)`` of the stored entries in ``[start, end)``, in log order (gaps show)."""
        rows = self.conn.execute(
            "SELECT idx, entry_id FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx", (start, end)
        ).fetchall()
        return [(int(r[0]), bytes(r[1])) for r in rows]

    def leaf_datas(self, start: int, end: int) -> list[bytes]:
        rows = self.conn.execute(
            "SELECT entry_id FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx", (start, end)
        ).fetchall()
        if len(rows) != end - start:
            raise LogCorrupted(f"entries {start}..{end} are not all present")
        return [bytes(r[0]) for r in rows]

    def node_hashes(self, level: int, start: int, end: int) -> list[bytes]:
        rows = self.conn.execute(
            "SELECT hash FROM tree_nodes WHERE level = ? AND idx >= ? AND idx < ? ORDER BY idx",
            (level, start, end),
        ).fetchall()
        return [bytes(r[0]) for r in rows]
