"""Strict CBOR decoding and deterministic encoding, the two ways Tabellion touches raw CBOR."""

from __future__ import annotations

import io
from typing import Any

import cbor2

from schemas.errors import MalformedCbor

_BREAK: Any = getattr(cbor2, "break_marker", object())


def decode(data: bytes, what: str = "body") -> Any:
    """Decode exactly one CBOR data item; trailing bytes, truncation and garbage raise ``MalformedCbor``."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedCbor(f"{what} is not a byte string")
    stream = io.BytesIO(bytes(data))
    try:
        item = cbor2.CBORDecoder(stream).decode()
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError, EOFError) as exc:
        raise MalformedCbor(f"{what} is not well-formed CBOR: {exc}") from exc
    if stream.tell() != len(data):
        raise MalformedCbor(f"{what} has {len(data) - stream.tell()} trailing bytes after the CBOR item")
    _refuse_stray_breaks(item, what)
    return item


def _refuse_stray_breaks(item: Any, what: str) -> None:
    """cbor2 5.x returns a lone 0xFF "break" as a value; RFC 8949 §3.2.1 makes it not well-formed."""
    if item is _BREAK:
        raise MalformedCbor(f"{what} holds a stray break (0xFF) outside an indefinite-length item")
    if isinstance(item, list | tuple):
        for element in item:
            _refuse_stray_breaks(element, what)
    elif isinstance(item, dict):
        for key, value in item.items():
            _refuse_stray_breaks(key, what)
            _refuse_stray_breaks(value, what)
    elif isinstance(item, cbor2.CBORTag):
        _refuse_stray_breaks(item.value, what)


def encode(value: Any) -> bytes:
    """Deterministic encoding (RFC 8949 §4.2.1: shortest forms, map keys sorted bytewise)."""
    return bytes(cbor2.dumps(value, canonical=True))


def tag(number: int, value: Any) -> cbor2.CBORTag:
    return cbor2.CBORTag(number, value)


def is_tag(value: Any) -> bool:
    return isinstance(value, cbor2.CBORTag)
