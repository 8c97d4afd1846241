"""The log's persistent tree against a plain RFC 9162 reference, for random sizes, across restarts."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.leaf import leaf_hash
from tests.merkle_reference import consistency_proof, inclusion_path, mth
from transparency.log.merkle_tree import PersistentMerkleTree
from transparency.log.store import open_database


def _leaf_data(i: int) -> bytes:
    return hashlib.sha256(i.to_bytes(8, "big")).digest()


def _append(path: Path, batch: list[bytes]) -> PersistentMerkleTree:
    db = open_database(path)
    tree = PersistentMerkleTree(db.conn)
    db.execute("BEGIN IMMEDIATE")
    tree.append_leaf_data(batch)
    db.execute("COMMIT")
    return tree


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.integers(min_value=1, max_value=70), min_size=1, max_size=6), data=st.data())
def test_roots_and_proofs_match_reference_across_restarts(
    tmp_path_factory: object, batches: list[int], data: st.DataObject
) -> None:
    path = Path(tmp_path_factory.mktemp("tree")) / "log.sqlite"  # type: ignore[attr-defined]
    datas: list[bytes] = []
    for count in batches:
        batch = [_leaf_data(len(datas) + i) for i in range(count)]
        tree = _append(path, batch)  # a fresh connection and tree each batch: a restart
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
        tree.conn.close()


def test_rolled_back_append_leaves_no_trace(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite"
    tree = _append(path, [_leaf_data(i) for i in range(5)])
    root = tree.current_root()
    tree.conn.execute("BEGIN IMMEDIATE")
    tree.append_leaf_data([_leaf_data(i) for i in range(5, 9)])
    assert tree.current_root() != root
    tree.conn.execute("ROLLBACK")
    tree.forget_uncommitted()
    assert tree.get_size() == 5
    assert tree.current_root() == root


@pytest.mark.parametrize(
    ("table", "column"),
    [("entries", "statement"), ("tree_nodes", "hash"), ("tree_heads", "root"), ("meta", "value")],
)
@pytest.mark.parametrize("verb", ["UPDATE {t} SET {c} = {c}", "DELETE FROM {t}"])
def test_storage_is_append_only(tmp_path: Path, table: str, column: str, verb: str) -> None:
    tree = _append(tmp_path / "log.sqlite", [_leaf_data(i) for i in range(3)])
    tree.conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
    tree.conn.execute("INSERT INTO entries VALUES (0, x'01', x'02', 1, 0)")
    tree.conn.execute("INSERT INTO tree_heads VALUES (1, x'01', 0, 'cp', x'02', x'03')")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        tree.conn.execute(verb.format(t=table, c=column))
