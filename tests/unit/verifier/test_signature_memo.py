"""SignatureMemo: a signature is verified once per (algorithm, key, signature, Sig_structure), never remembered when
it fails, forgotten oldest-first; with ``remember=False`` it is looked up but not kept. Real Ed25519 and P-256
keys; the verifications are counted by wrapping ``verify_over``, which still does the verification."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

import verifier.cose as cose
from schemas import cose_labels as L
from schemas.errors import SignatureInvalid
from tests.signing import new_ed25519, new_p256
from verifier.cose import SignatureMemo
from verifier.keys import PublicKey

CALLS: list[bytes] = []


@pytest.fixture(autouse=True)
def _counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    real = cose.verify_over

    def counted(alg: int, key: PublicKey, signature: bytes, to_be_signed: bytes) -> None:
        CALLS.append(to_be_signed)
        real(alg, key, signature, to_be_signed)

    CALLS.clear()
    monkeypatch.setattr(cose, "verify_over", counted)
    yield


def test_a_signature_that_verified_is_not_verified_again() -> None:
    key = new_ed25519()
    memo = SignatureMemo()
    memo.verify(L.ALG_EDDSA, key.public_key(), key.sign(b"m"), b"m")
    memo.verify(L.ALG_EDDSA, key.public_key(), key.sign(b"m"), b"m")
    assert len(CALLS) == 1


def test_the_same_signature_over_another_message_or_under_another_key_is_verified() -> None:
    key, other = new_ed25519(), new_ed25519()
    memo = SignatureMemo()
    signature = key.sign(b"m")
    memo.verify(L.ALG_EDDSA, key.public_key(), signature, b"m")
    with pytest.raises(SignatureInvalid):
        memo.verify(L.ALG_EDDSA, key.public_key(), signature, b"n")
    with pytest.raises(SignatureInvalid):
        memo.verify(L.ALG_EDDSA, other.public_key(), signature, b"m")
    assert len(CALLS) == 3
    memo.verify(L.ALG_EDDSA, key.public_key(), signature, b"m")  # still remembered
    assert len(CALLS) == 3


def test_a_failure_is_never_remembered() -> None:
    key = new_ed25519()
    memo = SignatureMemo()
    for _ in range(2):
        with pytest.raises(SignatureInvalid):
            memo.verify(L.ALG_EDDSA, key.public_key(), b"\0" * 64, b"m")
    assert len(CALLS) == 2


def test_not_remembering_still_finds_what_was_remembered() -> None:
    key = new_ed25519()
    memo = SignatureMemo()
    memo.verify(L.ALG_EDDSA, key.public_key(), key.sign(b"a"), b"a", remember=False)
    memo.verify(L.ALG_EDDSA, key.public_key(), key.sign(b"a"), b"a", remember=False)
    assert len(CALLS) == 2  # looked up, not kept
    memo.verify(L.ALG_EDDSA, key.public_key(), key.sign(b"a"), b"a")
    memo.verify(L.ALG_EDDSA, key.public_key(), key.sign(b"a"), b"a", remember=False)
    assert len(CALLS) == 3  # kept by the first call that remembers, then found by one that does not
    with pytest.raises(SignatureInvalid):
        memo.verify(L.ALG_EDDSA, key.public_key(), key.sign(b"a"), b"b", remember=False)


def test_es256_keys_are_told_apart_by_their_point() -> None:
    key, other = new_p256(), new_p256()
    der = key.sign(b"m", ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    memo = SignatureMemo()
    memo.verify(L.ALG_ES256, key.public_key(), signature, b"m")
    memo.verify(L.ALG_ES256, key.public_key(), signature, b"m")
    with pytest.raises(SignatureInvalid):
        memo.verify(L.ALG_ES256, other.public_key(), signature, b"m")
    assert len(CALLS) == 2


def test_the_oldest_is_forgotten_first() -> None:
    key = new_ed25519()
    memo = SignatureMemo(limit=3)
    messages = [bytes([i]) for i in range(4)]
    signatures = [key.sign(m) for m in messages]
    for m, signature in zip(messages, signatures, strict=True):
        memo.verify(L.ALG_EDDSA, key.public_key(), signature, m)
    memo.verify(L.ALG_EDDSA, key.public_key(), signatures[3], messages[3])  # the newest: remembered
    assert len(CALLS) == 4
    memo.verify(L.ALG_EDDSA, key.public_key(), signatures[0], messages[0])  # the oldest: forgotten
    assert len(CALLS) == 5
