"""Interop with an independent RFC 9421 implementation, pyauth's ``http-message-signatures``: requests it
signs verify with ``gateway.signatures``, and requests we sign verify with its ``HTTPMessageVerifier``.

It checks ``created`` against the real clock, so these tests sign with the current time.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from dataclasses import dataclass, field

import pytest
from http_message_signatures import ContentDigest, HTTPMessageSigner, HTTPMessageVerifier, MappingKeyResolver
from http_message_signatures import algorithms as hms_algorithms
from http_message_signatures.exceptions import InvalidSignature

from gateway.signatures import AGENT_IDENTITY_HEADERS, Request, sign_request, verify_request
from schemas.errors import ContentDigestMismatch, RequestSignatureInvalid
from tests.unit.gateway.agent import BODY, IDENTITY, KEY, KEYID, keys

PORT_URI = "https://api.example.com:8443/v1/accounts/42?fields=name&x=1"
ALL_DERIVED = ("@method", "@target-uri", "@authority", "@scheme", "@request-target", "@path", "@query")


@dataclass
class Message:
    """The request interface the library documents (HTTPSignatureComponentResolver): method, url, headers."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)


class Sha512Digest(ContentDigest):
    algorithm = "sha-512"


def _message(method: str = "POST", url: str = PORT_URI) -> Message:
    return Message(method, url, {"Host": "api.example.com:8443", "Content-Type": "application/json", **dict(IDENTITY)})


def _resolver() -> MappingKeyResolver:
    return MappingKeyResolver(public_keys={KEYID: KEY.public_key()}, private_keys={KEYID: KEY})


def _as_request(message: Message, body: bytes) -> Request:
    return Request(message.method, message.url, tuple(message.headers.items()), body)


def _as_message(request: Request) -> Message:
    return Message(request.method, request.target_uri, dict(request.headers))


def _theirs_sign(
    message: Message, body: bytes | None, components: tuple[str, ...], digest: type[ContentDigest]
) -> None:
    signer = HTTPMessageSigner(signature_algorithm=hms_algorithms.ED25519, key_resolver=_resolver())
    signer.content_digest_class = digest
    signer.sign(
        message,
        key_id=KEYID,
        created=datetime.datetime.now(datetime.UTC),
        expires=datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=60),
        nonce="their-nonce",
        label="pyhms",
        tag="tabellion",
        covered_component_ids=components,
        body=body,
    )


@pytest.mark.parametrize("digest", [ContentDigest, Sha512Digest])
def test_they_sign_we_verify_with_content(digest: type[ContentDigest]) -> None:
    message = _message()
    _theirs_sign(message, BODY, ("@method", "@target-uri", *AGENT_IDENTITY_HEADERS), digest)
    assert (message.headers.get("Content-Digest") or "").startswith(digest.algorithm)
    verified = verify_request(
        _as_request(message, BODY), key_resolver=keys().get, now=int(time.time()), tag="tabellion"
    )
    assert verified.label == "pyhms"
    assert verified.nonce == "their-nonce"
    assert verified.expires is not None
    assert "content-digest" in verified.covered_components
    with pytest.raises(ContentDigestMismatch):
        verify_request(_as_request(message, BODY + b" "), key_resolver=keys().get, now=int(time.time()))


def test_they_sign_we_verify_all_derived_components() -> None:
    message = _message("GET")
    _theirs_sign(message, None, (*ALL_DERIVED, "host", *AGENT_IDENTITY_HEADERS), ContentDigest)
    verified = verify_request(_as_request(message, b""), key_resolver=keys().get, now=int(time.time()))
    assert verified.covered_components[: len(ALL_DERIVED)] == ALL_DERIVED
    moved = dataclasses.replace(_as_request(message, b""), target_uri=PORT_URI.replace("x=1", "x=2"))
    with pytest.raises(RequestSignatureInvalid):
        verify_request(moved, key_resolver=keys().get, now=int(time.time()))


def _theirs_verify(request: Request, body: bytes, require: tuple[str, ...]) -> dict[str, int | str]:
    verifier = HTTPMessageVerifier(signature_algorithm=hms_algorithms.ED25519, key_resolver=_resolver())
    (result,) = verifier.verify(_as_message(request), require_components=require, body=body)
    return result.parameters


