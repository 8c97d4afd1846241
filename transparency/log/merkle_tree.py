"""The log's Merkle tree: pymerkle 7.0.0 over the log's storage (either backend) with every perfect-subtree root
persisted.

pymerkle's stock ``SqliteTree`` keeps only leaves and recomputes subtree roots from them, so its cost grows
with the tree and stalls at powers of two. Here every perfect-subtree root is a row of ``tree_nodes``,
written in the sequencer's transaction together with the leaves, so:

- any root or RFC 9162 proof costs O(log n) primary-key reads, at any size;
- appending costs O(1) amortised writes (one leaf row plus, on average, one internal node row);
- a restart needs no rebuild: the right frontier (at most log n rows) is read back on first append;
- a proof reads all the nodes it needs in one query (the perfect subtrees under its ranges), which matters
  when every query is a round trip to a PostgreSQL server;
- the audit paths of a batch's own leaves in the tree the batch makes are computed in memory, with no read,
  from the right frontier before the batch and the batch's leaves (``appended_paths``): the sequencer builds
  the batch's receipts with them.

pymerkle hashes (RFC 9162 prefixes) and appends; the proofs are computed here, on 0-based leaf ranges.
Leaf indices are 0-based everywhere in Tabellion; pymerkle counts from 1, and its storage interface
(``_get_leaf``) is the one place here that converts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pymerkle import BaseMerkleTree

from schemas.errors import InvalidParameter, LogCorrupted
from transparency.log.storage import LogDatabase

_NODES_PER_QUERY = 200  # (level, idx) pairs per query; a proof needs at most about 2 log2(n)


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """Leaf ranges whose roots form the RFC 9162 §2.1.4.1 consistency proof, in proof order."""
    ranges: list[tuple[int, int]] = []

    def subproof(m: int, start: int, end: int, whole: bool) -> None:
        if m == end - start:
            if not whole:
                ranges.append((start, end))
            return
        k = _largest_power_of_two_below(end - start)
        if m <= k:
            subproof(m, start, start + k, whole)
            ranges.append((start + k, end))
        else:
            subproof(m - k, start + k, end, False)
            ranges.append((start, start + k))

    subproof(size1, 0, size2, True)
    return ranges


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose roots form the RFC 9162 §2.1.3.1 audit path of leaf ``index``, in proof order (PATH's
    recursion unrolled: from the root down, each split's other side, then reversed to go from the leaf up)."""
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        split = start + (1 << ((end - start - 1).bit_length() - 1))  # the largest power of two below the width
        if index < split:
            ranges.append((split, end))
            end = split
        else:
            ranges.append((start, split))
            start = split
    ranges.reverse()
    return ranges


def appended_paths(
    frontier: Sequence[tuple[int, int, bytes]], leaf_hashes: Sequence[bytes], hash_pair: Callable[[bytes, bytes], bytes]
) -> list[tuple[bytes, ...]]:
    """The RFC 9162 §2.1.3.1 audit path of each of ``leaf_hashes``, appended to a tree whose right frontier was
    ``frontier`` (``(level, index, hash)``, left to right: the perfect subtrees that make up its ``m`` leaves), in
    the tree of ``m + len(leaf_hashes)`` leaves.

    Every range on such a path is either made of appended leaves, or straddles the old size ``m`` (computed from
    its two halves), or lies wholly below ``m``: then it is the left sibling of a node on the path of leaf ``m``,
    that is one of the frontier's subtrees. So nothing is read, and each subtree root is hashed once for the whole
    batch: ``O(k + log n)`` hashes for ``k`` leaves.
    """
    first = sum(1 << level for level, _, _ in frontier)
    size = first + len(leaf_hashes)
    known: dict[tuple[int, int], bytes] = {(index << level, (index + 1) << level): digest
                                           for level, index, digest in frontier}
    known.update({(first + i, first + i + 1): digest for i, digest in enumerate(leaf_hashes)})

    def root(start: int, end: int) -> bytes:
        found = known.get((start, end))
        if found is None:
            if end <= first:
                raise LogCorrupted(f"subtree [{start}, {end}) is not on the tree's right frontier")
            k = _largest_power_of_two_below(end - start)
            found = known[start, end] = hash_pair(root(start, start + k), root(start + k, end))
        return found

    return [tuple(root(start, end) for start, end in inclusion_ranges(index, size)) for index in range(first, size)]


