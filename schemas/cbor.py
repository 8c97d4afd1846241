"""Strict CBOR decoding and deterministic encoding, the two ways Tabellion touches raw CBOR.

The head readers and ``bstr_head`` serve the few encoders and readers written out by hand on the receipt
verification path (the leaf, the Sig_structure, receipts and proofs as the log writes them); each is
checked against cbor2 by property tests, and every reader leaves what it does not take to ``decode``.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

import cbor2
from cbor2 import CBORDecodeError, CBORDecoder, CBORTag

from schemas.errors import MalformedCbor

FrozenDict: Any = cbor2.frozendict  # the immutable map cbor2 6 builds inside tags and for map keys

_BREAK: Any = getattr(cbor2, "break_marker", object())
_DECODE_ERRORS = (CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError, EOFError)


def decode(data: bytes, what: str = "body") -> Any:
    """Decode exactly one CBOR data item; trailing bytes, truncation and garbage raise ``MalformedCbor``."""
    if type(data) is not bytes:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise MalformedCbor(f"{what} is not a byte string")
        data = bytes(data)
    stream = BytesIO(data)
    try:
        item = CBORDecoder(stream, tag_hook=_thawed_tag).decode()
    except _DECODE_ERRORS as exc:
        raise MalformedCbor(f"{what} is not well-formed CBOR: {_reason(exc)}") from exc
    end = stream.tell()  # the decoder reads one head or one string at a time, never past the item
    if end != len(data):
        raise MalformedCbor(f"{what} has {len(data) - end} trailing bytes after the CBOR item")
    if b"\xff" in data:  # a stray break is a 0xFF byte; without one there is nothing to look for
        _refuse_stray_breaks(item, what, len(data))
    return item


def _reason(error: Exception) -> str:
    """cbor2's reason, in the words Tabellion uses for the same defect whichever cbor2 found it."""
    text = str(error)
    if "break code encountered" in text:  # cbor2 6: a 0xFF where a data item was expected
        return f"a stray break (0xFF) where a data item was expected ({text})"
    return text


def _thawed_tag(tag: CBORTag, immutable: bool) -> CBORTag:
    """cbor2 6 decodes what a tag holds as immutable values (tuples, ``frozendict``), so that a tag can be a map
    key; Tabellion reads a tag's content (a COSE_Sign1 in tag 18) as it reads any other: arrays as lists, maps as
    dicts, except where the tag itself is a map key (``immutable``: it must stay hashable)."""
    return tag if immutable else CBORTag(tag.tag, _thaw(tag.value))


def _thaw(value: Any) -> Any:
    kind = type(value)
    if kind is tuple:
        return [_thaw(v) for v in value]
    if kind is FrozenDict:
        return {k: _thaw(v) for k, v in value.items()}
    return value


def first_item(data: bytes, what: str) -> bytes:
    """The bytes of the first well-formed CBOR item at the start of ``data`` (more may follow): for a value
    embedded in a byte layout, such as the credential key inside WebAuthn authenticator data."""
    stream = BytesIO(data)
    try:
        CBORDecoder(stream).decode()
    except _DECODE_ERRORS as exc:
        raise MalformedCbor(f"{what} is not well-formed CBOR: {_reason(exc)}") from exc
    item = data[: stream.tell()]
    decode(item, what)  # the strict checks of one item (stray breaks)
    return item


def _refuse_stray_breaks(item: Any, what: str, budget: int) -> None:
    """cbor2 5.x returns a lone 0xFF "break" as a value; RFC 8949 §3.2.1 makes it not well-formed (cbor2 6 refuses it
    itself; this stays for any decoder that does not).

    An explicit stack that only ever holds containers and breaks: this runs on decodes in the receipt
    verification path, so scalars are skipped without a call. Containers are every type the decoder builds
    around decoded items: arrays (lists; tuples where immutable), maps (dicts; ``FrozenDict`` as map keys),
    sets (tag 258) and unknown tags.

    Each container of a tree has its own head, so a walk of more than ``budget`` (the input's length)
    containers means value sharing (tags 28/29) made the item a graph, possibly with cycles: then the walk
    starts again, visiting each container once.
    """
    stack = [item]
    while stack:
        x = stack.pop()
        kind = type(x)
        if kind is dict or kind is FrozenDict:
            elements: Any = (*x, *x.values())
        elif kind is CBORTag:
            elements = (x.value,)
        elif kind is list or kind is tuple or kind is set or kind is frozenset:
            elements = x
        elif x is _BREAK:
            raise MalformedCbor(f"{what} holds a stray break (0xFF) outside an indefinite-length item")
        else:  # a scalar: only ever the item itself
            return
        budget -= 1
        if budget < 0:
            _refuse_stray_breaks_in_graph(item, what)
            return
        for e in elements:
            if type(e) in _CONTAINERS:
                stack.append(e)


