"""Tampering with a stopped log's SQLite file, as an attacker or a failing disk would: plain ``sqlite3``, the
append-only triggers dropped first. One function per class of tampering the log must detect (``tabellion
fsck``, and its start for what the start loads).

    build_log(data_dir, 60)                  # a real log, written by the sequencer (no server)
    with tampered(data_dir / "log.sqlite") as db:
        flip_entry_id(db, 20)
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from schemas.cose_sign1 import decode_sign1
from schemas.leaf import leaf_data, logged_statement
from tests.unit.transparency.index_world import integrate, open_sequencer
from transparency.client import generate_key, sign_statement

TRIGGERED = ("entries", "tree_nodes", "tree_heads", "meta")
BATCHES = (1, 3, 2, 5, 1, 4, 7, 2, 6, 1)  # sizes of the batches, over and over: many heads, seals and merges


def statements(count: int, salt: str = "") -> list[tuple[bytes, bytes]]:
    """``(leaf_data, logged statement)`` of ``count`` real signed statements."""
    key = generate_key("ed25519")
    signed = [decode_sign1(sign_statement(key, b'{"n":%d}' % i, subject=f"urn:example:{salt}{i}",
                                          content_type="application/json")) for i in range(count)]
    return [(leaf_data(m), logged_statement(m)) for m in signed]


def build_log(directory: Path, count: int, database: str | None = None) -> Path:
    """A log of ``count`` real statements in ``directory`` (its data folder; or in the PostgreSQL ``database``),
    written by the sequencer in batches of varying sizes, with an entry-id index that seals a run every 4
    entries and merges 2 at a time (so some entries are out of the writer's recent window, and a merge may be
    under way)."""
    sequencer = open_sequencer(directory, seal=4, fanin=2, database=database)
    items = statements(count)
    position = 0
    while position < count:
        for size in BATCHES:
            integrate(sequencer, items[position:position + size])
            position += size
            if position >= count:
                break
    sequencer.stop()
    return directory


def copy_log(source: Path, target: Path) -> Path:
    """A copy of a stopped log's data folder, to tamper with."""
    shutil.copytree(source, target)
    return target


@contextmanager
def tampered(db_path: Path) -> Iterator[sqlite3.Connection]:
    """A connection to the log file with its append-only triggers dropped; committed on leaving."""
    with closing(sqlite3.connect(str(db_path))) as db:
        for table in TRIGGERED:
            for op in ("update", "delete"):
                db.execute(f"DROP TRIGGER IF EXISTS {table}_no_{op}")
        yield db
        db.commit()


def _flip(data: bytes, at: int) -> bytes:
    flipped = bytearray(data)
    flipped[at] ^= 0x01
    return bytes(flipped)


def flip_statement_byte(db: sqlite3.Connection, index: int) -> None:
    """A byte in the middle of entry ``index``'s logged statement (its payload or signature)."""
    (statement,) = db.execute("SELECT statement FROM entries WHERE idx = ?", (index,)).fetchone()
    db.execute("UPDATE entries SET statement = ? WHERE idx = ?", (_flip(statement, len(statement) // 2), index))


def flip_entry_id(db: sqlite3.Connection, index: int, at: int = 20) -> None:
    """Byte ``at`` of entry ``index``'s stored id (beyond the index key's 8 bytes by default)."""
    (entry_id,) = db.execute("SELECT entry_id FROM entries WHERE idx = ?", (index,)).fetchone()
    db.execute("UPDATE entries SET entry_id = ? WHERE idx = ?", (_flip(entry_id, at), index))


def delete_entry(db: sqlite3.Connection, index: int) -> None:
    db.execute("DELETE FROM entries WHERE idx = ?", (index,))


def truncate_entries(db: sqlite3.Connection, keep: int) -> None:
    """Entries from ``keep`` on are gone; the tree and the signed heads still cover them."""
    db.execute("DELETE FROM entries WHERE idx >= ?", (keep,))


def head_sizes(db: sqlite3.Connection) -> list[int]:
    return [int(r[0]) for r in db.execute("SELECT tree_size FROM tree_heads ORDER BY tree_size")]


def flip_head_root(db: sqlite3.Connection, size: int) -> None:
    (root,) = db.execute("SELECT root FROM tree_heads WHERE tree_size = ?", (size,)).fetchone()
    db.execute("UPDATE tree_heads SET root = ? WHERE tree_size = ?", (_flip(root, 0), size))


def flip_checkpoint_signature(db: sqlite3.Connection, size: int) -> None:
    """A base64 character of the checkpoint's signature line (its key id left alone)."""
    (checkpoint,) = db.execute("SELECT checkpoint FROM tree_heads WHERE tree_size = ?", (size,)).fetchone()
    at = checkpoint.rindex(" ") + 12
    swapped = "B" if checkpoint[at] == "A" else "A"
    db.execute("UPDATE tree_heads SET checkpoint = ? WHERE tree_size = ?",
               (checkpoint[:at] + swapped + checkpoint[at + 1:], size))


def flip_receipt_signature(db: sqlite3.Connection, size: int) -> None:
    (signature,) = db.execute("SELECT receipt_signature FROM tree_heads WHERE tree_size = ?", (size,)).fetchone()
    db.execute("UPDATE tree_heads SET receipt_signature = ? WHERE tree_size = ?", (_flip(signature, 5), size))


def flip_tree_node(db: sqlite3.Connection, level: int, index: int) -> None:
    (node,) = db.execute("SELECT hash FROM tree_nodes WHERE level = ? AND idx = ?", (level, index)).fetchone()
    db.execute("UPDATE tree_nodes SET hash = ? WHERE level = ? AND idx = ?", (_flip(node, 0), level, index))


def delete_index_row(db: sqlite3.Connection, index: int) -> None:
    db.execute("DELETE FROM entry_index WHERE idx = ?", (index,))


def shift_registered_at(db: sqlite3.Connection, index: int) -> None:
    db.execute("UPDATE entries SET registered_at = registered_at + 1 WHERE idx = ?", (index,))