def _is_node(start: int, end: int) -> bool:
    width = end - start
    return width & (width - 1) == 0 and start % width == 0


class PersistentMerkleTree(BaseMerkleTree):  # type: ignore[misc]
    """An RFC 9162 (SHA-256, 0x00/0x01 prefixes) tree whose nodes live in the ``tree_nodes`` table."""

    def __init__(self, db: LogDatabase, cache_bytes: int = 64 * 1024 * 1024) -> None:
        super().__init__("sha256", threshold=64, capacity=cache_bytes)
        self.db = db
        self._frontier: list[tuple[int, int, bytes]] | None = None  # (level, index, hash), left to right

    # --- pymerkle's storage interface -------------------------------------------------------------

    def _encode_entry(self, data: bytes) -> bytes:
        return data  # entries are leaf_data; pymerkle hashes SHA-256(0x00 || leaf_data)

    def _store_leaf(self, data: bytes, digest: bytes) -> int:
        return self.append_leaf_hashes([digest])

    def _get_leaf(self, index: int) -> bytes:
        return self._node(0, index - 1)

    def _get_leaves(self, offset: int, width: int) -> list[bytes]:
        rows = self.db.execute(
            "SELECT hash FROM tree_nodes WHERE level = 0 AND idx >= ? AND idx < ? ORDER BY idx",
            (offset, offset + width),
        ).fetchall()
        if len(rows) != width:
            raise LogCorrupted(f"leaves {offset}..{offset + width} are not all stored")
        return [bytes(r[0]) for r in rows]

    def _get_size(self) -> int:
        row = self.db.execute("SELECT MAX(idx) FROM tree_nodes WHERE level = 0").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def _get_subroot_uncached(self, offset: int, width: int) -> bytes:
        level = width.bit_length() - 1
        if width != 1 << level or offset % width:
            raise LogCorrupted(f"subtree [{offset}, {offset + width}) is not an aligned perfect subtree")
        return self._node(level, offset >> level)

    # --- appends (sequencer only) -----------------------------------------------------------------

    def append_leaf_data(self, leaf_datas: Sequence[bytes]) -> int:
        """Append leaves for ``leaf_data`` values inside the caller's transaction; returns the new size."""
        return self.append_leaf_hashes([self.hash_buff(d) for d in leaf_datas])

    def append_leaf_data_with_paths(self, leaf_datas: Sequence[bytes]) -> tuple[int, list[tuple[bytes, ...]]]:
        """``append_leaf_data``, and the audit path of each appended leaf in the new tree (``appended_paths``:
        computed in memory, nothing read)."""
        leaf_hashes = [bytes(self.hash_buff(d)) for d in leaf_datas]
        frontier = list(self._load_frontier())
        size = self.append_leaf_hashes(leaf_hashes)
        return size, appended_paths(frontier, leaf_hashes, self._hash_pair)

    def _hash_pair(self, left: bytes, right: bytes) -> bytes:
        return bytes(self.hash_pair(left, right))

    def append_leaf_hashes(self, leaf_hashes: Sequence[bytes]) -> int:
        frontier = self._load_frontier()
        size = sum(1 << level for level, _, _ in frontier)
        rows: list[tuple[int, int, bytes]] = []
        for digest in leaf_hashes:
            node = (0, size, digest)
            rows.append(node)
            frontier.append(node)
            while len(frontier) >= 2 and frontier[-1][0] == frontier[-2][0]:
                right = frontier.pop()
                left = frontier.pop()
                node = (left[0] + 1, left[1] >> 1, self.hash_pair(left[2], right[2]))
                rows.append(node)
                frontier.append(node)
            size += 1
        try:
            self.db.executemany("INSERT INTO tree_nodes (level, idx, hash) VALUES (?, ?, ?)", rows)
        except BaseException:
            self._frontier = None
            raise
        return size

    def forget_uncommitted(self) -> None:
        """Call after a rolled-back transaction: the frontier is read again from committed rows."""
        self._frontier = None

    def current_root(self) -> bytes:
        frontier = self._load_frontier()
        if not frontier:
            return bytes(self.hash_empty())
        return bytes(self.hash_fold([h for _, _, h in reversed(frontier)]))

    def _load_frontier(self) -> list[tuple[int, int, bytes]]:
        if self._frontier is None:
            size = self._get_size()
            frontier = []
            offset = 0
            for level in range(size.bit_length() - 1, -1, -1):
                if size >> level & 1:
                    frontier.append((level, offset >> level, self._node(level, offset >> level)))
                    offset += 1 << level
            self._frontier = frontier
        return self._frontier

    # --- RFC 9162 proofs (0-based indices) --------------------------------------------------------

    def root(self, size: int) -> bytes:
        """The RFC 9162 root of the first ``size`` leaves (which must be stored)."""
        if size == 0:
            return bytes(self.hash_empty())
        return self._range_roots([(0, size)])[0]

    def inclusion_path(self, index: int, size: int) -> tuple[bytes, ...]:
        """RFC 9162 §2.1.3.1 audit path of leaf ``index`` (0-based) in the tree of ``size`` leaves."""
        if not 0 <= index < size:
            raise InvalidParameter(f"leaf index {index} is not below tree size {size}")
        return self._range_roots(inclusion_ranges(index, size))

    def consistency_path(self, size1: int, size2: int) -> tuple[bytes, ...]:
        """RFC 9162 §2.1.4.1 proof (never pymerkle's own format, which differs when size1 is a split)."""
        if not 0 < size1 <= size2:
            raise InvalidParameter(f"no consistency proof from size {size1} to size {size2}")
        if size2 > self._get_size():
            raise InvalidParameter(f"size {size2} is beyond the tree")
        if size1 == size2:
            return ()
        return self._range_roots(consistency_ranges(size1, size2))

    def _range_roots(self, ranges: Sequence[tuple[int, int]]) -> tuple[bytes, ...]:
        """The RFC 9162 roots of leaf ranges (each split as the RFC splits: a power of two on the left), from the
        stored perfect subtrees under them, read in one query."""
        needed: set[tuple[int, int]] = set()

        def collect(start: int, end: int) -> None:
            if _is_node(start, end):
                level = (end - start).bit_length() - 1
                needed.add((level, start >> level))
                return
            k = _largest_power_of_two_below(end - start)
            collect(start, start + k)
            collect(start + k, end)

        for start, end in ranges:
            collect(start, end)
        hashes = self._nodes(sorted(needed))

        def root(start: int, end: int) -> bytes:
            if _is_node(start, end):
                level = (end - start).bit_length() - 1
                return hashes[(level, start >> level)]
            k = _largest_power_of_two_below(end - start)
            return bytes(self.hash_pair(root(start, start + k), root(start + k, end)))

        return tuple(root(start, end) for start, end in ranges)

    def _nodes(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        found: dict[tuple[int, int], bytes] = {}
        for offset in range(0, len(keys), _NODES_PER_QUERY):
            chunk = keys[offset:offset + _NODES_PER_QUERY]
            # OR of primary-key lookups: both SQLite (MULTI-INDEX OR) and PostgreSQL (BitmapOr) seek each one;
            # SQLite scans the table for (level, idx) IN (VALUES ...)
            where = " OR ".join(["(level = ? AND idx = ?)"] * len(chunk))
            rows = self.db.execute(
                f"SELECT level, idx, hash FROM tree_nodes WHERE {where}", [n for key in chunk for n in key]  # noqa: S608
            )
            found.update({(int(level), int(idx)): bytes(digest) for level, idx, digest in rows})
        for level, index in keys:
            if (level, index) not in found:
                raise LogCorrupted(f"tree node ({level}, {index}) is missing")
        return found

    def _node(self, level: int, index: int) -> bytes:
        row = self.db.execute(
            "SELECT hash FROM tree_nodes WHERE level = ? AND idx = ?", (level, index)
        ).fetchone()
        if row is None:
            raise LogCorrupted(f"tree node ({level}, {index}) is missing")
        return bytes(row[0])
