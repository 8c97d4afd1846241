"""Readers of the log, shared by both backends: tree heads, entries, the entry-id lookup, tree nodes."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.errors import LogCorrupted
from transparency.log.entry_index import KEY_BYTES, LOOKUP, IndexRun, index_key, index_runs
from transparency.log.storage import LogDatabase


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



class LogReader:
    """Read-only queries over committed rows, on either backend. Safe to use while the sequencer writes (each query
    sees what was committed when it ran)."""

    def __init__(self, db: LogDatabase) -> None:
        self.db = db

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def latest_head(self) -> TreeHead | None:
        row = self.db.execute(
            "SELECT tree_size, root, timestamp, checkpoint, receipt_protected, receipt_signature "
            "FROM tree_heads ORDER BY tree_size DESC LIMIT 1"
        ).fetchone()
        return None if row is None else TreeHead(*row)

    def head(self, tree_size: int) -> TreeHead | None:
        row = self.db.execute(
            "SELECT tree_size, root, timestamp, checkpoint, receipt_protected, receipt_signature "
            "FROM tree_heads WHERE tree_size = ?", (tree_size,)
        ).fetchone()
        return None if row is None else TreeHead(*row)

    def entry_by_id(self, leaf_data: bytes) -> EntryRow | None:
        """The entry whose id is ``leaf_data``, through the entry-id index (one seek per live run)."""
        if len(leaf_data) < KEY_BYTES:
            return None
        row = self.db.execute(LOOKUP, (index_key(leaf_data), leaf_data)).fetchone()
        return None if row is None else EntryRow(*row)

    def index_runs(self) -> list[IndexRun]:
        """The live runs of the entry-id index, in log order."""
        return index_runs(self.db)

    def entries(self, start: int, limit: int) -> list[EntryRow]:
        rows = self.db.execute(
            "SELECT idx, entry_id, statement, tree_size, registered_at FROM entries "
            "WHERE idx >= ? ORDER BY idx LIMIT ?", (start, limit),
        ).fetchall()
        return [EntryRow(*r) for r in rows]

    def entries_end(self) -> int:
        """1 + the index of the last stored entry (0 for none): one seek, whatever the size of the log."""
        row = self.db.execute("SELECT MAX(idx) FROM entries").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def entry_ids(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """``(index, entry id)`` of the stored entries in ``[start, end)``, in log order (gaps show)."""
        rows = self.db.execute(
            "SELECT idx, entry_id FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx", (start, end)
        ).fetchall()
        return [(int(r[0]), bytes(r[1])) for r in rows]

    def leaf_datas(self, start: int, end: int) -> list[bytes]:
        rows = self.db.execute(
            "SELECT entry_id FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx", (start, end)
        ).fetchall()
        if len(rows) != end - start:
            raise LogCorrupted(f"entries {start}..{end} are not all present")
        return [bytes(r[0]) for r in rows]

    def node_hashes(self, level: int, start: int, end: int) -> list[bytes]:
        rows = self.db.execute(
            "SELECT hash FROM tree_nodes WHERE level = ? AND idx >= ? AND idx < ? ORDER BY idx",
            (level, start, end),
        ).fetchall()
        return [bytes(r[0]) for r in rows]
