"""Bitstring Status List v1.0 (W3C): the revocation list that an issuer publishes as a credential.

Written from the specification's data model (``BitstringStatusListCredential``, ``encodedList``) and its
Bitstring Generation and Expansion algorithms. Each credential has one bit (``statusSize`` 1): index 0 is the
left-most bit of the bitstring, i.e. the most significant bit of byte 0. The uncompressed bitstring is at least
16 KB (131,072 entries) so that a holder hides in a large enough group. ``encodedList`` is multibase base64url
without padding (prefix ``u``) of the GZIP (RFC 1952) compressed bitstring.

The GZIP member is built here byte by byte (fixed header with MTIME 0, raw DEFLATE at level 9, CRC-32 and
ISIZE), so the same revocations always give the same ``encodedList``, whatever the Python version.
Decoding accepts any conforming GZIP file, of one member or several (RFC 1952 §2.2), and stops inflating
at ``MAX_BITSTRING_BYTES``.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from typing import Any, Final

from schemas.base64url import b64url, b64url_decode
from schemas.datetimes import check_date_time_stamp
from schemas.errors import MalformedStatusList, StatusIndexOutOfRange

MIN_LENGTH: Final = 131_072
"""Minimum number of entries (bits) in a status list: 16 KB uncompressed."""
MAX_BITSTRING_BYTES: Final = 16 * 1024 * 1024
"""Largest uncompressed bitstring accepted when decoding (a GZIP bomb stops here)."""
MULTIBASE_BASE64URL: Final = "u"
VC_V2_CONTEXT: Final = "https://www.w3.org/ns/credentials/v2"
STATUS_PURPOSES: Final = ("revocation", "suspension")
"""The purposes a one-bit list here may carry (``message`` needs statusSize/statusMessages, not built here)."""

# RFC 1952 §2.3 member header: ID1 ID2, CM 8 (deflate), FLG 0, MTIME 0, XFL 2 (maximum compression), OS 3 (Unix).
_GZIP_HEADER: Final = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03"


def encode_status_list(revoked_indices: Iterable[int], length: int = MIN_LENGTH) -> str:
    """The ``encodedList`` of a ``length``-bit list in which exactly ``revoked_indices`` are set."""
    if not isinstance(length, int) or isinstance(length, bool):
        raise MalformedStatusList("the status list length must be an integer number of bits")
    if length < MIN_LENGTH:
        raise MalformedStatusList(
            f"a status list of {length} bits is shorter than the minimum of {MIN_LENGTH} (16 KB) for group privacy"
        )
    if length % 8:
        raise MalformedStatusList(f"a status list of {length} bits is not a whole number of bytes")
    if length // 8 > MAX_BITSTRING_BYTES:
        raise MalformedStatusList(f"a status list of {length} bits is larger than {MAX_BITSTRING_BYTES} bytes")
    bits = bytearray(length // 8)
    for index in revoked_indices:
        _check_index(index, length)
        bits[index // 8] |= 0x80 >> (index % 8)
    return MULTIBASE_BASE64URL + b64url(_gzip(bytes(bits)))


def decode_status_list(encoded: str) -> bytes:
    """The uncompressed bitstring of an ``encodedList``; anything but a conforming list is refused."""
    if not isinstance(encoded, str) or not encoded.startswith(MULTIBASE_BASE64URL):
        raise MalformedStatusList("encodedList must be a multibase base64url string (prefix 'u')")
    compressed = b64url_decode(encoded[1:], "encodedList", MalformedStatusList)
    bits = _gunzip(compressed)
    if len(bits) * 8 < MIN_LENGTH:
        raise MalformedStatusList(
            f"the status list has {len(bits) * 8} entries; at least {MIN_LENGTH} (16 KB) are required"
        )
    return bits


def is_set(bitstring: bytes, index: int) -> bool:
    """Whether entry ``index`` is set (index 0 is the most significant bit of byte 0)."""
    _check_index(index, len(bitstring) * 8)
    return bool(bitstring[index // 8] & (0x80 >> (index % 8)))


def status_list_credential(
    issuer: str, id: str, purpose: str, encoded_list: str, valid_from: str, *, subject_id: str | None = None
) -> dict[str, Any]:
    """An unsecured ``BitstringStatusListCredential`` (VC Data Model 2.0) publishing ``encoded_list``.

    ``id`` is the URL the list is published at (what a credential's ``statusListCredential`` names); the
    subject (the list itself) is ``subject_id``, by default ``<id>#list``. The caller secures the result
    (e.g. with an eddsa-jcs-2022 proof).
    """
    subject_id = f"{id}#list" if subject_id is None else subject_id
    for name, value in (("issuer", issuer), ("id", id), ("valid_from", valid_from), ("subject_id", subject_id)):
        if not isinstance(value, str) or not value:
            raise MalformedStatusList(f"status list credential {name} must be a non-empty string")
    if "#" in id:
        raise MalformedStatusList(f"status list credential id {id[:120]!r} must not have a fragment")
    if purpose not in STATUS_PURPOSES:
        raise MalformedStatusList(f"status purpose {purpose!r} is not one of {', '.join(STATUS_PURPOSES)}")
    check_date_time_stamp(valid_from, "validFrom", MalformedStatusList)
    decode_status_list(encoded_list)
    return {
        "@context": [VC_V2_CONTEXT],
        "id": id,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": issuer,
        "validFrom": valid_from,
        "credentialSubject": {
            "id": subject_id,
            "type": "BitstringStatusList",
            "statusPurpose": purpose,
            "encodedList": encoded_list,
        },
    }


def _check_index(index: Any, size: int) -> None:
    if not isinstance(index, int) or isinstance(index, bool):
        raise StatusIndexOutOfRange(f"a status list index must be an integer, not {type(index).__name__}")
    if not 0 <= index < size:
        raise StatusIndexOutOfRange(f"status list index {index} is outside the list of {size} entries")


def _gzip(data: bytes) -> bytes:
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = deflate.compress(data) + deflate.flush()
    return _GZIP_HEADER + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def _gunzip(data: bytes) -> bytes:
    """Every member of an RFC 1952 GZIP file (§2.2: a series of members), header and trailer checked by zlib.

    At most ``MAX_BITSTRING_BYTES`` are ever inflated, over all the members together.
    """
    out = bytearray()
    rest = data
    while True:
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += inflate.decompress(rest, MAX_BITSTRING_BYTES + 1 - len(out))
        except zlib.error as exc:
            raise MalformedStatusList(f"encodedList is not GZIP-compressed: {exc}") from exc
        if len(out) > MAX_BITSTRING_BYTES:
            raise MalformedStatusList(f"the status list expands to more than {MAX_BITSTRING_BYTES} bytes")
        if not inflate.eof:
            raise MalformedStatusList("encodedList is a truncated GZIP stream")
        rest = inflate.unused_data
        if not rest:
            return bytes(out)
