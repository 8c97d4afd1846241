"""What a log leaf is — decided here and nowhere else (docs/architecture.md §2).

``leaf_data = SHA-256(CBOR(tag18([protected_bstr, {}, payload, signature])))``: the statement with its
unprotected header emptied, deterministically encoded. The RFC 9162 leaf hash is
``SHA-256(0x00 || leaf_data)``. The hex of ``leaf_data`` is the entry id.
"""

from __future__ import annotations

from hashlib import sha256

from schemas.cbor import bstr_head, read_shortest_bstr
from schemas.cose_sign1 import CoseSign1, decode_protected_header, decode_sign1
from schemas.errors import InvalidParameter

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


def logged_statement(message: CoseSign1) -> bytes:
    """The statement exactly as it is logged: unprotected header emptied, deterministic encoding.

    Written out by hand (it is on the receipt-verification path): ``d2 84`` (tag 18, array of 4), the
    protected header, payload and signature as definite-length byte strings in their shortest form, ``a0``
    for the empty map, ``f6`` for a detached (nil) payload. Byte for byte ``message.encode(unprotected={})``,
    which a property test checks for arbitrary byte strings.
    """
    protected = message.protected_bytes
    signature = message.signature
    payload = message.payload
    if payload is None:
        payload_head, payload = _NIL, b""
    else:
        payload_head = bstr_head(len(payload))
    return b"".join((_TAG18_ARRAY4, bstr_head(len(protected)), protected, _EMPTY_MAP, payload_head, payload,
                     bstr_head(len(signature)), signature))


_TAG18_ARRAY4 = b"\xd2\x84"
_EMPTY_MAP = b"\xa0"
_NIL = b"\xf6"
_SIGNATURE_HEAD = b"\x58\x40"  # a byte string of 64
_SIGNATURE_ITEM = len(_SIGNATURE_HEAD) + 64


def leaf_data(message: CoseSign1) -> bytes:
    return sha256(logged_statement(message)).digest()


def statement_leaf_data(data: bytes, what: str = "signed statement") -> bytes:
    """``leaf_data(decode_sign1(data, what))``: the leaf of a signed statement given as bytes, refused as
    ``decode_sign1`` refuses it.

    A statement laid out as it is logged (``logged_statement``: tag 18, shortest-form heads, an empty
    unprotected header, nothing after) with a 64-byte signature (EdDSA's, or ES256's r || s: the only
    algorithms the log registers) is its own logged form, so its leaf is the hash of ``data``; what is left
    to check is its protected header, decoded as ``decode_sign1`` decodes it. Any other layout (a
    transparent statement with its receipts, say) is decoded in full. A property test compares the two on
    statements, their mutations and arbitrary bytes.
    """
    layout = _layout(data)
    if layout is not None:
        decode_protected_header(data[layout[0] : layout[1]], what)
        return sha256(data).digest()
    return leaf_data(decode_sign1(data, what))


def logged_layout(data: bytes) -> tuple[int, int, int, int] | None:
    """Where the protected header's and the payload's contents lie in ``data`` (``(p_start, p_end, payload_start,
    payload_end)``) when ``data`` is a statement laid out as it is logged (``logged_statement``) with an attached
    payload and a 64-byte signature; ``None`` for any other layout. Such a statement's unprotected header is the
    empty map and its signature the last 64 bytes; nothing in it is checked here, not even its protected header."""
    layout = _layout(data)
    if layout is None or layout[2] < 0:
        return None
    return layout


def _layout(data: bytes) -> tuple[int, int, int, int] | None:
    """``logged_layout``, and for a detached (nil) payload ``(p_start, p_end, -1, payload_end)``."""
    if type(data) is bytes and data[:2] == _TAG18_ARRAY4:
        if data[2:3] == b"\x58" and len(data) > 3 and data[3] >= 24:  # the usual head, read in line
            p_start = 4
            p_end = p_start + data[3]
        else:
            p_start, p_end = read_shortest_bstr(data, 2)
        if p_start > 0 and data[p_end : p_end + 1] == _EMPTY_MAP:
            head = data[p_end + 1] if p_end + 1 < len(data) else -1
            if head == 0xF6:  # nil: a detached payload
                payload_start, payload_end = -1, p_end + 2
            elif head == 0x59 and p_end + 3 < len(data) and data[p_end + 2]:  # 256 to 65,535 bytes, read in line
                payload_start = p_end + 4
                payload_end = payload_start + (data[p_end + 2] << 8 | data[p_end + 3])
            else:
                payload_start, payload_end = read_shortest_bstr(data, p_end + 1)
            if payload_end > 0 and payload_end + _SIGNATURE_ITEM == len(data) and (
                data[payload_end : payload_end + 2] == _SIGNATURE_HEAD
            ):
                return p_start, p_end, payload_start, payload_end
    return None


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 §2.1.1 leaf hash of ``leaf_data``: ``SHA-256(0x00 || data)``, continuing a copy of the state
    after the prefix (cheaper than starting a SHA-256 with OpenSSL 3)."""
    h = _LEAF_STATE.copy()
    h.update(data)
    return h.digest()


_LEAF_STATE = sha256(LEAF_PREFIX)


def entry_id(data: bytes) -> str:
    return data.hex()


def parse_entry_id(text: str) -> bytes:
    """The ``leaf_data`` an entry id names; anything but 64 lower-case hex digits is refused."""
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise InvalidParameter(f"entry id {text[:80]!r} is not 64 lower-case hex digits")
    return bytes.fromhex(text)
