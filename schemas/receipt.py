"""RFC 9942 receipts (vds = 1, RFC9162_SHA256) and transparent statements, as shapes.

A receipt is a COSE_Sign1 by the log key with a detached payload: the Merkle root its inclusion proof
recomputes. Protected: alg, kid (RFC 9679 thumbprint of the log key), vds = 1, CWT claims {iss, iat}.
Unprotected: vdp (396) = {-1: [bstr .cbor inclusion-proof]} (or -2 for consistency receipts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas import cose_labels as L
from schemas.cose_sign1 import CoseSign1, decode_sign1
from schemas.errors import MalformedReceipt, NotCoseSign1, UnsupportedAlgorithm
from schemas.proofs import ConsistencyProof, InclusionProof


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


def parse_receipt(data: bytes) -> Receipt:
    try:
        msg = decode_sign1(data, "receipt")
    except NotCoseSign1 as exc:
        raise MalformedReceipt(exc.detail) from exc
    hdr = msg.protected
    if msg.payload is not None:
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
    vdp = msg.unprotected.get(L.VDP)
    if not isinstance(vdp, dict):
        raise MalformedReceipt("the receipt has no vdp (396) map in its unprotected header")
    inclusion = tuple(InclusionProof.decode(p) for p in _proof_list(vdp, L.VDP_INCLUSION))
    consistency = tuple(ConsistencyProof.decode(p) for p in _proof_list(vdp, L.VDP_CONSISTENCY))
    if not inclusion and not consistency:
        raise MalformedReceipt("the receipt's vdp (396) holds neither inclusion (-1) nor consistency (-2) proofs")
    return Receipt(msg, alg, kid, claims[L.CWT_ISS], iat, inclusion, consistency)


def _proof_list(vdp: dict[Any, Any], label: int) -> list[bytes]:
    proofs = vdp.get(label, [])
    if not isinstance(proofs, list | tuple):
        raise MalformedReceipt(f"vdp ({label}) is not an array of proofs")
    return list(proofs)


def transparent_statement(statement: CoseSign1, receipts: list[bytes]) -> bytes:
    """The signed statement with its receipts in unprotected label 394 (RFC 9943)."""
    return statement.encode(unprotected={L.RECEIPTS: receipts})


def receipts_of(statement: CoseSign1) -> list[bytes]:
    found = statement.unprotected.get(L.RECEIPTS)
    if not isinstance(found, list | tuple) or not all(isinstance(r, bytes) for r in found):
        raise MalformedReceipt("the statement carries no receipts array (394) of byte strings")
    return list(found)
