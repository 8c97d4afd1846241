"""The log's immutable read resources, as bytes: receipts, follower pages, consistency proofs, C2SP tlog-tiles
(hash tiles, entry bundles) and Tabellion's statement bundles (``schemas.tiles``).

One place for what the HTTP service answers and what ``--publish-dir`` writes as files
(``transparency.publish``): both read through a ``LogResources`` over their own connection. A resource is
asked *at a tree size* (the latest head's, unless the caller names one): a tile or bundle wider than that tree
has is refused with ``NotFound``; one that fits is the same bytes at any later size.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas import cbor
from schemas.errors import InvalidParameter, LogCorrupted, NotFound
from schemas.proofs import ConsistencyProof, InclusionProof
from schemas.tiles import TILE_HEIGHT, TILE_WIDTH
from transparency.log.merkle_tree import PersistentMerkleTree
from transparency.log.reader import EntryRow, LogReader, TreeHead
from transparency.receipts import assemble_receipt

HEADS_KEPT = 64


@dataclass(frozen=True)
class LoggedEntry:
    index: int
    statement: bytes
    receipt: bytes


class LogResources:
    def __init__(self, reader: LogReader, tree: PersistentMerkleTree, page_limit: int = 1000) -> None:
        self.reader = reader
        self.tree = tree
        self.page_limit = page_limit
        self._heads: dict[int, TreeHead] = {}  # the heads receipts were built with lately (they never change)

    def latest_head(self) -> TreeHead:
        head = self.reader.latest_head()
        if head is None:
            raise LogCorrupted("the log has no signed tree head")
        return head

    def _size(self, size: int | None) -> int:
        return self.latest_head().tree_size if size is None else size

    def receipt(self, index: int, tree_size: int) -> bytes:
        """The receipt of entry ``index``, issued at ``tree_size`` (the head whose batch integrated it)."""
        head = self._heads.get(tree_size)
        if head is None:
            head = self.reader.head(tree_size)
            if head is None:
                raise LogCorrupted(f"entry {index} names tree head {tree_size}, which is missing")
            if len(self._heads) >= HEADS_KEPT:
                self._heads.pop(next(iter(self._heads)))
            self._heads[tree_size] = head
        proof = InclusionProof(tree_size, index, self.tree.inclusion_path(index, tree_size))
        return assemble_receipt(head.receipt_protected, head.receipt_signature, proof)

    def logged(self, row: EntryRow) -> LoggedEntry:
        return LoggedEntry(row.index, row.statement, self.receipt(row.index, row.tree_size))

    def entries(self, start: int, limit: int, size: int | None = None) -> list[LoggedEntry]:
        """Entries in log order from ``start`` (below ``size``), each with its receipt, for followers."""
        if start < 0 or limit < 1:
            raise InvalidParameter("start must be >= 0 and limit >= 1")
        size = self._size(size)
        rows = [r for r in self.reader.entries(start, min(limit, self.page_limit)) if r.index < size]
        return [self.logged(r) for r in rows]

    def consistency(self, old: int, new: int) -> ConsistencyProof:
        size = self.latest_head().tree_size
        if not 1 <= old <= new <= size:
            raise InvalidParameter(f"need 1 <= old <= new <= {size} (the current tree size); got {old}, {new}")
        return ConsistencyProof(old, new, self.tree.consistency_path(old, new))

    def tile(self, level: int, index: int, width: int, size: int | None = None) -> bytes:
        """Hashes at tree level ``8 * level``, ``index``-th group of 256, first ``width`` of them."""
        size = self._size(size)
        available = (size >> (TILE_HEIGHT * level)) - index * TILE_WIDTH
        if available < width:
            raise NotFound(f"tile {level}/{index} has {max(available, 0)} hashes in the tree of size {size}")
        start = index * TILE_WIDTH
        hashes = self.reader.node_hashes(TILE_HEIGHT * level, start, start + width)
        if len(hashes) != width:
            raise LogCorrupted(f"tile {level}/{index} is missing stored hashes")
        return b"".join(hashes)

    def _bundle_start(self, what: str, index: int, width: int, size: int | None) -> int:
        size = self._size(size)
        start = index * TILE_WIDTH
        if size - start < width:
            raise NotFound(f"{what} {index} has {max(size - start, 0)} entries in the tree of size {size}")
        return start

    def entry_bundle(self, index: int, width: int, size: int | None = None) -> bytes:
        """Entry bundle: each entry is its ``leaf_data``, prefixed by its 2-byte big-endian length."""
        start = self._bundle_start("entry bundle", index, width, size)
        return b"".join(len(d).to_bytes(2, "big") + d for d in self.reader.leaf_datas(start, start + width))

    def statement_bundle(self, index: int, width: int, size: int | None = None) -> bytes:
        """Statement bundle: the ``width`` entries from ``256 * index`` as a follower page."""
        start = self._bundle_start("statement bundle", index, width, size)
        return encode_entries(self.bundle_entries(start, width))

    def bundle_entries(self, start: int, width: int) -> list[LoggedEntry]:
        rows = self.reader.entries(start, width)
        if len(rows) != width or any(r.index != start + i for i, r in enumerate(rows)):
            raise LogCorrupted(f"entries {start}..{start + width - 1} are not all present")
        return [self.logged(r) for r in rows]


def encode_entries(entries: list[LoggedEntry]) -> bytes:
    """Follower page (and statement bundle): CBOR array of ``[index, logged statement, receipt]``."""
    return cbor.encode([[e.index, e.statement, e.receipt] for e in entries])
