"""RFC 9530 ``Content-Digest``: the digest of a request's content, which an RFC 9421 signature then covers.

The field is an RFC 8941 Dictionary from an algorithm key of the IANA "Hash Algorithms for HTTP Digest
Fields" registry to a Byte Sequence, e.g. ``sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:``.
Only the two algorithms the registry marks "Active", ``sha-256`` and ``sha-512``, are computed and
checked. A field may carry several digests (§2): every one of them with a supported algorithm must
match the content, the others are ignored (§6), and a field in which no algorithm is supported is
refused, as is content that arrives without a digest.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence

from schemas.errors import (
    ContentDigestAlgorithmUnsupported,
    ContentDigestMismatch,
    ContentDigestMissing,
    StructuredFieldMalformed,
)

from .structured_fields import Item, parse_dictionary, serialize_dictionary

FIELD_NAME = "content-digest"
SHA_256 = "sha-256"
SHA_512 = "sha-512"

_HASHES: dict[str, Callable[[bytes], bytes]] = {
    SHA_256: lambda data: hashlib.sha256(data).digest(),
    SHA_512: lambda data: hashlib.sha512(data).digest(),
}
SUPPORTED_ALGORITHMS = frozenset(_HASHES)


def digest(algorithm: str, content: bytes) -> bytes:
    """The raw digest of ``content`` with a supported algorithm key (``sha-256`` or ``sha-512``)."""
    fn = _HASHES.get(algorithm)
    if fn is None:
        raise ContentDigestAlgorithmUnsupported(
            f"Content-Digest algorithm {algorithm[:40]!r} is not supported; use one of {sorted(_HASHES)}"
        )
    return fn(content)


def content_digest(content: bytes, algorithms: Sequence[str] = (SHA_256,)) -> str:
    """The ``Content-Digest`` field value for ``content``, one member per algorithm, in the given order."""
    if not algorithms:
        raise ContentDigestAlgorithmUnsupported("a Content-Digest needs at least one algorithm")
    return serialize_dictionary({alg: Item(digest(alg, content)) for alg in algorithms})


def verify_content_digest(field_value: str | None, content: bytes) -> None:
    """Check a received ``Content-Digest`` field value (all its lines combined) against the content.

    ``field_value`` is None when the request has no such field. Empty content needs no digest; non-empty
    content without one is refused (``ContentDigestMissing``). Raises ``ContentDigestMismatch`` when a
    supported digest differs from the content's, ``ContentDigestAlgorithmUnsupported`` when no member
    uses a supported algorithm, and ``StructuredFieldMalformed`` when the field does not parse.
    """
    members = _parse(field_value) if field_value is not None else {}
    if not members:
        if content:
            raise ContentDigestMissing(
                f"the request carries {len(content)} bytes of content but no Content-Digest "
                f"({' or '.join(sorted(_HASHES))}) of them"
            )
        return
    checked = []
    for algorithm, expected in members.items():
        if algorithm not in _HASHES:
            continue
        if not hmac.compare_digest(expected, digest(algorithm, content)):
            raise ContentDigestMismatch(
                f"the {algorithm} Content-Digest does not match the {len(content)} bytes of content"
            )
        checked.append(algorithm)
    if not checked:
        raise ContentDigestAlgorithmUnsupported(
            f"Content-Digest has only {sorted(members)[:8]}; none is supported ({sorted(_HASHES)})"
        )


def _parse(field_value: str) -> dict[str, bytes]:
    try:
        parsed = parse_dictionary(field_value)
    except StructuredFieldMalformed as e:
        raise StructuredFieldMalformed(f"Content-Digest is not a structured-field dictionary: {e.detail}") from e
    members: dict[str, bytes] = {}
    for algorithm, member in parsed.items():
        if not isinstance(member, Item) or not isinstance(member.value, bytes):
            raise StructuredFieldMalformed(f"Content-Digest member {algorithm!r} is not a byte sequence")
        members[algorithm] = member.value
    return members
