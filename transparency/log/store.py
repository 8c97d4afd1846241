"""The log's SQLite storage (WAL) through sqlite-utils: schema, append-only triggers, connections.

Tables (all append-only, enforced by triggers; rows once written never change):
- ``entries``:    0-based leaf index, entry id (= leaf_data), the logged statement, the tree size whose
                  signed head covers it, registration time.
- ``tree_nodes``: every perfect-subtree root of the Merkle tree, ``(level, index) -> hash``; level 0 holds
                  the RFC 9162 leaf hashes. Any root or proof costs O(log n) primary-key reads.
- ``tree_heads``: one per integrated batch: size, root, time, the signed checkpoint note and the receipt
                  signature shared by every receipt issued at that size.
- ``meta``:       the log's origin and key id, written once.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from schemas.errors import LogCorrupted

APPEND_ONLY_TABLES = ("entries", "tree_nodes", "tree_heads", "meta")


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


def open_database(path: Path, *, create: bool = True) -> sqlite_utils.Database:
    """Open (and on first use create) the log database with durable WAL settings."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30.0)
    db = sqlite_utils.Database(conn)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA foreign_keys=ON")
    if create:
        _create_schema(db)
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
        db.table("entries").create_index(["entry_id"], unique=True)
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
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


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
        row = self.conn.execute(
            "SELECT idx, entry_id, statement, tree_size, registered_at FROM entries WHERE entry_id = ?",
            (leaf_data,),
        ).fetchone()
        return None if row is None else EntryRow(*row)

    def entries(self, start: int, limit: int) -> list[EntryRow]:
        rows = self.conn.execute(
            "SELECT idx, entry_id, statement, tree_size, registered_at FROM entries "
            "WHERE idx >= ? ORDER BY idx LIMIT ?", (start, limit),
        ).fetchall()
        return [EntryRow(*r) for r in rows]

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
