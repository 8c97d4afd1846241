"""Signed statements (RFC 9943) as Tabellion accepts them: the header requirements of docs/architecture.md §2."""

from __future__ import annotations

import math
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

from schemas import cbor
from schemas import cose_labels as L
from schemas.cose_sign1 import LABEL_TYPES, CoseSign1, decode_protected_header, decode_sign1, refuse_repeated_labels
from schemas.errors import (
    InvalidHashEnvelope,
    InvalidHeader,
    MissingHeader,
    NotCoseSign1,
    UnsupportedAlgorithm,
)
from schemas.leaf import leaf_data, logged_layout

UNDERSTOOD_LABELS = frozenset(
    {L.ALG, L.CRIT, L.CONTENT_TYPE, L.KID, L.X5CHAIN, L.CWT_CLAIMS, L.PAYLOAD_HASH_ALG,
     L.PREIMAGE_CONTENT_TYPE, L.PAYLOAD_LOCATION}
)


@dataclass(frozen=True)
class SignedStatement:
    """A structurally valid signed statement. Its signature is *not* yet checked."""

    message: CoseSign1
    alg: int
    kid: bytes | None
    x5chain: tuple[bytes, ...]
    issuer: str
    subject: str
    content_type: str | int | None
    payload_hash_alg: int | None
    payload: bytes

    @property
    def issued_at(self) -> int | None:
        """The CWT ``iat`` (6) claim in whole seconds since the epoch, or ``None`` when the signer set none.

        A non-numeric ``iat`` raises ``InvalidHeader``; a fractional one is rounded down.
        """
        iat = self.message.protected[L.CWT_CLAIMS].get(L.CWT_IAT)
        if type(iat) is int:  # the usual case, and its own floor
            return iat
        if iat is None:
            return None
        if isinstance(iat, bool) or not isinstance(iat, int | float) or not math.isfinite(iat):
            raise InvalidHeader(f"CWT iat (6) {str(iat)[:40]!r} is not a NumericDate")
        return math.floor(iat)

    @property
    def kid_text(self) -> str | None:
        if self.kid is None:
            return None
        try:
            return self.kid.decode("utf-8")
        except UnicodeDecodeError:
            return None


def parse_statement(data: bytes) -> SignedStatement:
    """Parse and structurally check a signed statement; raise a precise ``BadInput`` on any defect."""
    return _parse(data)[0]


def parse_logged_statement(data: bytes) -> tuple[SignedStatement, bytes]:
    """``parse_statement(data)`` and its ``leaf_data`` (``schemas.leaf``), for a reader of the log: a statement
    laid out as it is logged is its own logged form, so its leaf is the hash of ``data`` as it is (what
    ``statement_leaf_data`` also relies on), without writing the statement out again."""
    statement, logged = _parse(data)
    return statement, sha256(data).digest() if logged else leaf_data(statement.message)


def _parse(data: bytes) -> tuple[SignedStatement, bool]:
    """The statement, and whether ``data`` is laid out as it is logged."""
    msg = _logged_message(data)
    logged = msg is not None
    if msg is None:
        msg = decode_sign1(data, "signed statement")
        refuse_repeated_labels(data, msg, "signed statement")
    hdr = msg.protected
    if msg.payload is None:
        raise NotCoseSign1("signed statement: detached payloads are not accepted; attach the payload")
    alg = _require(hdr, L.ALG, "alg (1)")
    if not isinstance(alg, int) or isinstance(alg, bool):
        raise UnsupportedAlgorithm(f"alg {alg!r} is not a registered COSE algorithm identifier")
    if alg not in L.SIGNING_ALGORITHMS:
        raise UnsupportedAlgorithm(f"alg {alg} is not accepted; use EdDSA (-8) or ES256 (-7)")
    _check_crit(hdr)
    kid, x5chain = _key_reference(hdr)
    iss, sub = _cwt_claims(hdr)
    content_type, hash_alg = _content_type(hdr, msg.payload)
    return SignedStatement(msg, alg, kid, x5chain, iss, sub, content_type, hash_alg, msg.payload), logged