def _refuse_stray_breaks_in_graph(item: Any, what: str) -> None:
    stack = [item]
    seen: set[int] = set()
    while stack:
        x = stack.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        kind = type(x)
        if kind is dict or kind is FrozenDict:
            elements: Any = (*x, *x.values())
        elif kind is CBORTag:
            elements = (x.value,)
        elif x is _BREAK:
            raise MalformedCbor(f"{what} holds a stray break (0xFF) outside an indefinite-length item")
        else:  # list, tuple, set, frozenset: the graph walk starts from a container
            elements = x
        stack.extend(e for e in elements if type(e) in _CONTAINERS)


_CONTAINERS: frozenset[type] = frozenset({list, tuple, dict, set, frozenset, FrozenDict, CBORTag, type(_BREAK)})


def refuse_repeated_keys(data: bytes, decoded: Any, what: str) -> None:
    """Refuse (``MalformedCbor``) when a map in ``data``, one CBOR item that ``decode`` has already accepted,
    repeats a key: cbor2 keeps the last value, so ``decoded`` (what ``decode`` built from ``data``, or the part
    of it that holds the maps) then has fewer map entries than the map heads in ``data`` declare.

    Maps inside byte strings are not looked at (a COSE protected header is checked on its own bytes). Value
    sharing (tags 28/29) is refused here: a shared map would count once in ``data`` and twice in ``decoded``.

    When ``data`` is what cbor2 writes for ``decoded`` (it shares no values and writes each map with the keys it
    holds, once each), no map in it repeats a key: that one comparison in C stands for the count in Python, which
    is made otherwise.
    """
    if _encodes_as(decoded, data):
        return
    if _declared_map_entries(data, what) != _decoded_map_entries(decoded):
        raise MalformedCbor(f"{what} holds a map that repeats a key (each key may occur only once)")


def decode_as_written(data: bytes) -> Any:
    """The item ``data`` holds when ``data`` is exactly what cbor2 writes for that item (definite lengths, the
    shortest heads, maps in the order read: what a deterministic encoder writes); ``None`` otherwise (and for
    the item null: for callers that expect a container).

    Such an item is what ``decode`` builds from ``data`` and passes ``refuse_repeated_keys``: one item, nothing
    after it, no stray break, no shared value, no map that repeats a key (the encoder writes each key it holds
    once). One C decode and one C encode; a caller given ``None`` decodes and counts in full, with the same
    refusals. A property test compares the two."""
    if type(data) is not bytes:
        return None
    try:
        value = cbor2.loads(data, tag_hook=_thawed_tag)
    except _DECODE_ERRORS:
        return None
    return value if _encodes_as(value, data) else None


def _encodes_as(value: Any, data: bytes) -> bool:
    try:
        return bool(cbor2.dumps(value) == data)
    except (TypeError, ValueError, OverflowError, RecursionError, cbor2.CBOREncodeError):
        return False


def _declared_map_entries(data: bytes, what: str) -> int:
    """The entries that the map heads of the item in ``data`` declare (indefinite maps counted as read)."""
    total = 0
    i = 0
    # Open containers, innermost last: [items still to read (-1: until a break), 1 if it is a map else 0].
    stack = [[1, 0]]
    while stack:
        frame = stack[-1]
        if frame[0] == 0:
            stack.pop()
            continue
        initial = data[i]
        i += 1
        if initial == 0xFF:  # the break closing an indefinite container
            stack.pop()
            continue
        if frame[0] > 0:
            frame[0] -= 1
        elif frame[1]:
            total += 1  # an item of an indefinite map: keys and values, halved below
        major, info = initial >> 5, initial & 0x1F
        if info < 24:
            argument: int | None = info
        elif info < 28:
            size = _ARGUMENT_SIZE[info]
            argument = int.from_bytes(data[i : i + size], "big")
            i += size
        else:
            argument = None  # indefinite length
        if major in (2, 3):
            if argument is None:
                stack.append([-1, 0])  # chunks until a break
            else:
                i += argument
        elif major == 4:
            stack.append([-1 if argument is None else argument, 0])
        elif major == 5:
            if argument is None:
                stack.append([-1, 1])
            else:
                total += 2 * argument
                stack.append([2 * argument, 0])
        elif major == 6:
            if argument in (28, 29):
                raise MalformedCbor(f"{what} uses value sharing (tags 28/29), which is not accepted here")
            stack.append([1, 0])
    return total // 2


