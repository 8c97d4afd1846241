"""The entry-id index (entry id -> leaf index: dedupe, ``GET /entries/{id}``), shared by both backends.

It is not a B-tree index on ``entries.entry_id``. Entry ids are hashes, so once such an index is larger
than a batch every insert of a batch dirties a different page: on SQLite at 10^6 entries a 256-entry commit
wrote 388 WAL pages instead of 57.
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
dedupe probes only the few large runs (one query for the whole batch).

While a run is being filled by a merge (``filled_below`` not NULL), the rows whose key is below
``filled_below`` are in it and the others still in its sources; each slice moves rows (insert into the
target, delete from the sources) and advances ``filled_below`` in the batch's transaction. So at every
commit each entry has exactly one index row, and a crash at any point loses nothing and needs no
catch-up. The two index tables are therefore not append-only: they are not the record of the log, every
row in them is derived from an ``entries`` row (``entry_id``, ``idx``), rows move between runs and the
run list changes. ``entry_index`` still refuses UPDATE (rows are only inserted and deleted).
Its tables are created by the backends' schemas (``sqlite_schema``, ``postgres_schema``; a SQLite log
written before the index is migrated on first open); its statements are the portable SQL of
``transparency.log.storage``, and the readers' lookup (``LOOKUP``) is here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from schemas.errors import EntryIndexCorrupted, LogCorrupted
from transparency.log.storage import LogDatabase

KEY_BYTES = 8  # entry ids are SHA-256 outputs: their first 8 bytes are uniform over the key space
SEAL_ENTRIES = 1024  # the open run is sealed once it covers this many entries
MERGE_FANIN = 8  # this many sealed runs of one level merge into one run of the next level
RECENT_LEVEL = 2  # the writer keeps in memory the ids of entries not yet in a run of this level or above
_KEY_SPACE = 1 << (8 * KEY_BYTES)
_LOOKUP_CHUNK = 500  # keys per IN (...) list in a batch lookup

# one seek per live run (the run list is a handful of rows), newest run first, then the entries row
LOOKUP = (
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


def _recent_start(runs: list[IndexRun]) -> int:
    """The first entry index not in a complete run of level ``RECENT_LEVEL`` or above. Levels never grow
    along the log, so those runs are a prefix of it, and a merge into such a run covers only older runs."""
    return max(
        (r.end_idx for r in runs if r.level >= RECENT_LEVEL and r.filled_below is None and r.end_idx is not None),
        default=0,
    )


def index_runs(db: LogDatabase) -> list[IndexRun]:
    """The live runs of the entry-id index, in log order."""
    rows = db.execute(
        "SELECT run, level, first_idx, end_idx, filled_below FROM entry_index_runs ORDER BY first_idx, level"
    ).fetchall()
    return [IndexRun(int(r[0]), int(r[1]), int(r[2]), r[3], r[4]) for r in rows]


class EntryIndexWriter:
    """The sequencer's side of the entry-id index. ``find`` and ``add`` run inside the sequencer's
    transaction, so a rolled-back batch leaves no trace in the tables.

    For its dedupe lookups the writer also keeps the ids of the *recent* entries in memory: those not yet in
    a complete run of level ``RECENT_LEVEL`` or above (the open run and the small runs, at most about
    ``2 * fanin**RECENT_LEVEL * seal_entries`` entries, read back from ``entries`` by ``load_recent`` when the
    sequencer opens the log or takes it over), so a batch probes only the few large runs in SQL. The memory
    copy changes only after COMMIT (``committed``).
    """

    def __init__(self, db: LogDatabase, *, seal_entries: int = SEAL_ENTRIES, fanin: int = MERGE_FANIN) -> None:
        if seal_entries < 1 or fanin < 2:
            raise ValueError("seal_entries must be >= 1 and fanin >= 2")
        self.db = db
        self.seal_entries = seal_entries
        self.fanin = fanin
        self.moved = 0  # index rows moved by merges in committed batches since start (for benchmarks)
        # leaf_data -> index, for index >= _recent_from. Only bytes and ints, so the garbage collector never
        # has to walk it (a dict of tuples is walked by every full collection: ~1 ms per batch at 10^6)
        self._recent: dict[bytes, int] = {}
        self._recent_from = 0
        self._staged: tuple[dict[bytes, int], int, int] | None = None  # (new ids, recent start, rows moved)

    def load_recent(self) -> None:
        """(Re)read the recent entries' ids from committed rows: a bounded read, not a rebuild."""
        start = _recent_start(index_runs(self.db))
        rows = self.db.execute("SELECT entry_id, idx FROM entries WHERE idx >= ?", (start,))
        self._recent = {bytes(e): int(i) for e, i in rows}
        self._recent_from = start
        self._staged = None

    def find(self, leaf_datas: Sequence[bytes]) -> dict[bytes, tuple[int, int]]:
        """``leaf_data -> (index, tree_size)`` of those already in the log."""
        found: dict[bytes, tuple[int, int]] = {}
        for d in leaf_datas:
            if d in self._recent:  # a re-submission of a recent entry: rare, one row read
                idx = self._recent[d]
                found[d] = (idx, int(self.db.execute("SELECT tree_size FROM entries WHERE idx = ?", (idx,))
                                     .fetchone()[0]))
        # in memory: the entries from _recent_from on; the large runs hold those below
        wanted = {d for d in leaf_datas if d not in found}
        if not wanted or self._recent_from == 0:
            return found
        keys = sorted({index_key(d) for d in wanted})
        for start in range(0, len(keys), _LOOKUP_CHUNK):
            chunk = keys[start:start + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(_FIND.format(marks=marks), (self._recent_from, *chunk)).fetchall()
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
        runs = index_runs(self.db)
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
        count = self.db.execute("SELECT COUNT(*) FROM entry_index WHERE run = ?", (tiling[-1].run,)).fetchone()
        if count[0] != size - tiling[-1].first_idx:
            raise EntryIndexCorrupted(
                f"the entry-id index's open run holds {count[0]} rows for {size - tiling[-1].first_idx} entries"
            )

    def add(self, first_idx: int, leaf_datas: Sequence[bytes]) -> None:
        """Index the entries ``first_idx, first_idx + 1, ...`` (inserted in this transaction); then seal the
        open run if it is full, start the merges that are due and do this batch's share of merge work."""
        if not leaf_datas:
            return
        runs = index_runs(self.db)
        opened = [r for r in runs if r.end_idx is None]
        if len(opened) != 1 or opened[0].first_idx > first_idx:
            raise EntryIndexCorrupted(f"the entry-id index has no open run for entry {first_idx}")
        open_run = opened[0]
        self.db.executemany(
            "INSERT INTO entry_index (run, key, idx) VALUES (?, ?, ?)",
            [(open_run.run, index_key(d), first_idx + i) for i, d in enumerate(leaf_datas)],
        )
        size = first_idx + len(leaf_datas)
        if size - open_run.first_idx >= self.seal_entries:
            self.db.execute("UPDATE entry_index_runs SET end_idx = ? WHERE run = ?", (size, open_run.run))
            self.db.execute("INSERT INTO entry_index_runs (level, first_idx) VALUES (0, ?)", (size,))
            runs = index_runs(self.db)
        if self._start_merges(runs):
            runs = index_runs(self.db)
        # each new entry pays for one move at every level it will climb, plus one: merges keep up
        budget = len(leaf_datas) * (1 + max(r.level for r in runs))
        completed, moved = self._merge(
            sorted((r for r in runs if r.filled_below is not None), key=lambda r: r.level), budget
        )
        if completed:
            runs = index_runs(self.db)
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
                self.db.execute(
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
            moved = self.db.execute(
                f"INSERT INTO entry_index (run, key, idx) SELECT ?, key, idx FROM entry_index "  # noqa: S608
                f"WHERE {sources}{limit} ORDER BY key, idx", (target.run, *bounds),
            ).rowcount
            self.db.execute(f"DELETE FROM entry_index WHERE {sources}{limit}", bounds)  # noqa: S608
            if limit:
                self.db.execute(
                    "UPDATE entry_index_runs SET filled_below = ? WHERE run = ?",
                    (upto.to_bytes(KEY_BYTES, "big"), target.run),
                )
            else:  # the last slice: the sources are empty now
                self.db.execute(
                    "DELETE FROM entry_index_runs WHERE first_idx >= ? AND end_idx <= ? AND run != ?",
                    (target.first_idx, target.end_idx, target.run),
                )
                self.db.execute("UPDATE entry_index_runs SET filled_below = NULL WHERE run = ?", (target.run,))
                completed = True
            total += moved
            budget -= max(moved, 1)
        return completed, total


