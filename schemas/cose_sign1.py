"""COSE_Sign1 (RFC 9052 §4.2) as a value: decoding, the Sig_structure, re-encoding.

Signing and verification live elsewhere (verifier, transparency); this module only knows the shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from schemas import cbor
from schemas.cose_labels import COSE_SIGN1_TAG
from schemas.errors import MalformedCbor, NotCoseSign1

Header = Mapping[int | str, Any]


@dataclass(frozen=True)
class CoseSign1:
    """A decoded COSE_Sign1. ``protected_bytes`` are kept verbatim: signatures cover them, not a re-encoding."""

    protected_bytes: bytes
    protected: Header
    unprotected: Header
    payload: bytes | None
    signature: bytes

    def sig_structure(self, detached_payload: bytes | None = None, external_aad: bytes = b"") -> bytes:
        payload = self.payload if detached_payload is None else detached_payload
        if payload is None:
            raise NotCoseSign1("the payload is detached and none was supplied")
        return sig_structure(self.protected_bytes, payload, external_aad)

    def encode(self, unprotected: Header | None = None) -> bytes:
        """Tagged, deterministic encoding; ``unprotected`` replaces the unprotected header when given."""
        uhdr = dict(self.unprotected if unprotected is None else unprotected)
        return cbor.encode(cbor.tag(COSE_SIGN1_TAG, [self.protected_bytes, uhdr, self.payload, self.signature]))


def sig_structure(protected_bytes: bytes, payload: bytes, external_aad: bytes = b"") -> bytes:
    """The bytes a COSE_Sign1 signature covers: ``["Signature1", protected, external_aad, payload]``."""
    return cbor.encode(["Signature1", protected_bytes, external_aad, payload])


def decode_sign1(data: bytes, what: str = "statement", require_tag: bool = True) -> CoseSign1:
    """Decode a COSE_Sign1, refusing anything that is not exactly one (tag 18 required by default)."""
    item = cbor.decode(data, what)
    if cbor.is_tag(item):
        if item.tag != COSE_SIGN1_TAG:
            raise NotCoseSign1(f"{what} carries CBOR tag {item.tag}, expected {COSE_SIGN1_TAG} (COSE_Sign1)")
        item = item.value
    elif require_tag:
        raise NotCoseSign1(f"{what} is not tagged; expected CBOR tag {COSE_SIGN1_TAG} (COSE_Sign1)")
    if not isinstance(item, list | tuple) or len(item) != 4:
        raise NotCoseSign1(f"{what} is not a 4-element COSE_Sign1 array")
    protected_bytes, unprotected, payload, signature = item
    return sign1_from_elements(protected_bytes, unprotected, payload, signature, what)


def sign1_from_elements(
    protected_bytes: Any, unprotected: Any, payload: Any, signature: Any, what: str = "statement"
) -> CoseSign1:
    """The COSE_Sign1 with these four elements, as decoded from its array: each must have its type, the
    protected header must decode (strictly) to a map, and every header label must be an integer or a text
    string."""
    if not isinstance(protected_bytes, bytes):
        raise NotCoseSign1(f"{what}: the protected header is not a byte string")
    if not isinstance(unprotected, dict):
        raise NotCoseSign1(f"{what}: the unprotected header is not a map")
    if payload is not None and not isinstance(payload, bytes):
        raise NotCoseSign1(f"{what}: the payload is neither a byte string nor nil")
    if not isinstance(signature, bytes):
        raise NotCoseSign1(f"{what}: the signature is not a byte string")
    protected = decode_protected_header(protected_bytes, what)
    if not LABEL_TYPES.issuperset(map(type, unprotected)):
        _refuse_labels(unprotected, what)
    return CoseSign1(protected_bytes, protected, unprotected, payload, signature)


def refuse_repeated_labels(data: bytes, message: CoseSign1, what: str = "statement") -> None:
    """Refuse ``message``, decoded from ``data``, when a map in its protected or unprotected header repeats a
    key: RFC 9052 §3 requires the labels of each header map to be unique and a message repeating one to be
    rejected as malformed; cbor2 would keep the last. Not part of ``decode_sign1``: it reads the raw bytes
    again, which the receipt-verification path, whose statement is already logged, does not pay."""
    cbor.refuse_repeated_keys(data, message.unprotected, what)
    if message.protected_bytes:
        cbor.refuse_repeated_keys(message.protected_bytes, message.protected, f"{what} protected header")


def decode_protected_header(protected_bytes: bytes, what: str = "statement") -> Header:
    """The protected header of a COSE_Sign1 (its byte string's contents): empty, or a strictly decoded map
    whose labels are integers or text strings (RFC 9052 §3)."""
    if not protected_bytes:
        return {}
    try:
        protected = cbor.decode(protected_bytes, f"{what} protected header")
    except MalformedCbor as exc:
        raise NotCoseSign1(exc.detail) from exc
    if not isinstance(protected, dict):
        raise NotCoseSign1(f"{what}: the protected header does not encode a map")
    if not LABEL_TYPES.issuperset(map(type, protected)):
        _refuse_labels(protected, what)
    return protected


def _refuse_labels(header: Header, what: str) -> None:
    for label in header:
        if not isinstance(label, int | str):
            raise NotCoseSign1(f"{what}: header label {label!r} is neither an integer nor a text string")


LABEL_TYPES = frozenset({int, bool, str})
"""The types of the labels ``isinstance(label, int | str)`` admits that the decoder builds, checked in one pass."""