def _logged_message(data: bytes) -> CoseSign1 | None:
    """``decode_sign1`` and ``refuse_repeated_labels`` in one pass for a statement laid out as it is logged
    (``schemas.leaf.logged_layout``: every statement in the log, and what the log's own signers send), ``None``
    for any other layout. Such a statement is a well-formed COSE_Sign1 whatever its byte strings hold, with an
    empty unprotected header: what is left to check is its protected header, decoded and checked for repeated
    labels as the two functions check it, with the same refusals. A property test compares the two paths on
    statements, their mutations and arbitrary bytes."""
    layout = logged_layout(data)
    if layout is None:
        return None
    p_start, p_end, payload_start, payload_end = layout
    protected_bytes = data[p_start:p_end]
    protected = cbor.decode_as_written(protected_bytes)
    if type(protected) is not dict or not LABEL_TYPES.issuperset(map(type, protected)):
        protected = decode_protected_header(protected_bytes, "signed statement")
        if protected_bytes:
            cbor.refuse_repeated_keys(protected_bytes, protected, "signed statement protected header")
    return CoseSign1(protected_bytes, protected, {}, data[payload_start:payload_end], data[-64:])


def _require(hdr: Any, label: int, name: str) -> Any:
    if label not in hdr:
        raise MissingHeader(f"the protected header has no {name}")
    return hdr[label]


def _check_crit(hdr: Any) -> None:
    if L.CRIT not in hdr:
        return
    crit = hdr[L.CRIT]
    if not isinstance(crit, list) or not crit:
        raise InvalidHeader("crit (2) must be a non-empty array of labels")
    for label in crit:
        if label not in UNDERSTOOD_LABELS:
            raise InvalidHeader(f"crit (2) names label {label!r}, which this service does not understand")
        if label not in hdr:
            raise InvalidHeader(f"crit (2) names label {label!r}, which is not in the protected header")


def _key_reference(hdr: Any) -> tuple[bytes | None, tuple[bytes, ...]]:
    kid = hdr.get(L.KID)
    chain = hdr.get(L.X5CHAIN)
    if kid is None and chain is None:
        raise MissingHeader("the protected header has neither kid (4) nor x5chain (33)")
    if kid is not None and not isinstance(kid, bytes):
        raise InvalidHeader("kid (4) must be a byte string")
    certs: tuple[bytes, ...] = ()
    if chain is not None:
        if isinstance(chain, bytes):
            certs = (chain,)
        elif isinstance(chain, list) and chain and all(isinstance(c, bytes) for c in chain):
            certs = tuple(chain)
        else:
            raise InvalidHeader("x5chain (33) must be a certificate byte string or an array of them")
    return kid, certs


def _cwt_claims(hdr: Any) -> tuple[str, str]:
    claims = _require(hdr, L.CWT_CLAIMS, "CWT claims (15)")
    if not isinstance(claims, dict):
        raise InvalidHeader("CWT claims (15) must be a map")
    iss = claims.get(L.CWT_ISS)
    sub = claims.get(L.CWT_SUB)
    if iss is None:
        raise MissingHeader("the CWT claims (15) have no iss (1)")
    if sub is None:
        raise MissingHeader("the CWT claims (15) have no sub (2)")
    if not isinstance(iss, str) or not iss:
        raise InvalidHeader("CWT iss (1) must be a non-empty text string")
    if not isinstance(sub, str) or not sub:
        raise InvalidHeader("CWT sub (2) must be a non-empty text string")
    return iss, sub


def _content_type(hdr: Any, payload: bytes) -> tuple[str | int | None, int | None]:
    hash_alg = hdr.get(L.PAYLOAD_HASH_ALG)
    if hash_alg is None:
        ctype = _require(hdr, L.CONTENT_TYPE, "content type (3) or hash envelope (258)")
        if not (isinstance(ctype, str) and ctype) and not (isinstance(ctype, int) and ctype >= 0):
            raise InvalidHeader("content type (3) must be a media type string or a CoAP content format")
        return ctype, None
    if L.CONTENT_TYPE in hdr:
        raise InvalidHashEnvelope("a hash envelope (258) must not also carry content type (3); use 259")
    if hash_alg not in L.HASH_LENGTHS:
        raise InvalidHashEnvelope(f"payload hash alg {hash_alg!r} is not SHA-256 (-16), SHA-384 or SHA-512")
    if len(payload) != L.HASH_LENGTHS[hash_alg]:
        raise InvalidHashEnvelope(
            f"payload is {len(payload)} bytes; a hash envelope with alg {hash_alg} carries "
            f"{L.HASH_LENGTHS[hash_alg]}"
        )
    pct = hdr.get(L.PREIMAGE_CONTENT_TYPE)
    if pct is not None and not isinstance(pct, str | int):
        raise InvalidHashEnvelope("preimage content type (259) must be a text string or an integer")
    loc = hdr.get(L.PAYLOAD_LOCATION)
    if loc is not None and not isinstance(loc, str):
        raise InvalidHashEnvelope("payload location (260) must be a text string")
    return pct, hash_alg
