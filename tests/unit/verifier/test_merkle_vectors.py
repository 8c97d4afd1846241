"""RFC 9162 proof vectors of transparency-dev/merkle (tests/vectors/merkle-rfc9162, see SOURCE.txt).

Every file is one test: ``wantErr: false`` must verify, ``wantErr: true`` must be refused with the
specific error. The subtree vectors (draft-ietf-plants-merkle-tree-certs "subtree" proofs over a
leaf range ``[start, end)``) are RFC 9162 proofs exactly when ``start == 0``: a subtree inclusion proof
of ``[0, end)`` is an inclusion proof in the tree of ``end`` leaves, and a subtree consistency proof of
``[0, end)`` into ``size`` leaves is a consistency proof from ``end`` to ``size``. Those are tested as
such; the ones with ``start > 0`` are a different proof kind and are skipped with that reason, and
so are the subtree consistency vectors of an empty subtree ``[0, 0)``, which a subtree proof accepts
against any tree root, even one of a tree of 0 leaves (not an RFC 9162 notion).
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from schemas.errors import ConsistencyProofInvalid, InclusionProofInvalid
from schemas.leaf import leaf_hash
from tests.merkle_reference import consistency_proof, inclusion_path, mth
from tests.vectors import vectors_dir
from verifier.merkle import (
    EMPTY_ROOT,
    hash_children,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

MERKLE = vectors_dir() / "merkle-rfc9162"
TESTDATA = MERKLE / "testdata"


def _files(kind: str) -> list[Path]:
    files = sorted((TESTDATA / kind).rglob("*.json"))
    assert files, f"no vectors under {TESTDATA / kind}"
    return files


def _id(path: Path) -> str:
    return str(path.relative_to(TESTDATA))


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _proof(data: dict[str, Any]) -> list[bytes]:
    return [_b64(p) for p in data["proof"] or []]


def _check_inclusion(data: dict[str, Any], index: int, size: int) -> None:
    args = (index, size, _b64(data["leafHash"]), _proof(data), _b64(data["root"]))
    if data["wantErr"]:
        with pytest.raises(InclusionProofInvalid):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


def _check_consistency(data: dict[str, Any], size1: int, size2: int) -> None:
    args = (size1, size2, _b64(data["root1"]), _b64(data["root2"]), _proof(data))
    if data["wantErr"]:
        with pytest.raises(ConsistencyProofInvalid):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


@pytest.mark.parametrize("path", _files("inclusion"), ids=_id)
def test_inclusion_vector(path: Path) -> None:
    data = _load(path)
    _check_inclusion(data, data["leafIdx"], data["treeSize"])


@pytest.mark.parametrize("path", _files("consistency"), ids=_id)
def test_consistency_vector(path: Path) -> None:
    data = _load(path)
    _check_consistency(data, data["size1"], data["size2"])


@pytest.mark.parametrize("path", _files("subtreeinclusion"), ids=_id)
def test_subtree_inclusion_vector(path: Path) -> None:
    data = _load(path)
    if data["start"] != 0:
        pytest.skip(
            f"subtree [{data['start']}, {data['end']}) does not start at leaf 0: a "
            "draft-ietf-plants-merkle-tree-certs subtree proof, not an RFC 9162 inclusion proof"
        )
    _check_inclusion(data, data["leafIdx"], data["end"])


@pytest.mark.parametrize("path", _files("subtreeconsistency"), ids=_id)
def test_subtree_consistency_vector(path: Path) -> None:
    data = _load(path)
    if data["start"] != 0:
        pytest.skip(
            f"subtree [{data['start']}, {data['end']}) does not start at leaf 0: a "
            "draft-ietf-plants-merkle-tree-certs subtree proof, not an RFC 9162 consistency proof"
        )
    if data["end"] == 0:
        pytest.skip(
            "empty subtree: a subtree proof accepts it against any tree root (even of a 0-leaf tree), "
            "while RFC 9162 has no proof from the empty tree and the root of an empty tree is SHA-256()"
        )
    _check_consistency(data, data["end"], data["size"])


# --- the 8-leaf reference tree of transparency-dev/merkle (testonly/constants.go) -----------------


def _reference_tree() -> tuple[list[bytes], list[list[bytes]], list[bytes]]:
    data = _load(MERKLE / "rfc6962_reference_tree.json")
    leaves = [leaf_hash(bytes.fromhex(h)) for h in data["leaf_inputs_hex"]]
    levels = [[bytes.fromhex(h) for h in level] for level in data["node_hashes_by_level_hex"]]
    roots = [bytes.fromhex(h) for h in data["root_hashes_by_size_hex"]]
    return leaves, levels, roots


def test_reference_tree_nodes() -> None:
    leaves, levels, roots = _reference_tree()
    assert levels[0] == leaves
    for below, level in zip(levels, levels[1:], strict=False):
        assert level == [hash_children(below[2 * i], below[2 * i + 1]) for i in range(len(level))]
    assert roots[0] == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert roots[8] == levels[3][0]


def test_reference_tree_roots_and_every_proof() -> None:
    leaves, _, roots = _reference_tree()
    for size in range(1, len(leaves) + 1):
        assert mth(leaves[:size]) == roots[size]
        for index in range(size):
            path = inclusion_path(index, leaves[:size])
            assert root_from_inclusion_proof(index, size, leaves[index], path) == roots[size]
            verify_inclusion(index, size, leaves[index], path, roots[size])
        for old in range(1, size + 1):
            verify_consistency(old, size, roots[old], roots[size], consistency_proof(old, leaves[:size]))
        verify_consistency(0, 0, roots[0], roots[0], [])


# --- Go sumdb/tlog golden values ---------------------------------------------------------------------


def test_sumdb_record_hash_is_the_rfc9162_leaf_hash() -> None:
    data = _load(vectors_dir() / "golang-sumdb" / "sumdb_tlog_golden.json")
    record_hash = _b64(data["record_hash_b64"])
    assert leaf_hash(data["record"].encode()) == record_hash
    # A one-record tree: its root is the record hash, proved by an empty path.
    root = mth([record_hash])
    assert root == record_hash
    verify_inclusion(0, 1, record_hash, [], root)
    # A two-record tree built from it, checked against the reference root.
    other = leaf_hash(b"second record")
    root2 = mth([record_hash, other])
    verify_inclusion(0, 2, record_hash, [other], root2)
    verify_inclusion(1, 2, other, [record_hash], root2)
    verify_consistency(1, 2, root, root2, consistency_proof(1, [record_hash, other]))
    with pytest.raises(InclusionProofInvalid):
        verify_inclusion(1, 2, record_hash, [other], root2)
    # The golden tree note is a checkpoint body: origin, size, base64 root hash.
    origin, size, root_b64 = data["tree_note_text"].splitlines()
    assert (origin, int(size), _b64(root_b64)) == ("go.sum database tree", 123456789012, record_hash)


# --- edges not covered by the vectors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "size", "path_len"),
    [(0, 0, 0), (-1, 1, 0), (1, 1, 0), (0, 1 << 64, 64), (0, 1, 1), (0, 2, 0), (0, 2, 2), (3, 5, 1)],
)
def test_inclusion_shape_refused(index: int, size: int, path_len: int) -> None:
    with pytest.raises(InclusionProofInvalid):
        root_from_inclusion_proof(index, size, bytes(32), [bytes(32)] * path_len)


def test_largest_tree_size_accepted() -> None:
    size = (1 << 64) - 1
    node = leaf_hash(b"x")
    root = root_from_inclusion_proof(size - 1, size, node, [node] * 63)
    assert len(root) == 32
    verify_inclusion(size - 1, size, node, [node] * 63, root)
    # The first 2^63 leaves are the root's left subtree: the proof is the right subtree's hash.
    right = leaf_hash(b"y")
    verify_consistency(1 << 63, size, node, hash_children(node, right), [right])


def test_inclusion_hash_lengths_refused() -> None:
    leaves = [leaf_hash(bytes([i])) for i in range(5)]
    path = inclusion_path(2, leaves)
    root = mth(leaves)
    verify_inclusion(2, 5, leaves[2], path, root)
    with pytest.raises(InclusionProofInvalid):
        verify_inclusion(2, 5, leaves[2][:31], path, root)
    with pytest.raises(InclusionProofInvalid):
        verify_inclusion(2, 5, leaves[2], [path[0] + b"\x00", *path[1:]], root)


@pytest.mark.parametrize(
    ("size1", "size2", "path_len"),
    [(-1, 1, 0), (0, 1, 0), (0, 5, 3), (3, 2, 1), (1, 1 << 64, 64), (3, 5, 0), (3, 5, 5), (4, 8, 2)],
)
def test_consistency_shape_refused(size1: int, size2: int, path_len: int) -> None:
    with pytest.raises(ConsistencyProofInvalid):
        verify_consistency(size1, size2, bytes(32), bytes(32), [bytes(32)] * path_len)


def test_consistency_hash_lengths_and_empty_tree() -> None:
    leaves = [leaf_hash(bytes([i])) for i in range(7)]
    proof = consistency_proof(3, leaves)
    verify_consistency(3, 7, mth(leaves[:3]), mth(leaves), proof)
    with pytest.raises(ConsistencyProofInvalid):
        verify_consistency(3, 7, mth(leaves[:3]), mth(leaves), [proof[0][:16], *proof[1:]])
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    with pytest.raises(ConsistencyProofInvalid):
        verify_consistency(0, 0, bytes(32), bytes(32), [])
    with pytest.raises(ConsistencyProofInvalid):
        verify_consistency(0, 7, EMPTY_ROOT, mth(leaves), [])
