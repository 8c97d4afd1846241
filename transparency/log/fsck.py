"""``tabellion fsck``: check all of a log against itself, read-only, from its data folder (and its PostgreSQL
database, ``--database``).

The database is opened read-only in one read transaction (one consistent snapshot, also while the service
runs; on SQLite ``sqlite_files.connect_read_only`` creates no file; on PostgreSQL a ``REPEATABLE READ READ ONLY``
transaction whose large results stream through server-side cursors), the keys are read from the data folder, and
everything stored is recomputed from the statements with the checks of ``transparency.log.checks``, which use
the verifier's code rather than the writer's:

- **entries**, in one pass in log order: each statement's id (``schemas.leaf``) is its stored id and the
  leaf the tree holds (``check_leaf`` names which of the three was altered); no entry is missing from the
  middle (``EntryMissing``) or the end (``LogTruncated``); each entry's tree size and registration time are
  those of the signed head that first covered it (``EntryMetadataCorrupted``);
- **the Merkle tree**: every perfect-subtree node is recomputed from the leaves with ``verifier.merkle`` and
  compared with the stored ``tree_nodes`` row (wrong, missing or extra rows: ``TreeNodeCorrupted``);
- **every tree head**, as the pass reaches its size: its checkpoint and receipt signatures verify under the
  log's keys (current and retired) and agree with its root column (``check_signed_head``), and that root is
  the root recomputed from the leaves (``check_head_root``). Sizes increase by construction (the size is the
  table's key), and since every root is recomputed from a prefix of the one leaf sequence, each head is
  consistent with every earlier one exactly when all their roots check out;
- **the entry-id index** (the LSM of sorted runs of ``transparency.log.entry_index``): the live runs tile the log,
  every index row sits in a live run whose range covers its entry, on the right side of a merge, keyed by the
  first bytes of its entry's id, and every entry has exactly one row; two entries with one id (a statement
  logged twice) are found on the way.

First of all, on SQLite, SQLite's own ``quick_check`` of the file's b-trees (a damaged page: ``log-corrupted``; a read
that fails on one stops the check there). Each problem is a ``LogCorrupted`` subclass (its ``code`` is the
class of corruption); the report keeps them all in the order found. Memory: 9 bytes per entry (the index
keys and row counts) besides O(log n).
"""

from __future__ import annotations

import heapq
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from schemas.errors import (
    BadInput,
    EntryIdCorrupted,
    EntryIndexCorrupted,
    EntryMetadataCorrupted,
    EntryMissing,
    LogCorrupted,
    TreeHeadCorrupted,
    TreeNodeCorrupted,
)
from schemas.leaf import leaf_hash
from schemas.note import parse_note
from transparency.keys import read_published_key_set
from transparency.log.checks import (
    HeadKeys,
    check_entries_end,
    check_head_root,
    check_leaf,
    check_signed_head,
    head_keys,
    missing_entries,
    short,
    statement_id,
)
from transparency.log.entry_index import KEY_BYTES
from transparency.log.reader import TreeHead
from transparency.log.sqlite_storage import SqliteLogDatabase
from transparency.log.storage import LogDatabase, open_database
from transparency.settings import Settings
from transparency.sqlite_files import connect_read_only
from verifier.keys import KeySet
from verifier.merkle import EMPTY_ROOT, hash_children

Progress = Callable[[str, int, int], None]
"""Called now and then with what is being checked, how many of them are done, and how many there are."""

PROGRESS_EVERY = 4096
SQLITE_MESSAGES = 10  # at most this many messages of SQLite's own check of the file

_HEADS = (
    "SELECT tree_size, root, timestamp, checkpoint, receipt_protected, receipt_signature FROM tree_heads "
    "ORDER BY tree_size"
)
_ENTRIES = "SELECT idx, entry_id, statement, tree_size, registered_at FROM entries ORDER BY idx"


