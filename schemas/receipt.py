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
from schemas.cose_sign1 import CoseSign1, Header, decode_sign1, sign1_from_elements
from schemas.errors import MalformedReceipt, NotCoseSign1, UnsupportedAlgorithm
from schemas.proofs import ConsistencyProof, InclusionProof, ProofFields, read_consistency_proof, read_inclusion_proof


def receipt_protected_header(alg: int, kid: bytes, issuer: str, issued_at: int) -> dict[int, Any]:
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


def parse_receipt(data: bytes) -> Receipt:
    f = read_receipt(data)
    message = CoseSign1(f.protected_bytes, f.protected, f.unprotected, None, f.signature)
    inclusion = tuple(InclusionProof(*p) for p in f.inclusion)
    consistency = tuple(ConsistencyProof(*p) for p in f.consistency)
    return Receipt(message, f.alg, f.kid, f.issuer, f.issued_at, inclusion, consistency)


def read_receipt(data: bytes) -> ReceiptFields:
    """``parse_receipt`` without building the values: every check, every proof decoded."""
    try:
        elements = _shortest_form_receipt(data) if type(data) is bytes else None
        if elements is None:
            elements = _elements(decode_sign1(data, "receipt"))
    except NotCoseSign1 as exc:
        raise MalformedReceipt(exc.detail) from exc
    protected_bytes, hdr, unprotected, payload, signature = elements
    if payload is not None:
        raise MalformedReceipt("a receipt's payload must be detached (nil)")
    alg = hdr.get(L.ALG)
    if alg not in L.SIGNING_ALGORITHMS:
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
    vdp = unprotected.get(L.VDP)
    if not isinstance(vdp, dict):
        raise MalformedReceipt("the receipt has no vdp (396) map in its unprotected header")
    inclusion = tuple(map(read_inclusion_proof, _proof_list(vdp, L.VDP_INCLUSION)))
    consistency = tuple(map(read_consistency_proof, _proof_list(vdp, L.VDP_CONSISTENCY)))
    if not inclusion and not consistency:
        raise MalformedReceipt("the receipt's vdp (396) holds neither inclusion (-1) nor consistency (-2) proofs")
    return ReceiptFields(protected_bytes, hdr, unprotected, signature, alg, kid, claims[L.CWT_ISS], iat, inclusion,
                         consistency)


_Elements = tuple[bytes, Header, Header, bytes | None, bytes]  # a COSE_Sign1's, its protected header decoded


def _elements(msg: CoseSign1) -> _Elements:
    return msg.protected_bytes, msg.protected, msg.unprotected, msg.payload, msg.signature


def _shortest_form_receipt(data: bytes) -> _Elements | None:
    """The elements of a receipt laid out as the log writes it, read straight from ``data``: ``d2 84``, the
    protected header as a byte string, ``{396: {-1: [proof]}}`` in its deterministic encoding, nil, the
    signature, with definite lengths (heads of any width) and nothing after. ``None`` for anything else,
    which ``decode_sign1`` then reads (or refuses).

    What this accepts is a subset of what ``decode_sign1`` accepts, read and checked the same way (the
    protected header by ``_shortest_form_protected_header`` or else as ``decode_sign1`` does, with
    ``sign1_from_elements``), and given as the elements of the COSE_Sign1 ``decode_sign1`` would build;
    property tests compare the two on receipts and on arbitrary bytes. It saves decoding the receipt and
    its header with cbor2 and walking them for stray breaks, which receipts nearly always need: their
    hashes hold some 0xFF byte.
    """
    if data[:2] != _TAG18_ARRAY4:
        return None
    p_start, p_end = cbor.read_bstr(data, 2)
    if p_start < 0 or data[p_end : p_end + len(_ONE_INCLUSION_PROOF)] != _ONE_INCLUSION_PROOF:
        return None
    q_start, q_end = cbor.read_bstr(data, p_end + len(_ONE_INCLUSION_PROOF))
    if q_start < 0 or data[q_end : q_end + 1] != _NIL:
        return None
    s_start, s_end = cbor.read_bstr(data, q_end + 1)
    if s_end != len(data):
        return None
    protected_bytes = data[p_start:p_end]
    unprotected: dict[int | str, Any] = {L.VDP: {L.VDP_INCLUSION: [data[q_start:q_end]]}}
    protected = _shortest_form_protected_header(protected_bytes)
    if protected is None:
        return _elements(sign1_from_elements(protected_bytes, unprotected, None, data[s_start:s_end], "receipt"))
    return protected_bytes, protected, unprotected, None, data[s_start:s_end]


def _shortest_form_protected_header(data: bytes) -> dict[int | str, Any] | None:
    """A receipt's protected header laid out as the log writes it (``receipt_protected_header``,
    deterministically encoded), read straight from ``data``: ``{1: alg, 4: kid, 15: {1: iss, 6: iat},
    395: 1}`` with alg -8 or -7, kid a byte string, iss a text string, iat an unsigned integer, definite
    lengths (heads of any width), nothing after. ``None`` for anything else, which the strict decoder
    then reads.

    A subset of what ``cbor.decode`` accepts, read the same way (text as strict UTF-8, as cbor2 reads it);
    a property test compares the two. Its labels are integers, so the label check has nothing to refuse.
    """
    if data[:2] != _HEADER_START:
        return None
    alg = _SHORT_ALGS.get(data[2:4])
    if alg is None:
        return None
    kid_start, kid_end = cbor.read_bstr(data, 4)
    if kid_start < 0 or data[kid_end : kid_end + 3] != _CLAIMS_ISS:
        return None
    length, iss_start = cbor.read_head(data, kid_end + 3, 0x60)
    iss_end = iss_start + length
    if iss_start < 0 or data[iss_end : iss_end + 1] != _IAT:
        return None
    iat, end = cbor.read_head(data, iss_end + 1, 0x00)
    if end < 0 or data[end:] != _VDS_RFC9162:
        return None
    try:
        issuer = data[iss_start:iss_end].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return {L.ALG: alg, L.KID: data[kid_start:kid_end], L.CWT_CLAIMS: {L.CWT_ISS: issuer, L.CWT_IAT: iat},
            L.VDS: L.VDS_RFC9162_SHA256}


_HEADER_START = b"\xa4\x01"  # a map of 4; label 1 (alg)
_SHORT_ALGS = {b"\x27\x04": L.ALG_EDDSA, b"\x26\x04": L.ALG_ES256}  # alg -8 or -7, then label 4 (kid)
_CLAIMS_ISS = b"\x0f\xa2\x01"  # label 15 (CWT claims): a map of 2; label 1 (iss)
_IAT = b"\x06"  # label 6 (iat)
_VDS_RFC9162 = b"\x19\x01\x8b\x01"  # label 395 (vds): 1 (RFC9162_SHA256)


_TAG18_ARRAY4 = b"\xd2\x84"  # tag 18 (COSE_Sign1), array of 4
_ONE_INCLUSION_PROOF = b"\xa1\x19\x01\x8c\xa1\x20\x81"  # {396: {-1: [ (one byte string follows)
_NIL = b"\xf6"


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
