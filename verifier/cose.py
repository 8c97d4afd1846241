"""COSE_Sign1 signature verification (RFC 9052 §4.4) for EdDSA/Ed25519 (-8) and ES256/P-256 (-7).

This is on the receipt hot path, so it does the minimum: pick the algorithm, build the Sig_structure once,
call the primitive. Every failure raises; nothing returns a bool.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from schemas import cose_labels as L
from schemas.cbor import bstr_head
from schemas.cose_sign1 import CoseSign1, Header
from schemas.errors import NotCoseSign1, SignatureInvalid, UnsupportedAlgorithm
from verifier.keys import PublicKey

ED25519_SIGNATURE_SIZE = 64
ES256_SIGNATURE_SIZE = 64  # r || s, each 32 bytes big-endian (RFC 9053 §2.1)
_ES256 = ec.ECDSA(hashes.SHA256())
_SIGNATURE1_PREFIX = b"\x84\x6aSignature1"  # array(4), text(10) "Signature1"
_EMPTY_BSTR = b"\x40"  # external_aad, when there is none


def verify_sign1(
    msg: CoseSign1,
    alg: int,
    key: PublicKey,
    detached_payload: bytes | None = None,
    external_aad: bytes = b"",
    memo: SignatureMemo | None = None,
    remember: bool = True,
) -> None:
    """Verify ``msg``'s signature under ``key`` with algorithm ``alg``; raise on any failure. With ``memo``, a
    signature the memo has seen verify is not verified again (and one that verifies is remembered, unless not
    ``remember``: ``SignatureMemo.verify``).

    ``alg`` is the algorithm the caller decided to accept (usually the protected ``alg``); if the protected
    header names a different one, that is refused. ``detached_payload`` is required when the payload is nil.
    """
    payload = msg.payload if detached_payload is None else detached_payload
    verify_signature(msg.protected, msg.protected_bytes, msg.signature, alg, key, payload, external_aad, memo,
                     remember)


def verify_signature(
    protected: Header,
    protected_bytes: bytes,
    signature: bytes,
    alg: int,
    key: PublicKey,
    payload: bytes | None,
    external_aad: bytes = b"",
    memo: SignatureMemo | None = None,
    remember: bool = True,
) -> None:
    """``verify_sign1`` on the parts of a COSE_Sign1 (its protected header decoded and as bytes, its
    signature) and the payload the signature covers, for a caller that holds no ``CoseSign1``."""
    protected_alg = protected.get(L.ALG, alg)
    if protected_alg != alg:
        raise UnsupportedAlgorithm(f"the protected header names alg {protected_alg!r}, not {alg!r}")
    tbs = _sig_structure(protected, protected_bytes, payload, external_aad)
    if memo is not None:
        memo.verify(alg, key, signature, tbs, remember)
    else:
        verify_over(alg, key, signature, tbs)


class SignatureMemo:
    """Signatures that verified, so that one statement's signature is checked once however often it is met: the
    log checks a statement when it is registered, its policy (the fold) checks it again against the state, and
    the fold checks it a third time when the entry is applied. A signature counts as checked only for the same
    algorithm, the same key (its raw public bytes), the same signature bytes and the same Sig_structure, so the
    answer is the one ``verify_over`` would give again. Bounded: the oldest are forgotten first. Failures are
    never remembered. It keeps a SHA-256 of each Sig_structure, not the structure (up to a request body's size).

    Kept by signature bytes, so that a signature the memo has never seen is told at the cost of one look-up: a
    caller that will not meet a statement again (the fold reading the log, where every statement comes once)
    passes ``remember=False`` and pays nothing more than that look-up and the verification."""

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        # signature -> (alg, raw key, SHA-256 of the Sig_structure); forgets oldest-first in O(1)
        self._seen: OrderedDict[bytes, tuple[int, bytes, bytes]] = OrderedDict()
        self._lock = threading.Lock()  # the event loop, the intake and the sequencer threads share it

    def clear(self) -> None:
        """Forget every signature (a benchmark's rebuild starts from an empty memo, as a process does)."""
        with self._lock:
            self._seen.clear()

    def verify(self, alg: int, key: PublicKey, signature: bytes, to_be_signed: bytes, remember: bool = True) -> None:
        known = self._seen.get(signature)
        if known is None and not remember:
            verify_over(alg, key, signature, to_be_signed)
            return
        if type(key) in _ED25519_CLASSES or isinstance(key, Ed25519PublicKey):
            raw = cast(Ed25519PublicKey, key).public_bytes_raw()
        else:
            raw = key.public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
        memo = (alg, raw, hashlib.sha256(to_be_signed).digest())
        if known == memo:
            return
        verify_over(alg, key, signature, to_be_signed)
        if remember:
            with self._lock:
                seen = self._seen
                seen[signature] = memo
                seen.move_to_end(signature)
                if len(seen) > self.limit:
                    seen.popitem(last=False)


STATEMENT_SIGNATURES = SignatureMemo()
"""The statements' signatures verified in this process (``verify_sign1(..., memo=STATEMENT_SIGNATURES)``)."""


def verify_over(alg: int, key: PublicKey, signature: bytes, to_be_signed: bytes) -> None:
    """Verify ``signature`` (COSE's form: 64 bytes for EdDSA, r || s for ES256) over the Sig_structure
    ``to_be_signed`` under ``key`` with algorithm ``alg``; raise on any failure."""
    if alg == L.ALG_EDDSA:
        ed25519 = _as_ed25519(key)
        if len(signature) != ED25519_SIGNATURE_SIZE:
            raise SignatureInvalid(f"an Ed25519 signature is 64 bytes, this one is {len(signature)}")
        try:
            ed25519.verify(signature, to_be_signed)
        except InvalidSignature:
            raise SignatureInvalid("the EdDSA signature does not verify under the given key") from None
        return
    if alg == L.ALG_ES256:
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
            raise UnsupportedAlgorithm(f"ES256 (-7) needs a P-256 key, not {_key_name(key)}")
        if len(signature) != ES256_SIGNATURE_SIZE:
            raise SignatureInvalid(f"an ES256 signature is 64 bytes (r || s), this one is {len(signature)}")
        der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
        try:
            key.verify(der, to_be_signed, _ES256)
        except InvalidSignature:
            raise SignatureInvalid("the ES256 signature does not verify under the given key") from None
        return
    raise UnsupportedAlgorithm(f"alg {alg!r} is not supported; only EdDSA (-8) and ES256 (-7) are")


def sig_structure_of(body_protected: bytes, payload: bytes, external_aad: bytes = b"") -> bytes:
    """The Sig_structure ``["Signature1", body_protected, external_aad, payload]`` (RFC 9052 §4.4), with
    ``body_protected`` as it goes into it (empty for a header with no parameters). Written out by hand (it is
    on the receipt hot path); equal to ``schemas.cose_sign1.sig_structure``, which a property test checks.
    Each element is a definite-length byte string in its shortest form."""
    aad = bstr_head(len(external_aad)) + external_aad if external_aad else _EMPTY_BSTR
    return b"".join((_SIGNATURE1_PREFIX, bstr_head(len(body_protected)), body_protected, aad,
                     bstr_head(len(payload)), payload))


def to_be_signed(msg: CoseSign1, detached_payload: bytes | None = None, external_aad: bytes = b"") -> bytes:
    """The Sig_structure ``["Signature1", body_protected, external_aad, payload]`` (RFC 9052 §4.4).

    A protected header that decodes to an empty map counts as "no protected header parameters", which the
    Sig_structure carries as a zero-length byte string even when the wire had ``h'a0'`` (RFC 9052 §3;
    cose-wg sign-pass-01).
    """
    payload = msg.payload if detached_payload is None else detached_payload
    return _sig_structure(msg.protected, msg.protected_bytes, payload, external_aad)


def _sig_structure(protected: Header, protected_bytes: bytes, payload: bytes | None, external_aad: bytes) -> bytes:
    if payload is None:
        raise NotCoseSign1("the payload is detached and none was supplied")
    return sig_structure_of(protected_bytes if protected else b"", payload, external_aad)


def _as_ed25519(key: PublicKey) -> Ed25519PublicKey:
    """``key`` if it is an Ed25519 key, else ``UnsupportedAlgorithm``.

    ``Ed25519PublicKey`` is an abstract class the backend's key class registers with, and ``isinstance``
    against it builds a weak reference per call; the concrete classes it has admitted are remembered (a
    class's subclass relation never changes), so the usual check is one set lookup.
    """
    kind = type(key)
    if kind in _ED25519_CLASSES:
        return cast(Ed25519PublicKey, key)
    if not isinstance(key, Ed25519PublicKey):
        raise UnsupportedAlgorithm(f"EdDSA (-8) needs an Ed25519 key, not {_key_name(key)}")
    _ED25519_CLASSES.add(kind)
    return key


_ED25519_CLASSES: set[type] = set()


def _key_name(key: object) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"an EC key on {key.curve.name}"
    return f"a {type(key).__name__}"
