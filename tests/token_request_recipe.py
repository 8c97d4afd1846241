"""An independent client of ``POST /v1/tokens``, written from docs/identity.md ("The request and its signature")
only: it imports nothing of Tabellion, just ``cryptography`` (Ed25519) and ``rfc8785`` (JCS)."""

from __future__ import annotations

import base64
import json
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def signing_input(request: dict[str, Any]) -> bytes:
    """Step 2: the RFC 8785 canonical JSON of the request without ``signature``, UTF-8."""
    return bytes(rfc8785.dumps({name: value for name, value in request.items() if name != "signature"}))


def signed_request(key: Ed25519PrivateKey, request: dict[str, Any]) -> dict[str, Any]:
    """Steps 3 and 4: pure Ed25519 over the signing input, base64url without padding, as ``signature``."""
    signature = key.sign(signing_input(request))
    return {**request, "signature": base64.urlsafe_b64encode(signature).rstrip(b"=").decode("ascii")}


def wire_body(request: dict[str, Any]) -> bytes:
    """Step 5: any JSON serialization will do; this one is deliberately not canonical (reversed member order,
    indentation, ASCII escapes)."""
    return json.dumps(dict(reversed(list(request.items()))), indent=2, ensure_ascii=True).encode("ascii")
