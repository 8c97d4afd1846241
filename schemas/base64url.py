"""Unpadded base64url (RFC 4648 §5), as JOSE, WebAuthn and Tabellion's JSON formats carry bytes."""

from __future__ import annotations

import base64
import re
from typing import Final

from schemas.errors import PayloadInvalid, TabellionError

_ALPHABET: Final = re.compile(r"[A-Za-z0-9_-]*", re.ASCII)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(
    text: object, what: str, error: type[TabellionError] = PayloadInvalid, *, canonical: bool = False
) -> bytes:
    """Strict decoding: any other character, padding, or an impossible length raises ``error``; with
    ``canonical`` (RFC 7515 §2) so do unused bits that are not zero."""
    if not isinstance(text, str) or not _ALPHABET.fullmatch(text) or len(text) % 4 == 1:
        raise error(f"{what} is not unpadded base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))  # cannot fail after the checks above
    if canonical and b64url(data) != text:
        raise error(f"{what} is not the canonical base64url of its bytes")
    return data
