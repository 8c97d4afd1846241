"""The writes of an integration, shared by both backends: the statements the sequencer makes, inside the
transaction it opens (the Merkle nodes are written by ``merkle_tree``, the index rows by ``entry_index``)."""

from __future__ import annotations

from collections.abc import Sequence

from schemas.errors import TreeHeadCorrupted
from transparency.log.storage import LogDatabase


class LogWriter:
    def __init__(self, db: LogDatabase) -> None:
        self.db = db

    def record_origin(self, origin: str) -> str:
        """Record the log's origin if none is recorded yet; the recorded one (another process may have been
        first)."""
        self.db.begin()
        try:
            self.db.execute("INSERT INTO meta (key, value) VALUES ('origin', ?) ON CONFLICT DO NOTHING", (origin,))
            row = self.db.execute("SELECT value FROM meta WHERE key = 'origin'").fetchone()
            self.db.commit()
        except BaseException:
            self.db.rollback()
            raise
        return str(row[0])

    def check_size(self, size: int) -> None:
        """Inside the integration's transaction: the latest head is still of ``size`` (nobody else wrote the log
        since this sequencer read it; the write lock or the sequencer's lock makes that so, this says it)."""
        row = self.db.execute("SELECT MAX(tree_size) FROM tree_heads").fetchone()
        latest = -1 if row is None or row[0] is None else int(row[0])
        if latest != size:
            raise TreeHeadCorrupted(
                f"the log's latest tree head is of size {latest}, not {size}: another sequencer wrote it"
            )

    def append_entries(self, first: int, tree_size: int, registered_at: int,
                       entries: Sequence[tuple[bytes, bytes]]) -> None:
        """Entries ``first, first + 1, …`` (``(leaf_data, statement)``), all covered by the head of ``tree_size``."""
        self.db.executemany(
            "INSERT INTO entries (idx, entry_id, statement, tree_size, registered_at) VALUES (?, ?, ?, ?, ?)",
            [(first + i, leaf, statement, tree_size, registered_at) for i, (leaf, statement) in enumerate(entries)],
        )

    def append_head(self, tree_size: int, root: bytes, timestamp: int, checkpoint: str, receipt_protected: bytes,
                    receipt_signature: bytes) -> None:
        self.db.execute(
            "INSERT INTO tree_heads (tree_size, root, timestamp, checkpoint, receipt_protected, receipt_signature) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (tree_size, root, timestamp, checkpoint, receipt_protected, receipt_signature),
        )
