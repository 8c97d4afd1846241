"""RFC 9942 receipts (vds = 1, RFC9162_SHA256) and transparent statements, as shapes.

A receipt is a COSE_Sign1 by the log key with a detached payload: the Merkle root its inclusion proof
recomputes. Protected: alg, kid (RFC 9679 thumbprint of the log key), vds = 1, CWT claims {iss, iat}.
Unprotected: vdp (396) = {-1: [bstr .cbor inclusion-proof]} (or -2 for consistency receipts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from schemas import cbor
from schemas import cose_labels as L
from schemas.cose_sign1 import CoseSign1, Header, decode_sign1, refuse_repeated_labels
from schemas.errors import MalformedReceipt, NotCoseSign1, UnsupportedAlgorithm
from schemas.proofs import (
    ConsistencyProof,
    InclusionProof,
    ProofFields,
    read_consistency_proof,
    read_inclusion_proof,
    shortest_form_triple_at,
)


def receipt_protected_header(alg: int, kid: bytes, issuer: str, issued_at: int) -> dict[int | str, Any]:
    return {
        L.ALG: alg,
        L.KID: kid,
        L.VDS: L.VDS_RFC9162_SHA256,
        L.CWT_CLAIMS: {L.CWT_ISS: issuer, L.CWT_IAT: issued_at},
    }


@dataclass(frozen=True)
class Receipt:
    message: CoseSign1
    alg: int
    kid: bytes
    issuer: str
    issued_at: int
    inclusion: tuple[InclusionProof, ...]
    consistency: tuple[ConsistencyProof, ...]


class ReceiptFields(NamedTuple):
    """What ``parse_receipt`` checks and reads, before it builds values from it: for a verifier that only
    needs these (building the values costs a tenth of what a receipt verification spends besides the
    signature check)."""

    protected_bytes: bytes
    protected: Header
    unprotected: Header
    signature: bytes
    alg: int
    kid: bytes
    issuer: str
    issued_at: int
    inclusion: tuple[ProofFields, ...]  # (tree_size, leaf_index, path) each
    consistency: tuple[ProofFields, ...]  # (size1, size2, path) each


class InclusionReceipt(NamedTuple):
    """What verifying a receipt's inclusion proof needs (``receipt_to_verify``): the protected header's bytes
    (the signature covers them), its alg, kid, issuer and iat, the first inclusion proof and the signature."""

    protected_bytes: bytes
    alg: int
    kid: bytes
    issuer: str
    issued_at: int
    inclusion: ProofFields  # (tree_size, leaf_index, path)
    signature: bytes


def parse_receipt(data: bytes) -> Receipt:
    f = read_receipt(data)
    message = CoseSign1(f.protected_bytes, f.protected, f.unprotected, None, f.signature)
    inclusion = tuple(InclusionProof(*p) for p in f.inclusion)
    consistency = tuple(ConsistencyProof(*p) for p in f.consistency)
    return Receipt(message, f.alg, f.kid, f.issuer, f.issued_at, inclusion, consistency)


def read_receipt(data: bytes) -> ReceiptFields:
    """``parse_receipt`` without building the values: every check, every proof decoded."""
    logged = _log_receipt(data)
    if logged is None:
        return _read_receipt_strictly(data)
    r, proof = logged
    protected = receipt_protected_header(r.alg, r.kid, r.issuer, r.issued_at)
    return ReceiptFields(r.protected_bytes, protected, {L.VDP: {L.VDP_INCLUSION: [proof]}}, r.signature, r.alg,
                         r.kid, r.issuer, r.issued_at, (r.inclusion,), ())


def receipt_to_verify(data: bytes) -> InclusionReceipt:
    """What ``read_receipt`` checks and reads, as verifying the receipt's (first) inclusion proof needs it; a
    receipt without one is refused. A receipt in the log's own layout is read without building its headers."""
    logged = _log_receipt(data)
    if logged is not None:
        return logged[0]
    f = _read_receipt_strictly(data)
    if not f.inclusion:
        raise MalformedReceipt("the receipt carries no inclusion proof (vdp -1); it cannot prove inclusion")
    return InclusionReceipt(f.protected_bytes, f.alg, f.kid, f.issuer, f.issued_at, f.inclusion[0], f.signature)