@dataclass
class FsckReport:
    """What ``fsck`` checked and the problems it found, in the order found."""

    data_dir: Path
    size: int = 0  # the latest signed tree head's size
    entries: int = 0
    heads: int = 0
    nodes: int = 0
    index_rows: int = 0
    problems: list[LogCorrupted] = field(default_factory=list)
    opened_meanwhile: bool = False  # a process opened the log while it was read as an immutable file

    def lines(self, per_class: int = 10) -> list[str]:
        """One line per problem (at most ``per_class`` of each class, then how many more), then the summary."""
        shown: dict[str, int] = {}
        out: list[str] = []
        for problem in self.problems:
            shown[problem.code] = shown.get(problem.code, 0) + 1
            if shown[problem.code] <= per_class:
                out.append(f"fsck: {problem.detail} [{problem.code}]")
        out += [f"fsck: … and {n - per_class} more [{code}]" for code, n in shown.items() if n > per_class]
        if self.opened_meanwhile:
            out.append("fsck: warning: a process opened the log while fsck read it as a closed (immutable) file; "
                       "what it found may be stale: run it again")
        checked = (f"{self.entries} entries, {self.heads} tree heads, {self.nodes} tree nodes, "
                   f"{self.index_rows} index rows checked")
        if not self.problems:
            return [*out, f"fsck: {self.data_dir}: log of size {self.size}: {checked}: clean"]
        classes = ", ".join(f"{code} {n}" for code, n in shown.items())
        return [*out, f"fsck: {self.data_dir}: log of size {self.size}: {checked}: "
                      f"{len(self.problems)} problem{'s' if len(self.problems) > 1 else ''} ({classes})"]


def fsck(data_dir: Path, progress: Progress | None = None, *, database: str | None = None) -> FsckReport:
    """Check the log in ``data_dir`` (``tabellion serve --data``; ``database``: its ``--database``), read-only;
    the service may be running."""
    settings = Settings(data_dir=data_dir, database=database)
    wal = settings.db_path.with_name(settings.db_path.name + "-wal")
    was_open = database is None and wal.exists()
    db: LogDatabase
    if database is None:
        db = SqliteLogDatabase(connect_read_only(settings.db_path), settings.db_path)
    else:
        db = open_database(database, create=False)
    try:
        keys = read_published_key_set(settings.key_path, settings.retired_keys_dir)
        db.begin_snapshot()  # one snapshot for the whole check
        check = _Check(db, data_dir, keys, progress or (lambda what, done, total: None))
        try:
            check.run()
        except sqlite3.DatabaseError as exc:  # a file SQLite cannot read (on): that is corruption too
            check.problem(LogCorrupted(f"SQLite: {exc} (the check stopped there)"))
    finally:
        db.close()
    check.report.opened_meanwhile = database is None and not was_open and wal.exists()
    return check.report


class _StoredLevel:
    """The stored hashes of one tree level, read in index order as the recomputation asks for them."""

    def __init__(self, db: LogDatabase, level: int) -> None:
        self.level = level
        self.rows = db.stream("SELECT idx, hash FROM tree_nodes WHERE level = ? ORDER BY idx", (level,))
        self.ahead = next(self.rows, None)

    def take(self, index: int) -> bytes | None:
        """The stored hash of node ``index`` (asked in increasing order), or ``None`` if there is none."""
        if self.ahead is None or self.ahead[0] != index:
            return None
        found = bytes(self.ahead[1])
        self.ahead = next(self.rows, None)
        return found

    def rest(self) -> Iterator[int]:
        """The indices of the rows never asked for (nodes outside the tree)."""
        while self.ahead is not None:
            yield int(self.ahead[0])
            self.ahead = next(self.rows, None)


