"""Strict CBOR decoding and deterministic encoding, the two ways Tabellion touches raw CBOR."""

from __future__ import annotations

import io
from typing import Any

import cbor2

from schemas.errors import MalformedCbor

_BREAK: Any = getattr(cbor2, "break_marker", object())


def decode(data: bytes, what: str = "body") -> Any:
    """Decode exactly one CBOR data item; trailing bytes, truncation and garbage raise ``MalformedCbor``."""
    if type(data) is not bytes:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise MalformedCbor(f"{what} is not a byte string")
        data = bytes(data)
    stream = io.BytesIO(data)
    try:
        item = cbor2.CBORDecoder(stream).decode()
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError, EOFError) as exc:
        raise MalformedCbor(f"{what} is not well-formed CBOR: {exc}") from exc
    if stream.tell() != len(data):
        raise MalformedCbor(f"{what} has {len(data) - stream.tell()} trailing bytes after the CBOR item")
    if b"\xff" in data:  # a stray break is a 0xFF byte; without one there is nothing to look for
        _refuse_stray_breaks(item, what)
    return item


def _refuse_stray_breaks(item: Any, what: str) -> None:
    """cbor2 5.x returns a lone 0xFF "break" as a value; RFC 8949 §3.2.1 makes it not well-formed.

    An explicit stack that only ever holds containers and breaks: this runs on decodes in the receipt
    verification path, so scalars are skipped without a call.
    """
    stack = [item]
    while stack:
        x = stack.pop()
        kind = type(x)
        if kind is dict:
            elements: Any = (*x, *x.values())
        elif kind is list or kind is tuple:
            elements = x
        elif kind is cbor2.CBORTag:
            elements = (x.value,)
        elif x is _BREAK:
            raise MalformedCbor(f"{what} holds a stray break (0xFF) outside an indefinite-length item")
        else:
            continue
        for e in elements:
            if type(e) in _CONTAINERS:
                stack.append(e)


_CONTAINERS: frozenset[type] = frozenset({list, tuple, dict, cbor2.CBORTag, type(_BREAK)})


def encode(value: Any) -> bytes:
    """Deterministic encoding (RFC 8949 §4.2.1: shortest forms, map keys sorted bytewise)."""
    return bytes(cbor2.dumps(value, canonical=True))


def tag(number: int, value: Any) -> cbor2.CBORTag:
    return cbor2.CBORTag(number, value)


def is_tag(value: Any) -> bool:
    return isinstance(value, cbor2.CBORTag)
