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

from schemas.errors import InclusionProofInvalid, LogCorrupted
from schemas.leaf import leaf_hash
from tests.merkle_reference import consistency_proof, inclusion_path, mth
from transparency.log.merkle_tree import PersistentMerkleTree, appended_paths
from transparency.log.storage import LogLocation, open_database
from verifier.merkle import verify_inclusion


def _leaf_data(i: int) -> bytes:
    return hashlib.sha256(i.to_bytes(8, "big")).digest()


def _append(location: LogLocation, batch: list[bytes]) -> PersistentMerkleTree:
    db = open_database(location)
    tree = PersistentMerkleTree(db)
    db.begin()
    tree.append_leaf_data(batch)
    db.commit()
    return tree


def _append_with_paths(
    location: LogLocation, batch: list[bytes]
) -> tuple[PersistentMerkleTree, list[tuple[bytes, ...]]]:
    db = open_database(location)
    tree = PersistentMerkleTree(db)
    db.begin()
    size, paths = tree.append_leaf_data_with_paths(batch)
    db.commit()
    assert size == tree.get_size()
    return tree, paths


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.integers(min_value=1, max_value=70), min_size=1, max_size=6), data=st.data())
def test_roots_and_proofs_match_reference_across_restarts(
    new_log_location: Callable[[], LogLocation], batches: list[int], data: st.DataObject
) -> None:
    location = new_log_location()
    datas: list[bytes] = []
    for count in batches:
        batch = [_leaf_data(len(datas) + i) for i in range(count)]
        tree, appended = _append_with_paths(location, batch)  # a fresh connection and tree each batch: a restart
        datas.extend(batch)
        leaves = [leaf_hash(d) for d in datas]
        size = len(leaves)
        # the batch's own paths, computed in memory as the sequencer does, are the stored tree's and the reference's
        assert [list(p) for p in appended] == [inclusion_path(i, leaves) for i in range(size - count, size)]
        assert appended == [tree.inclusion_path(i, size) for i in range(size - count, size)]
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


def _frontier(leaves: list[bytes]) -> list[tuple[int, int, bytes]]:
    """The perfect subtrees that make up ``leaves``, left to right, by the reference's MTH."""
    frontier, offset = [], 0
    for level in range(len(leaves).bit_length() - 1, -1, -1):
        if len(leaves) >> level & 1:
            frontier.append((level, offset >> level, mth(leaves[offset:offset + (1 << level)])))
            offset += 1 << level
    return frontier


def _hash_pair(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


@settings(max_examples=300, deadline=None)
@given(old=st.integers(min_value=0, max_value=300), added=st.integers(min_value=1, max_value=80))
def test_appended_paths_match_reference(old: int, added: int) -> None:
    """The batch's audit paths computed from the frontier alone are the reference's paths in the grown tree."""
    leaves = [leaf_hash(_leaf_data(i)) for i in range(old + added)]
    paths = appended_paths(_frontier(leaves[:old]), leaves[old:], _hash_pair)
    assert [list(p) for p in paths] == [inclusion_path(i, leaves) for i in range(old, old + added)]
    root = mth(leaves)
    for i, path in enumerate(paths):
        verify_inclusion(old + i, old + added, leaves[old + i], path, root)


@settings(max_examples=100, deadline=None)
@given(old=st.integers(min_value=1, max_value=300), added=st.integers(min_value=1, max_value=40), data=st.data())
def test_appended_paths_from_a_wrong_frontier_do_not_verify(old: int, added: int, data: st.DataObject) -> None:
    """A frontier hash that is not the tree's makes every path that uses it fail against the true root."""
    leaves = [leaf_hash(_leaf_data(i)) for i in range(old + added)]
    frontier = _frontier(leaves[:old])
    bad = data.draw(st.integers(0, len(frontier) - 1), label="node")
    level, index, digest = frontier[bad]
    frontier[bad] = (level, index, bytes([digest[0] ^ 1]) + digest[1:])
    paths = appended_paths(frontier, leaves[old:], _hash_pair)
    with pytest.raises(InclusionProofInvalid):  # the first appended leaf's path always uses every frontier node
        verify_inclusion(old, old + added, leaves[old], paths[0], mth(leaves))


def test_appended_paths_refuse_a_frontier_that_is_not_one() -> None:
    """Subtrees that do not make up the old tree from the left (two of one size) are refused, not trusted."""
    with pytest.raises(LogCorrupted, match="right frontier"):
        appended_paths([(0, 0, bytes(32)), (0, 1, bytes(32))], [bytes(32)], _hash_pair)
