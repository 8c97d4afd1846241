"""CBOR heads written by hand, of any argument width (not only the shortest), to feed the strict readers."""

from __future__ import annotations


def head_of_width(major: int, value: int, width: int) -> bytes:
    """A head of ``major`` type carrying ``value`` with ``width`` argument bytes (0: in the initial byte)."""
    if width == 0:
        return bytes((major | value,))
    info = {1: 24, 2: 25, 4: 26, 8: 27}[width]
    return bytes((major | info,)) + value.to_bytes(width, "big")
