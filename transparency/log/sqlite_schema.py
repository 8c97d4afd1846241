"""The log's schema on SQLite, and its migrations (the tables are described in ``transparency.log.storage``).

Append-only: a ``BEFORE UPDATE`` and a ``BEFORE DELETE`` trigger on every table of the record aborts the
statement. ``entry_index`` refuses UPDATE (its rows are only inserted and deleted, see
``transparency.log.entry_index``).

Migrations, each in one transaction and detected from the schema itself:

1. a log written before the entry-id index (a unique index on ``entries.entry_id``): the index is built as one
   sealed run of every entry plus the open run, and the old index is dropped.
"""

from __future__ import annotations

from schemas.errors import EntryMissing
from transparency.log.entry_index import KEY_BYTES, MERGE_FANIN, SEAL_ENTRIES
from transparency.log.sqlite_storage import SqliteLogDatabase
from transparency.log.storage import APPEND_ONLY_TABLES

_TABLES = (
    "CREATE TABLE entries (idx INTEGER PRIMARY KEY, entry_id BLOB NOT NULL, statement BLOB NOT NULL, "
    "tree_size INTEGER NOT NULL, registered_at INTEGER NOT NULL)",
    "CREATE TABLE tree_nodes (level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL, "
    "PRIMARY KEY (level, idx)) WITHOUT ROWID",
    "CREATE TABLE tree_heads (tree_size INTEGER PRIMARY KEY, root BLOB NOT NULL, timestamp INTEGER NOT NULL, "
    "checkpoint TEXT NOT NULL, receipt_protected BLOB NOT NULL, receipt_signature BLOB NOT NULL)",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


def table_names(db: SqliteLogDatabase) -> set[str]:
    return {str(r[0]) for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def create_or_migrate(db: SqliteLogDatabase) -> None:
    """Create the schema of a new log, or bring an older log's up to date."""
    tables = table_names(db)
    if "entries" not in tables:
        _create(db)
    elif "entry_index" not in tables:
        _migrate_entry_index(db)


def _create(db: SqliteLogDatabase) -> None:
    db.begin()
    try:
        if "entries" in table_names(db):  # another process created it meanwhile
            db.rollback()
            return
        for ddl in _TABLES:
            db.execute(ddl)
        for table in APPEND_ONLY_TABLES:
            for op in ("UPDATE", "DELETE"):
                db.execute(
                    f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "  # noqa: S608
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )
        _create_entry_index(db, 0)
        db.commit()
    except BaseException:
        db.rollback()
        raise


def _create_entry_index(db: SqliteLogDatabase, size: int) -> None:
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


def _migrate_entry_index(db: SqliteLogDatabase) -> None:
    """A log written before the entry-id index: build it (one run of every entry) and drop the old
    unique index on ``entries.entry_id``, in one transaction."""
    db.begin()
    try:
        if "entry_index" in table_names(db):
            db.rollback()
            return
        row = db.execute("SELECT COALESCE(MAX(idx) + 1, 0), COUNT(*) FROM entries").fetchone()
        if row[0] != row[1]:
            raise EntryMissing(f"entries holds {row[1]} rows but its last index is {row[0] - 1}")
        _create_entry_index(db, int(row[0]))
        for index in db.execute("PRAGMA index_list(entries)").fetchall():
            columns = [c[2] for c in db.execute(f"PRAGMA index_info({index[1]!r})").fetchall()]
            if index[3] == "c" and columns == ["entry_id"]:
                db.execute(f"DROP INDEX {index[1]!r}")
        db.commit()
    except BaseException:
        db.rollback()
        raise
