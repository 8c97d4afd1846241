"""The log's persistent tree against a plain RFC 9162 reference, for random sizes, across restarts, on both
storage backends; the record is append-only in the database itself."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.leaf import leaf_hash
from tests.merkle_reference import consistency_proof, inclusion_path, mth
from transparency.log.merkle_tree import PersistentMerkleTree
from transparency.log.storage import LogLocation, open_database


def _leaf_data(i: int) -> bytes:
    return hashlib.sha256(i.to_bytes(8, "big")).digest()


def _append(location: LogLocation, batch: list[bytes]) -> PersistentMerkleTree:
    db = open_database(location)
    tree = PersistentMerkleTree(db)
    db.begin()
    tree.append_leaf_data(batch)
    db.commit()
    return tree


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.integers(min_value=1, max_value=70), min_size=1, max_size=6), data=st.data())
def test_roots_and_proofs_match_reference_across_restarts(
    new_log_location: Callable[[], LogLocation], batches: list[int], data: st.DataObject
) -> None:
    location = new_log_location()
    datas: list[bytes] = []
    for count in batches:
        batch = [_leaf_data(len(datas) + i) for i in range(count)]
        tree = _append(location, batch)  # a fresh connection and tree each batch: a restart
        datas.extend(batch)
        leaves = [leaf_hash(d) for d in datas]
        size = len(leaves)
        assert tree.get_size() == size
        assert tree.current_root() == mth(leaves)
        for m in data.draw(st.lists(st.integers(1, size), min_size=1, max_size=5), label="sizes"):
            assert tree.root(m) == mth(leaves[:m])
            index = data.draw(st.integers(0, m - 1), label="index")
            assert list(tree.inclusion_path(index, m)) == inclusion_path(index, leaves[:m])
            assert list(tree.consistency_path(m, size)) == consistency_proof(m, leaves)
        tree.db.close()


def test_rolled_back_append_leaves_no_trace(new_log_location: Callable[[], LogLocation]) -> None:
    tree = _append(new_log_location(), [_leaf_data(i) for i in range(5)])
    root = tree.current_root()
    tree.db.begin()
    tree.append_leaf_data([_leaf_data(i) for i in range(5, 9)])
    assert tree.current_root() != root
    tree.db.rollback()
    tree.forget_uncommitted()
    assert tree.get_size() == 5
    assert tree.current_root() == root


@pytest.mark.parametrize(
    ("table", "column"),
    [("entries", "statement"), ("tree_nodes", "hash"), ("tree_heads", "root"), ("meta", "value")],
)
@pytest.mark.parametrize("verb", ["UPDATE {t} SET {c} = {c}", "DELETE FROM {t}", "TRUNCATE {t}"])
def test_storage_is_append_only(
    new_log_location: Callable[[], LogLocation], backend: str, table: str, column: str, verb: str
) -> None:
    """The database itself refuses to change the record, whatever the client: triggers, not the code."""
    if verb.startswith("TRUNCATE") and backend == "sqlite":
        pytest.skip("SQLite has no TRUNCATE (its DELETE FROM without WHERE fires the row triggers)")
    db = _append(new_log_location(), [_leaf_data(i) for i in range(3)]).db
    db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", ("k", "v"))
    db.execute("INSERT INTO entries VALUES (?, ?, ?, ?, ?)", (0, b"\x01", b"\x02", 1, 0))
    db.execute("INSERT INTO tree_heads VALUES (?, ?, ?, ?, ?, ?)", (1, b"\x01", 0, "cp", b"\x02", b"\x03"))
    with pytest.raises((sqlite3.DatabaseError, psycopg.errors.RestrictViolation), match="append-only"):
        db.execute(verb.format(t=table, c=column))
    assert db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] > 0  # noqa: S608