class _Check:
    def __init__(self, db: LogDatabase, data_dir: Path, keys: KeySet, progress: Progress) -> None:
        self.db = db
        self.report = FsckReport(data_dir)
        self.key_set = keys
        self.progress = progress
        self.keys = bytearray()  # the first KEY_BYTES of each entry's (recomputed) id, for the index check
        self.known = bytearray()  # 1 where that key is known (the entry is there)

    def problem(self, error: LogCorrupted) -> None:
        self.report.problems.append(error)

    def run(self) -> None:
        if self.db.backend == "sqlite":  # the file's own b-trees
            rows = self.db.execute(f"PRAGMA quick_check({SQLITE_MESSAGES})").fetchall()
            messages = [m for (row,) in rows for m in map(str.strip, str(row).splitlines())
                        if m and m != "ok" and not m.startswith("***")]
            for message in messages[:SQLITE_MESSAGES]:
                self.problem(LogCorrupted(f"SQLite: {message}"))
        head_keys = self._head_keys()
        self._entries_and_tree(head_keys)
        self._entry_index()

    def _one(self, sql: str, *args: object) -> object:
        row = self.db.execute(sql, args).fetchone()
        return None if row is None else row[0]

    def _count(self, sql: str, *args: object) -> int:
        value = self._one(sql, *args)
        return value if isinstance(value, int) else 0

    def _head_keys(self) -> HeadKeys:
        origin = self._one("SELECT value FROM meta WHERE key = 'origin'")
        if not isinstance(origin, str):
            self.problem(LogCorrupted("the log's origin is not recorded (meta)"))
            latest = self._one("SELECT checkpoint FROM tree_heads ORDER BY tree_size DESC LIMIT 1")
            try:
                origin = parse_note(str(latest)).text.split("\n", 1)[0]
            except BadInput:
                origin = "unknown"
        return head_keys(str(origin), self.key_set)

    # --- entries, tree nodes, tree heads: one pass in log order -------------------------------------------

    def _entries_and_tree(self, keys: HeadKeys) -> None:
        size = self._count("SELECT MAX(tree_size) FROM tree_heads")
        entries_end = self._count("SELECT MAX(idx) + 1 FROM entries")
        leaves_end = self._count("SELECT MAX(idx) + 1 FROM tree_nodes WHERE level = 0")
        top = self._count("SELECT MAX(level) FROM tree_nodes")
        self.report.size = size
        if not self._count("SELECT COUNT(*) FROM tree_heads"):
            self.problem(TreeHeadCorrupted("the log has no signed tree head"))
        else:
            self._catch(lambda: check_entries_end(size, entries_end))
        n = max(size, entries_end, leaves_end)
        self.keys = bytearray(KEY_BYTES * n)
        self.known = bytearray(n)
        levels = [_StoredLevel(self.db, level) for level in range(max(top, n.bit_length()) + 1)]
        heads = (TreeHead(*row) for row in self.db.stream(_HEADS))
        entries = self.db.stream(_ENTRIES)
        frontier: list[tuple[int, int, bytes]] = []  # (level, index, hash) of the perfect subtrees, left to right
        broken: int | None = None  # the first leaf found neither in the entries nor in the tree
        gap: int | None = None  # the first entry of the gap the pass is in
        missing_heads: set[int] = set()
        head = next(heads, None)
        while head is not None and head.tree_size == 0:
            self._head(head, keys, [], broken)
            head = next(heads, None)
        row = next(entries, None)
        for i in range(n):
            if i % PROGRESS_EVERY == 0:
                self.progress("entries", i, n)
            stored_leaf = levels[0].take(i)
            if row is not None and row[0] == i:
                leaf: bytes | None = self._entry(i, row, stored_leaf, head, missing_heads)
                row = next(entries, None)
                if gap is not None:
                    self.problem(EntryMissing(f"{missing_entries(gap, i)} (the next stored entry is {i})"))
                    gap = None
            else:
                leaf = stored_leaf  # a missing entry: the tree still says what its leaf was
                if i < entries_end and gap is None:
                    gap = i
            if broken is None and leaf is None:
                broken = i
                if i < entries_end:
                    self.problem(TreeNodeCorrupted(
                        f"tree node (0, {i}) is missing too: no root from {i + 1} leaves on can be recomputed"))
            if broken is None and leaf is not None:
                self._append(frontier, i, leaf, levels)
            while head is not None and head.tree_size == i + 1:
                self._head(head, keys, frontier, broken)
                head = next(heads, None)
        self.progress("entries", n, n)
        if broken is None:
            for stored in levels:
                for index in stored.rest():
                    self.problem(TreeNodeCorrupted(f"tree node ({stored.level}, {index}) is outside the tree of "
                                                   f"{n} leaves"))

    def _entry(self, i: int, row: tuple[int, bytes, bytes, int, int], stored_leaf: bytes | None,
               head: TreeHead | None, missing_heads: set[int]) -> bytes:
        """Check entry ``i`` (its row); the leaf hash the tree should hold for it."""
        self.report.entries += 1
        stored = bytes(row[1])
        recomputed, why = statement_id(bytes(row[2]))
        self._catch(lambda: check_leaf(i, stored, recomputed, stored_leaf, why))
        if stored_leaf is None:
            self.problem(TreeNodeCorrupted(f"tree node (0, {i}) is missing"))
        # the leaf: the id the statement and the stored id agree on, or the one of them the tree holds
        if recomputed is not None and (recomputed == stored or leaf_hash(recomputed) == stored_leaf):
            truth = recomputed
        else:
            truth = stored
        self.keys[KEY_BYTES * i:KEY_BYTES * (i + 1)] = truth[:KEY_BYTES]
        self.known[i] = 1
        self._entry_head(i, int(row[3]), int(row[4]), head, missing_heads)
        return leaf_hash(truth)

    def _entry_head(self, i: int, tree_size: int, registered_at: int, head: TreeHead | None,
                    missing_heads: set[int]) -> None:
        """Entry ``i`` names (``tree_size``) the signed head that first covered it, ``head``, and was registered
        at its time."""
        if head is None:
            return  # covered by no head: check_entries_end said so
        if tree_size == head.tree_size:
            if registered_at != head.timestamp:
                self.problem(EntryMetadataCorrupted(
                    f"entry {i}: registered at {registered_at}, not at the time of tree head {tree_size} "
                    f"({head.timestamp})"))
            return
        # a head is missing when the last entry of the batch it ended names it too (rare: two reads)
        named = self._count("SELECT COUNT(*) FROM tree_heads WHERE tree_size = ?", tree_size)
        batch_end = self._one("SELECT tree_size FROM entries WHERE idx = ?", tree_size - 1)
        if tree_size > i and not named and batch_end == tree_size:
            if tree_size not in missing_heads:
                missing_heads.add(tree_size)
                self.problem(TreeHeadCorrupted(f"tree head {tree_size} is missing (entry {i} names it)"))
            return
        self.problem(EntryMetadataCorrupted(
            f"entry {i}: tree_size {tree_size} is not that of the signed head that first covered it "
            f"({head.tree_size})"))

    def _append(self, frontier: list[tuple[int, int, bytes]], index: int, leaf: bytes,
                levels: list[_StoredLevel]) -> None:
        """Append leaf ``index`` to the recomputed tree; check each node it completes against the stored one."""
        frontier.append((0, index, leaf))
        self.report.nodes += 1
        while len(frontier) >= 2 and frontier[-1][0] == frontier[-2][0]:
            level, right_index, right = frontier.pop()
            _, left_index, left = frontier.pop()
            node = (level + 1, left_index >> 1, hash_children(left, right))
            frontier.append(node)
            self._node(levels[level + 1], node[1], node[2])

    def _node(self, stored_level: _StoredLevel, index: int, recomputed: bytes) -> None:
        self.report.nodes += 1
        stored = stored_level.take(index)
        where = f"tree node ({stored_level.level}, {index})"
        if stored is None:
            self.problem(TreeNodeCorrupted(f"{where} is missing"))
        elif stored != recomputed:
            self.problem(TreeNodeCorrupted(
                f"{where}: stored hash {short(stored, recomputed)} != recomputed {short(recomputed, stored)}"))

    def _head(self, head: TreeHead, keys: HeadKeys, frontier: list[tuple[int, int, bytes]],
              broken: int | None) -> None:
        """Check a stored head when the pass has recomputed its tree (``frontier``), unless a leaf below its size
        is lost (``broken``): then only its signatures."""
        self.report.heads += 1
        try:
            check_signed_head(head, keys)
        except LogCorrupted as exc:
            self.problem(exc)
            return
        if broken is None or head.tree_size <= broken:
            root = EMPTY_ROOT
            if frontier:
                root = frontier[-1][2]
                for _, _, left in reversed(frontier[:-1]):
                    root = hash_children(left, root)
            self._catch(lambda: check_head_root(head, root, "the entries"))

    # --- the entry-id index ------------------------------------------------------------------------------

    def _entry_index(self) -> None:
        size = self.report.size
        runs = {int(r[0]): (int(r[1]), int(r[2]), r[3], r[4]) for r in self.db.execute(
            "SELECT run, level, first_idx, end_idx, filled_below FROM entry_index_runs")}
        counts = {int(run): int(count) for run, count in self.db.execute(
            "SELECT run, COUNT(*) FROM entry_index GROUP BY run")}
        for run, count in counts.items():
            if run not in runs:
                self.problem(EntryIndexCorrupted(f"index run {run} is not live but holds {count} rows"))
        self._index_runs(runs, size)
        targets = [(run, first, end, below) for run, (_, first, end, below) in runs.items() if below is not None]
        seen = bytearray(size)
        total = sum(counts.get(run, 0) for run in runs)
        previous: tuple[bytes, int] | None = None
        for key, index, run in heapq.merge(*(self._run_rows(run) for run in runs)):
            self.report.index_rows += 1
            if self.report.index_rows % PROGRESS_EVERY == 0:
                self.progress("index rows", self.report.index_rows, total)
            _, first, end, _ = runs[run]
            end = size if end is None else end
            if not 0 <= index < size:
                self.problem(EntryIndexCorrupted(f"index run {run} has a row for entry {index}, beyond the log"))
                continue
            seen[index] = min(seen[index] + 1, 255)
            if not first <= index < end:
                self.problem(EntryIndexCorrupted(
                    f"entry {index}: its index row is in run {run}, which covers entries {first}..{end - 1}"))
            if self.known[index] and key != self.keys[KEY_BYTES * index:KEY_BYTES * (index + 1)]:
                truth = bytes(self.keys[KEY_BYTES * index:KEY_BYTES * (index + 1)])
                self.problem(EntryIndexCorrupted(
                    f"entry {index}: its index key {key.hex()} is not the start of its id {truth.hex()}"))
            for target, t_first, t_end, below in targets:
                if t_first <= index < t_end and (run == target) != (key < below):
                    self.problem(EntryIndexCorrupted(
                        f"entry {index}: its index row is on the wrong side of the merge into run {target}"))
            if previous is not None and previous[0] == key and self.known[index] and self.known[previous[1]]:
                self._same_id(previous[1], index)
            previous = (key, index)
        self.progress("index rows", total, total)
        for index in range(size):
            if self.known[index] and seen[index] != 1:
                self.problem(EntryIndexCorrupted(
                    f"entry {index} is not in the entry-id index" if not seen[index]
                    else f"entry {index} has {seen[index]} rows in the entry-id index"))

    def _run_rows(self, run: int) -> Iterator[tuple[bytes, int, int]]:
        for key, index in self.db.stream("SELECT key, idx FROM entry_index WHERE run = ? ORDER BY key, idx",
                                            (run,)):
            yield bytes(key), int(index), run

    def _index_runs(self, runs: dict[int, tuple[int, int, int | None, bytes | None]], size: int) -> None:
        """Exactly one run is open, and the runs not being merged away tile the log's entries."""
        opened = [run for run, (_, _, end, _) in runs.items() if end is None]
        if len(opened) != 1:
            self.problem(EntryIndexCorrupted(f"the entry-id index has {len(opened)} open runs, not 1"))
        targets = [(run, first, end) for run, (_, first, end, below) in runs.items() if below is not None]
        tiling = sorted(
            (first, size if end is None else end, run) for run, (_, first, end, _) in runs.items()
            if not any(t != run and t_first <= first and end is not None and t_end is not None and end <= t_end
                       for t, t_first, t_end in targets)
        )
        position = 0
        for first, end, run in tiling:
            if first != position:
                self.problem(EntryIndexCorrupted(
                    f"entry-id index run {run} starts at entry {first}, where entry {position} is expected"))
            position = max(position, end)
        if position != size:
            self.problem(EntryIndexCorrupted(f"the entry-id index runs cover {position} entries of {size}"))

    def _same_id(self, first: int, second: int) -> None:
        """Two entries whose ids start alike: the same statement logged twice if the ids are equal."""
        ids = {int(i): bytes(d) for i, d in self.db.execute(
            "SELECT idx, entry_id FROM entries WHERE idx IN (?, ?)", (first, second))}
        if len(ids) == 2 and ids[first] == ids[second]:
            self.problem(EntryIdCorrupted(
                f"entry {max(first, second)} repeats entry {min(first, second)} (entry id {short(ids[first])}): "
                "the statement is logged twice"))

    def _catch(self, check: Callable[[], None]) -> None:
        try:
            check()
        except LogCorrupted as exc:
            self.problem(exc)
