"""Receipts made by hand: a plain RFC 9162 tree from its definitions, COSE receipts over it, a throw-away Log."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from schemas import cbor
from schemas import cose_labels as L
from schemas.cose_sign1 import decode_sign1, sig_structure
from schemas.leaf import leaf_data, leaf_hash
from schemas.proofs import InclusionProof
from schemas.receipt import receipt_protected_header
from tests.signing import PrivateKey, new_ed25519, sign_statement
from verifier.keys import KeySet, thumbprint

ISSUER = "https://log.example"
IAT = 1_700_000_000


# --- a plain RFC 9162 §2.1 tree, straight from the definitions -----------------------------------------


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes (the one-leaf tree hash is the leaf hash)."""
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) (RFC 9162 §2.1.3.1)."""
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if m < k:
        return path(m, leaves[:k]) + [mth(leaves[k:])]
    return path(m - k, leaves[k:]) + [mth(leaves[:k])]


# --- building receipts by hand ------------------------------------------------------------------------


def sign_raw(key: PrivateKey, data: bytes) -> bytes:
    if isinstance(key, Ed25519PrivateKey):
        return key.sign(data)
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def make_receipt(
    log_key: PrivateKey,
    root: bytes,
    proof: InclusionProof,
    *,
    kid: bytes | None = None,
    alg: int | None = None,
    vdp: dict[int, Any] | None = None,
) -> bytes:
    alg = alg if alg is not None else (L.ALG_EDDSA if isinstance(log_key, Ed25519PrivateKey) else L.ALG_ES256)
    kid = kid if kid is not None else thumbprint(log_key.public_key())
    protected = cbor.encode(receipt_protected_header(alg, kid, ISSUER, IAT))
    signature = sign_raw(log_key, sig_structure(protected, root))
    unprotected = {L.VDP: vdp if vdp is not None else {L.VDP_INCLUSION: [proof.encode()]}}
    return cbor.encode(cbor.tag(L.COSE_SIGN1_TAG, [protected, unprotected, None, signature]))


@dataclass
class Log:
    """A throw-away log of ``size`` statements, for tests only."""

    key: PrivateKey
    statements: list[bytes]

    @classmethod
    def of(cls, size: int, key: PrivateKey | None = None) -> Log:
        signer = new_ed25519()
        statements = [sign_statement(signer, f'{{"n":{i}}}'.encode()) for i in range(size)]
        return cls(key or new_ed25519(), statements)

    @property
    def leaves(self) -> list[bytes]:
        return [leaf_hash(leaf_data(decode_sign1(s))) for s in self.statements]

    @property
    def root(self) -> bytes:
        return mth(self.leaves)

    def proof(self, index: int) -> InclusionProof:
        return InclusionProof(len(self.statements), index, tuple(path(index, self.leaves)))

    def receipt(self, index: int, **kwargs: Any) -> bytes:
        return make_receipt(self.key, self.root, self.proof(index), **kwargs)

    @property
    def keys(self) -> KeySet:
        return KeySet.from_keys([self.key.public_key()])