def _decoded_map_entries(item: Any) -> int:
    total = 0
    stack = [item]
    while stack:
        x = stack.pop()
        kind = type(x)
        if kind is dict or kind is FrozenDict:
            total += len(x)
            stack.extend(x)
            stack.extend(x.values())
        elif kind is CBORTag:
            stack.append(x.value)
        elif kind is list or kind is tuple or kind is set or kind is frozenset:
            stack.extend(x)
    return total


def encode(value: Any) -> bytes:
    """Deterministic encoding (RFC 8949 §4.2.1: shortest forms, map keys sorted bytewise)."""
    return bytes(cbor2.dumps(value, canonical=True))


def bstr_head(n: int) -> bytes:
    """The head of a definite-length byte string of ``n`` bytes in its shortest form (RFC 8949 §3, §4.2.1).

    For the few encoders written out by hand on hot paths (the log leaf, the COSE Sig_structure); each is
    checked against ``encode`` by a property test.
    """
    return _SHORT_BSTR_HEADS[n] if n < 24 else head(0x40, n)


_SHORT_BSTR_HEADS = tuple(bytes((0x40 | n,)) for n in range(24))


def head(major: int, n: int) -> bytes:
    """The head of major type ``major`` (its top three bits: ``0x00`` unsigned integer, ``0x40`` byte string,
    ``0x80`` array, ``0xA0`` map) with argument ``n``, in its shortest form (RFC 8949 §3, §4.2.1); for the
    encoders written out by hand, as ``bstr_head``."""
    if n < 24:
        return bytes((major | n,))
    if n < 0x100:
        return bytes((major | 24, n))
    if n < 0x10000:
        return bytes((major | 25,)) + n.to_bytes(2, "big")
    if n < 0x100000000:
        return bytes((major | 26,)) + n.to_bytes(4, "big")
    return bytes((major | 27,)) + n.to_bytes(8, "big")


def read_head(data: bytes, i: int, major: int) -> tuple[int, int]:
    """The argument of the definite-length head of major type ``major`` (its top three bits: ``0x00`` unsigned
    integer, ``0x40`` byte string, ``0x80`` array, ...) at ``data[i]``, and the offset after the head;
    ``(-1, -1)`` when there is none there: another major type, a reserved or indefinite length, a truncated
    head, or ``i`` outside ``data`` (so calls can be chained without checking each one).

    For the readers written out by hand on hot paths, which take the shortest-form encodings the log writes
    and leave everything else to ``decode``; any argument width is read, as ``decode`` reads it.
    """
    if not 0 <= i < len(data):
        return -1, -1
    initial = data[i]
    if initial & 0xE0 != major:
        return -1, -1
    info = initial & 0x1F
    if info < 24:
        return info, i + 1
    if info > 27:
        return -1, -1
    end = i + 1 + _ARGUMENT_SIZE[info]
    if end > len(data):
        return -1, -1
    return int.from_bytes(data[i + 1 : end], "big"), end


def read_bstr(data: bytes, i: int) -> tuple[int, int]:
    """Where the content of the definite-length byte string whose head is at ``data[i]`` starts and ends;
    ``(-1, -1)`` when there is none there or it runs past the end of ``data`` (see ``read_head``)."""
    if not 0 <= i < len(data):
        return -1, -1
    info = data[i] - 0x40
    if 0 <= info < 24:
        start, end = i + 1, i + 1 + info
    elif 24 <= info < 28:
        start = i + 1 + _ARGUMENT_SIZE[info]
        end = start + int.from_bytes(data[i + 1 : start], "big")
    else:  # another major type, a reserved or indefinite length
        return -1, -1
    if end > len(data):  # also catches a truncated head: then end > start > len(data)
        return -1, -1
    return start, end


def read_shortest_bstr(data: bytes, i: int) -> tuple[int, int]:
    """``read_bstr``, and ``(-1, -1)`` also when the head is not in its shortest form (RFC 8949 §4.2.1), so
    that ``data[i:end]`` is the byte string's deterministic encoding."""
    start, end = read_bstr(data, i)
    n = end - start
    if start - i != (1 if n < 24 else 2 if n < 0x100 else 3 if n < 0x10000 else 5 if n < 0x100000000 else 9):
        return -1, -1
    return start, end


_ARGUMENT_SIZE = bytes([0] * 24 + [1, 2, 4, 8])  # bytes after the initial byte, by additional info 0..27


def tag(number: int, value: Any) -> cbor2.CBORTag:
    return cbor2.CBORTag(number, value)


def is_tag(value: Any) -> bool:
    return isinstance(value, cbor2.CBORTag)