def _read_receipt_strictly(data: bytes) -> ReceiptFields:
    try:
        message = decode_sign1(data, "receipt")
    except NotCoseSign1 as exc:
        raise MalformedReceipt(exc.detail) from exc
    refuse_repeated_labels(data, message, "receipt")
    if message.payload is not None:
        raise MalformedReceipt("a receipt's payload must be detached (nil)")
    hdr = message.protected
    alg = hdr.get(L.ALG)
    if type(alg) is not int or alg not in L.SIGNING_ALGORITHMS:  # an array or a map is not hashable: no TypeError
        raise UnsupportedAlgorithm(f"receipt alg {alg!r} is not EdDSA (-8) or ES256 (-7)")
    kid = hdr.get(L.KID)
    if not isinstance(kid, bytes):
        raise MalformedReceipt("the receipt has no kid (4) byte string in its protected header")
    vds = hdr.get(L.VDS)
    if vds != L.VDS_RFC9162_SHA256:
        raise MalformedReceipt(f"receipt vds (395) is {vds!r}; only RFC9162_SHA256 (1) is supported")
    claims = hdr.get(L.CWT_CLAIMS)
    if not isinstance(claims, dict) or not isinstance(claims.get(L.CWT_ISS), str):
        raise MalformedReceipt("the receipt has no CWT claims (15) with an iss (1)")
    iat = claims.get(L.CWT_IAT, 0)
    if not isinstance(iat, int):
        raise MalformedReceipt("the receipt's CWT iat (6) is not an integer")
    vdp = message.unprotected.get(L.VDP)
    if not isinstance(vdp, dict):
        raise MalformedReceipt("the receipt has no vdp (396) map in its unprotected header")
    inclusion = tuple(map(read_inclusion_proof, _proof_list(vdp, L.VDP_INCLUSION)))
    consistency = tuple(map(read_consistency_proof, _proof_list(vdp, L.VDP_CONSISTENCY)))
    if not inclusion and not consistency:
        raise MalformedReceipt("the receipt's vdp (396) holds neither inclusion (-1) nor consistency (-2) proofs")
    return ReceiptFields(message.protected_bytes, hdr, message.unprotected, message.signature, alg, kid,
                         claims[L.CWT_ISS], iat, inclusion, consistency)


