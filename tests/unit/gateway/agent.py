"""A signing agent for the gateway tests: a fixed Ed25519 key, its identity headers, a clock."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.signatures import Request, VerifiedSignature, sign_request, verify_request

NOW = 1_760_000_000
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
KEYID = "did:key:z6MkAgent#z6MkAgent"
IDENTITY = (
    ("Tabellion-Namespace", "acme"),
    ("Tabellion-Subject", "did:key:z6MkAgent"),
    ("Tabellion-Agent-Key", KEYID),
    ("Tabellion-Agent-Passport", "ab" * 32),
)
BODY = b'{"action": "read", "resource": "crm/accounts/42"}'
URI = "https://api.example.com/v1/accounts/42?fields=name&x=1"


def keys(key: Ed25519PrivateKey = KEY) -> dict[str, Ed25519PublicKey]:
    return {KEYID: key.public_key()}


def agent_request(body: bytes = BODY, method: str = "POST", uri: str = URI) -> Request:
    headers = (("Host", "api.example.com"), ("Content-Type", "application/json"), *IDENTITY)
    return Request(method, uri, headers, body)


def signed(request: Request | None = None, **kwargs: Any) -> Request:
    options: dict[str, Any] = {"key": KEY, "keyid": KEYID, "created": NOW, "nonce": "nonce-1"} | kwargs
    return sign_request(request if request is not None else agent_request(), **options)


def verify(request: Request, **kwargs: Any) -> VerifiedSignature:
    options: dict[str, Any] = {"key_resolver": keys().get, "now": NOW} | kwargs
    return verify_request(request, **options)
