"""The public client of the transparency log: what issuer, gateway and the CLI import.

``signing`` makes signed statements as a did:key signer; ``http`` talks to a log over HTTP.
"""

from transparency.client.http import HttpLogClient, LogEntry, Submitted, refusal, retry_after
from transparency.client.signing import (
    KEY_KINDS,
    KeyKind,
    PrivateKey,
    algorithm_of,
    did_of,
    generate_key,
    kid_of,
    load_ed25519_key,
    load_private_key,
    public_key,
    save_private_key,
    sign_hash_envelope,
    sign_statement,
)

__all__ = [
    "KEY_KINDS",
    "HttpLogClient",
    "KeyKind",
    "LogEntry",
    "PrivateKey",
    "Submitted",
    "algorithm_of",
    "did_of",
    "generate_key",
    "kid_of",
    "load_ed25519_key",
    "load_private_key",
    "public_key",
    "refusal",
    "retry_after",
    "save_private_key",
    "sign_hash_envelope",
    "sign_statement",
]
