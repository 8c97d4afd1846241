"""What a witness remembers: for each log it cosigned, the latest cosigned checkpoint, in one SQLite file.

The check of an ``add-checkpoint`` against the stored size and root and the write of the new checkpoint happen
in one ``BEGIN IMMEDIATE`` transaction (``transaction``), committed with ``synchronous=FULL`` before the witness
answers: two concurrent requests cannot both pass the check against the same old size (tlog-witness: checking
and persisting are atomic, or a witness could be rolled back). A trigger refuses, as a last line, any update
that lowers a log's size or changes its root at the same size.

Checkpoints the log's key signed with another root at a size the witness cosigned (forks, ``CheckpointForked``)
are kept in ``refused`` (tlog-witness allows it: they prove the log misbehaved), the latest ``MAX_REFUSED`` per
log; only the log's key can add one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from schemas.witness import origin_hash
from transparency.sqlite_files import connect

MAX_REFUSED: Final = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cosigned (
    origin TEXT PRIMARY KEY,
    origin_hash TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL CHECK (size >= 0),
    root BLOB NOT NULL CHECK (length(root) = 32),
    checkpoint TEXT NOT NULL,
    cosigned_at INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS cosigned_never_rolls_back BEFORE UPDATE ON cosigned
WHEN NEW.size < OLD.size OR (NEW.size = OLD.size AND NEW.root != OLD.root) OR NEW.origin != OLD.origin
BEGIN SELECT RAISE(ABORT, 'a witness never rolls a log back'); END;
CREATE TRIGGER IF NOT EXISTS cosigned_never_deleted BEFORE DELETE ON cosigned
BEGIN SELECT RAISE(ABORT, 'a witness never forgets a log'); END;
CREATE TABLE IF NOT EXISTS refused (
    id INTEGER PRIMARY KEY,
    origin TEXT NOT NULL,
    old_size INTEGER NOT NULL,
    checkpoint TEXT NOT NULL,
    reason TEXT NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS refused_by_origin ON refused (origin, id);
"""


@dataclass(frozen=True)
class Cosigned:
    """The latest checkpoint a witness cosigned for a log: its size, root, and the note (the log's signatures
    the witness verified and its own cosignature)."""

    origin: str
    size: int
    root: bytes
    checkpoint: str
    cosigned_at: int


@dataclass(frozen=True)
class Refused:
    origin: str
    old_size: int
    checkpoint: str
    reason: str
    received_at: int


class WitnessStore:
    def __init__(self, path: Path) -> None:
        self.conn = connect(path, synchronous="FULL")
        self.conn.executescript(_SCHEMA)
        self._lock = threading.Lock()  # one transaction at a time on this connection

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """An IMMEDIATE transaction (the write lock taken at once), committed when the block ends normally."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def latest(self, origin: str) -> Cosigned | None:
        row = self.conn.execute(
            "SELECT origin, size, root, checkpoint, cosigned_at FROM cosigned WHERE origin = ?", (origin,)
        ).fetchone()
        return _cosigned(row)

    def latest_by_hash(self, digest: str) -> Cosigned | None:
        row = self.conn.execute(
            "SELECT origin, size, root, checkpoint, cosigned_at FROM cosigned WHERE origin_hash = ?", (digest,)
        ).fetchone()
        return _cosigned(row)

    def put(self, cosigned: Cosigned) -> None:
        """Record the new latest checkpoint of a log (inside ``transaction``)."""
        self.conn.execute(
            "INSERT INTO cosigned (origin, origin_hash, size, root, checkpoint, cosigned_at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root = excluded.root, "
            "checkpoint = excluded.checkpoint, cosigned_at = excluded.cosigned_at",
            (cosigned.origin, origin_hash(cosigned.origin), cosigned.size, cosigned.root, cosigned.checkpoint,
             cosigned.cosigned_at),
        )

    def refuse(self, refused: Refused) -> None:
        """Keep a signed checkpoint the witness refused as inconsistent (its own transaction)."""
        with self.transaction():
            self.conn.execute(
                "INSERT INTO refused (origin, old_size, checkpoint, reason, received_at) VALUES (?, ?, ?, ?, ?)",
                (refused.origin, refused.old_size, refused.checkpoint, refused.reason, refused.received_at),
            )
            self.conn.execute(
                "DELETE FROM refused WHERE origin = ? AND id NOT IN "
                "(SELECT id FROM refused WHERE origin = ? ORDER BY id DESC LIMIT ?)",
                (refused.origin, refused.origin, MAX_REFUSED),
            )

    def refused(self, origin: str) -> list[Refused]:
        rows = self.conn.execute(
            "SELECT origin, old_size, checkpoint, reason, received_at FROM refused WHERE origin = ? ORDER BY id",
            (origin,),
        ).fetchall()
        return [Refused(*row) for row in rows]


def _cosigned(row: Any) -> Cosigned | None:
    """A row of ``cosigned`` (sqlite3 gives each column the type it was stored with)."""
    return None if row is None else Cosigned(*row)