def test_we_sign_they_verify_with_content() -> None:
    request = sign_request(
        _as_request(_message(), BODY), key=KEY, keyid=KEYID, created=int(time.time()), nonce="our-nonce", tag="t"
    )
    params = _theirs_verify(request, BODY, ("@method", "@target-uri", "content-digest", *AGENT_IDENTITY_HEADERS))
    assert params["keyid"] == KEYID
    assert params["nonce"] == "our-nonce"
    assert params["alg"] == "ed25519"
    with pytest.raises(InvalidSignature):
        _theirs_verify(request, BODY + b" ", ())


def test_we_sign_they_verify_all_derived_components() -> None:
    request = sign_request(
        _as_request(_message("GET"), b""),
        key=KEY,
        keyid=KEYID,
        created=int(time.time()),
        expires=int(time.time()) + 60,
        nonce="our-nonce",
        components=(*ALL_DERIVED, "host", *AGENT_IDENTITY_HEADERS),
    )
    _theirs_verify(request, b"", ALL_DERIVED)
    tampered = request.with_fields(("Tabellion-Subject", "did:key:z6MkOther"), replace=("Tabellion-Subject",))
    with pytest.raises(InvalidSignature):
        _theirs_verify(tampered, b"", ())


@pytest.mark.parametrize("uri", ["https://api.example.com", "https://API.Example.com:443?q=1"])
def test_target_uri_normalization_agrees(uri: str) -> None:
    request = sign_request(
        Request("GET", uri, IDENTITY),
        key=KEY,
        keyid=KEYID,
        created=int(time.time()),
        nonce="n",
        components=(*ALL_DERIVED, *AGENT_IDENTITY_HEADERS),
    )
    _theirs_verify(request, b"", ())
    message = Message("GET", uri, dict(IDENTITY))
    _theirs_sign(message, None, (*ALL_DERIVED, *AGENT_IDENTITY_HEADERS), ContentDigest)
    verify_request(_as_request(message, b""), key_resolver=keys().get, now=int(time.time()))


# --- ecdsa-p256-sha256 (RFC 9421 §3.3.4): the algorithm of a TPM-resident agent key --------------------------------


def test_p256_both_ways_with_the_independent_implementation() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from schemas.errors import SignatureAlgorithmMismatch

    key = ec.generate_private_key(ec.SECP256R1())
    resolver = MappingKeyResolver(public_keys={KEYID: key.public_key()}, private_keys={KEYID: key})
    message = _message()
    signer = HTTPMessageSigner(signature_algorithm=hms_algorithms.ECDSA_P256_SHA256, key_resolver=resolver)
    signer.sign(message, key_id=KEYID, created=datetime.datetime.now(datetime.UTC), nonce="n1", label="pyhms",
                covered_component_ids=("@method", "@target-uri", *AGENT_IDENTITY_HEADERS), body=BODY)
    verified = verify_request(_as_request(message, BODY), key_resolver={KEYID: key.public_key()}.get,
                              now=int(time.time()))
    assert verified.label == "pyhms"
    ours = sign_request(_as_request(_message(), BODY), key=key, keyid=KEYID, created=int(time.time()), nonce="n2")
    assert 'alg="ecdsa-p256-sha256"' in (ours.field("signature-input") or "")
    verifier = HTTPMessageVerifier(signature_algorithm=hms_algorithms.ECDSA_P256_SHA256, key_resolver=resolver)
    (result,) = verifier.verify(_as_message(ours), require_components=("@method", "content-digest"), body=BODY)
    assert result.parameters["alg"] == "ecdsa-p256-sha256"
    with pytest.raises(RequestSignatureInvalid):  # another P-256 key
        verify_request(ours, key_resolver={KEYID: ec.generate_private_key(ec.SECP256R1()).public_key()}.get,
                       now=int(time.time()))
    with pytest.raises(SignatureAlgorithmMismatch):  # an ed25519 signature for a P-256 agent key
        verify_request(sign_request(_as_request(_message(), BODY), key=KEY, keyid=KEYID, created=int(time.time()),
                                    nonce="n3"), key_resolver={KEYID: key.public_key()}.get, now=int(time.time()))