def _log_receipt(data: bytes) -> tuple[InclusionReceipt, bytes] | None:
    """A receipt laid out as the log writes it, read straight from ``data``, and its encoded inclusion proof;
    ``None`` for anything else, which ``_read_receipt_strictly`` then reads (or refuses).

    The layout: ``d2 84`` (tag 18, an array of 4); the protected header as a byte string holding
    ``{1: alg, 4: kid, 15: {1: iss, 6: iat}, 395: 1}`` (``receipt_protected_header``, deterministically
    encoded) with alg -8 or -7, kid a 32-byte string (an RFC 9679 thumbprint), iss a text string, iat an
    unsigned integer; ``{396: {-1: [proof]}}`` with the proof as ``shortest_form_triple_at`` reads it; nil;
    a 64-byte signature. Definite lengths, the protected header, proof, iss and iat with heads of any
    width, nothing after. Everything ``_read_receipt_strictly`` checks holds for this layout, so only the
    layout is checked.

    What this accepts is a subset of what the strict reader accepts, read the same way (text as strict
    UTF-8, as cbor2 reads it), and gives the fields that reader gives; property tests compare the two
    (through ``read_receipt`` and ``receipt_to_verify``) on receipts, their mutations and arbitrary bytes.
    It saves decoding the receipt and its header with cbor2 and walking them for stray breaks, which
    receipts nearly always need (their hashes hold some 0xFF byte), and, for verification, building the
    headers at all.
    """
    if type(data) is not bytes or data[:2] != _TAG18_ARRAY4:
        return None
    # The heads the log writes (a protected header of 24 to 255 bytes, an issuer of fewer than 256) are read
    # in line: a call per head shows on the hot path. Any other width goes through the head readers.
    if data[2:3] == b"\x58" and len(data) > 3:
        p_start = 4
        p_end = p_start + data[3]
    else:
        p_start, p_end = cbor.read_bstr(data, 2)
    if p_start < 0 or data[p_start : p_start + 2] != _HEADER_START:
        return None
    alg = _ALG_KID_HEAD.get(data[p_start + 2 : p_start + 6])
    kid_start = p_start + 6
    kid_end = kid_start + KID_SIZE
    if alg is None or data[kid_end : kid_end + 3] != _CLAIMS_ISS:
        return None
    iss_head = data[kid_end + 3] if kid_end + 4 < len(data) else -1
    if 0x60 <= iss_head < 0x78:
        iss_start = kid_end + 4
        iss_end = iss_start + iss_head - 0x60
    elif iss_head == 0x78:
        iss_start = kid_end + 5
        iss_end = iss_start + data[kid_end + 4]
    else:
        length, iss_start = cbor.read_head(data, kid_end + 3, 0x60)
        iss_end = iss_start + length
    if iss_start < 0 or data[iss_end : iss_end + 1] != _IAT:
        return None
    iat, vds_start = cbor.read_head(data, iss_end + 1, 0x00)
    # Each read starts where the one before ended, so ending exactly at p_end keeps them all inside the header.
    if vds_start < 0 or vds_start + len(_VDS_RFC9162) != p_end or data[vds_start:p_end] != _VDS_RFC9162:
        return None
    if data[p_end : p_end + len(_ONE_INCLUSION_PROOF)] != _ONE_INCLUSION_PROOF:
        return None
    q_start, q_end = cbor.read_bstr(data, p_end + len(_ONE_INCLUSION_PROOF))
    s_start = q_end + len(_NIL_SIGNATURE_HEAD)
    if q_start < 0 or s_start + SIGNATURE_SIZE != len(data) or data[q_end:s_start] != _NIL_SIGNATURE_HEAD:
        return None
    proof = shortest_form_triple_at(data, q_start, q_end)
    if proof is None:
        return None
    try:
        issuer = data[iss_start:iss_end].decode("utf-8")
    except UnicodeDecodeError:
        return None
    receipt = InclusionReceipt(data[p_start:p_end], alg, data[kid_start:kid_end], issuer, iat, proof, data[s_start:])
    return receipt, data[q_start:q_end]


_TAG18_ARRAY4 = b"\xd2\x84"  # tag 18 (COSE_Sign1), array of 4
_HEADER_START = b"\xa4\x01"  # a map of 4; label 1 (alg)
# alg -8 or -7, then label 4 (kid) and the head of a byte string of 32
_ALG_KID_HEAD = {b"\x27\x04\x58\x20": L.ALG_EDDSA, b"\x26\x04\x58\x20": L.ALG_ES256}
_CLAIMS_ISS = b"\x0f\xa2\x01"  # label 15 (CWT claims): a map of 2; label 1 (iss)
_IAT = b"\x06"  # label 6 (iat)
_VDS_RFC9162 = b"\x19\x01\x8b\x01"  # label 395 (vds): 1 (RFC9162_SHA256)
_ONE_INCLUSION_PROOF = b"\xa1\x19\x01\x8c\xa1\x20\x81"  # {396: {-1: [ (one byte string follows)
_NIL_SIGNATURE_HEAD = b"\xf6\x58\x40"  # nil (the detached payload); a byte string of 64 (the signature)
KID_SIZE = 32
"""The log's kid: an RFC 9679 thumbprint, a SHA-256 hash."""
SIGNATURE_SIZE = 64
"""An Ed25519 signature, or an ES256 one as r || s (RFC 9053 §2.1)."""


def _proof_list(vdp: dict[Any, Any], label: int) -> list[Any] | tuple[Any, ...]:
    proofs = vdp.get(label, ())
    if not isinstance(proofs, list | tuple):
        raise MalformedReceipt(f"vdp ({label}) is not an array of proofs")
    return proofs


def transparent_statement(statement: CoseSign1, receipts: list[bytes]) -> bytes:
    """The signed statement with its receipts in unprotected label 394 (RFC 9943)."""
    return statement.encode(unprotected={L.RECEIPTS: receipts})


def receipts_of(statement: CoseSign1) -> list[bytes]:
    found = statement.unprotected.get(L.RECEIPTS)
    if not isinstance(found, list | tuple) or not all(isinstance(r, bytes) for r in found):
        raise MalformedReceipt("the statement carries no receipts array (394) of byte strings")
    return list(found)
