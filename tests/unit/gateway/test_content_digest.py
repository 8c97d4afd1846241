"""RFC 9530 Content-Digest: the RFC's own values, and the three distinct refusals (missing, mismatch,
unsupported algorithm) plus malformed fields."""

from __future__ import annotations

import json

import pytest

from gateway.content_digest import SHA_256, SHA_512, content_digest, verify_content_digest
from schemas.errors import (
    ContentDigestAlgorithmUnsupported,
    ContentDigestMismatch,
    ContentDigestMissing,
    StructuredFieldMalformed,
)
from tests.vectors import vectors_dir

HELLO = b'{"hello": "world"}'
# RFC 9530 §2 and Appendix B.1 (also the Content-Digest of the RFC 9421 test request, B.2).
HELLO_SHA256 = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
HELLO_SHA512 = "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"


def test_rfc9530_values() -> None:
    assert content_digest(HELLO) == HELLO_SHA256
    assert content_digest(HELLO, (SHA_512,)) == HELLO_SHA512
    assert content_digest(HELLO, (SHA_256, SHA_512)) == f"{HELLO_SHA256}, {HELLO_SHA512}"


def test_rfc9421_test_request_digest_verifies() -> None:
    vector = json.loads((vectors_dir() / "rfc9421" / "rfc9421-B.2.6-ed25519.json").read_text())
    request = vector["request"]
    verify_content_digest(request["headers"]["Content-Digest"], request["body"].encode())


def test_several_digests_all_supported_ones_checked_others_ignored() -> None:
    verify_content_digest(f"{HELLO_SHA256}, {HELLO_SHA512}", HELLO)
    verify_content_digest(f"md5=:AAAA:, {HELLO_SHA256}", HELLO)
    wrong512 = content_digest(b"other", (SHA_512,))
    with pytest.raises(ContentDigestMismatch):
        verify_content_digest(f"{HELLO_SHA256}, {wrong512}", HELLO)


def test_mismatch() -> None:
    with pytest.raises(ContentDigestMismatch):
        verify_content_digest(HELLO_SHA256, HELLO + b" ")


def test_missing_is_distinct_from_mismatch() -> None:
    with pytest.raises(ContentDigestMissing):
        verify_content_digest(None, HELLO)
    with pytest.raises(ContentDigestMissing):
        verify_content_digest("", HELLO)
    verify_content_digest(None, b"")  # no content, no digest needed
    verify_content_digest(content_digest(b""), b"")
    with pytest.raises(ContentDigestMismatch):
        verify_content_digest(HELLO_SHA256, b"")


def test_unsupported_algorithms() -> None:
    with pytest.raises(ContentDigestAlgorithmUnsupported):
        verify_content_digest("md5=:AAAA:, sha=:AAAA:", HELLO)
    with pytest.raises(ContentDigestAlgorithmUnsupported):
        content_digest(HELLO, ("sha-1",))
    with pytest.raises(ContentDigestAlgorithmUnsupported):
        content_digest(HELLO, ())


@pytest.mark.parametrize(
    "field", ["sha-256=X48E", "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=", "sha-256=(:AA:)", "SHA-256=:AA:"]
)
def test_malformed_fields(field: str) -> None:
    with pytest.raises(StructuredFieldMalformed):
        verify_content_digest(field, HELLO)
