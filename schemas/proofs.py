"""RFC 9162 proofs as values, and their RFC 9942 verifiable-data-proof (vdp) encodings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas import cbor
from schemas.errors import MalformedCbor, MalformedReceipt

HASH_SIZE = 32


@dataclass(frozen=True)
class InclusionProof:
    """Inclusion of the leaf at 0-based ``leaf_index`` in the tree of ``tree_size`` leaves."""

    tree_size: int
    leaf_index: int
    path: tuple[bytes, ...]

    def encode(self) -> bytes:
        """``bstr .cbor [tree-size, leaf-index, [* bstr]]`` (RFC 9942 §5.2, inclusion-proof)."""
        return cbor.encode([self.tree_size, self.leaf_index, list(self.path)])

    @classmethod
    def decode(cls, data: bytes) -> InclusionProof:
        size, index, path = _decode_triple(data, "inclusion proof")
        return cls(size, index, path)


@dataclass(frozen=True)
class ConsistencyProof:
    """Consistency of the tree of ``size1`` leaves with the tree of ``size2`` leaves."""

    size1: int
    size2: int
    path: tuple[bytes, ...]

    def encode(self) -> bytes:
        return cbor.encode([self.size1, self.size2, list(self.path)])

    @classmethod
    def decode(cls, data: bytes) -> ConsistencyProof:
        size1, size2, path = _decode_triple(data, "consistency proof")
        return cls(size1, size2, path)


def _decode_triple(data: Any, what: str) -> tuple[int, int, tuple[bytes, ...]]:
    if not isinstance(data, bytes):
        raise MalformedReceipt(f"the {what} is not a byte string wrapping CBOR")
    try:
        item = cbor.decode(data, what)
    except MalformedCbor as exc:
        raise MalformedReceipt(exc.detail) from exc
    if not isinstance(item, list | tuple) or len(item) != 3:
        raise MalformedReceipt(f"the {what} is not a 3-element array")
    a, b, path = item
    for n in (a, b):
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise MalformedReceipt(f"the {what} has a size or index that is not an unsigned integer")
    if not isinstance(path, list | tuple):
        raise MalformedReceipt(f"the {what} path is not an array")
    for node in path:
        if not isinstance(node, bytes) or len(node) != HASH_SIZE:
            raise MalformedReceipt(f"the {what} path holds an element that is not a 32-byte hash")
    return a, b, tuple(path)
