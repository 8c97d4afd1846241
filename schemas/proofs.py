"""RFC 9162 proofs as values, and their RFC 9942 verifiable-data-proof (vdp) encodings."""

from __future__ import annotations

from dataclasses import dataclass
from struct import Struct
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
        """``bstr .cbor [tree-size, leaf-index, [* bstr]]`` (RFC 9942 §5.2, inclusion-proof), deterministically
        encoded; written out by hand (every receipt the log issues goes through here), equal to ``cbor.encode``
        of the list (``tests/property/test_hand_written_cbor.py``)."""
        return b"".join((b"\x83", cbor.head(0x00, self.tree_size), cbor.head(0x00, self.leaf_index),
                         cbor.head(0x80, len(self.path)), *(cbor.bstr_head(len(h)) + h for h in self.path)))

    @classmethod
    def decode(cls, data: bytes) -> InclusionProof:
        return cls(*read_inclusion_proof(data))


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
        return cls(*read_consistency_proof(data))


ProofFields = tuple[int, int, tuple[bytes, ...]]
"""A decoded proof before it becomes a value: (tree size, leaf index, path) or (size1, size2, path)."""


def read_inclusion_proof(data: Any) -> ProofFields:
    """``InclusionProof.decode`` without building the value: ``(tree_size, leaf_index, path)``."""
    return _decode_triple(data, "inclusion proof")


def read_consistency_proof(data: Any) -> ProofFields:
    """``ConsistencyProof.decode`` without building the value: ``(size1, size2, path)``."""
    return _decode_triple(data, "consistency proof")


def _decode_triple(data: Any, what: str) -> ProofFields:
    if not isinstance(data, bytes):
        raise MalformedReceipt(f"the {what} is not a byte string wrapping CBOR")
    triple = _shortest_form_triple(data)
    return triple if triple is not None else _decode_triple_strictly(data, what)


def _decode_triple_strictly(data: bytes, what: str) -> ProofFields:
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


_HASH_HEAD = b"\x58\x20"  # byte string, one-byte length 32
_HASH_ITEM = len(_HASH_HEAD) + HASH_SIZE
_PATHS = tuple(Struct(f"{len(_HASH_HEAD)}x{HASH_SIZE}s" * n) for n in range(65))  # 64: a uint64 tree's height


def _shortest_form_triple(data: bytes) -> ProofFields | None:
    return shortest_form_triple_at(data, 0, len(data))


def shortest_form_triple_at(data: bytes, start: int, end: int) -> ProofFields | None:
    """``[uint, uint, [* bstr .size 32]]`` read straight from ``data[start:end]`` (without copying it) when it
    is exactly that with definite lengths, every hash in its shortest form (``58 20``) and nothing after it,
    as the log writes it; ``None`` for anything else, which the strict decoder then reads (or refuses).

    What this accepts is a subset of what the strict decoder accepts, read the same way (a property test
    checks both, on encodings and on arbitrary bytes); it only skips building a decoder and walking the
    result, which is most of the cost of a receipt's proof.
    """
    if data[start : start + 1] != b"\x83":
        return None
    tree_size, i = cbor.read_head(data, start + 1, 0x00)
    leaf_index, i = cbor.read_head(data, i, 0x00)
    count, i = cbor.read_head(data, i, 0x80)
    if i < 0 or end - i != _HASH_ITEM * count:  # the heads ran past ``end`` when ``end - i`` is negative
        return None
    if data[i:end:_HASH_ITEM] != _HASH_HEAD[:1] * count or data[i + 1 : end : _HASH_ITEM] != _HASH_HEAD[1:] * count:
        return None
    if count < len(_PATHS):
        path: tuple[bytes, ...] = _PATHS[count].unpack_from(data, i)
    else:
        path = tuple([data[j : j + HASH_SIZE] for j in range(i + len(_HASH_HEAD), end, _HASH_ITEM)])
    return tree_size, leaf_index, path
