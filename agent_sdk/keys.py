"""The agent's signing key: anything with a ``keyid`` and ``sign`` (``AgentKey``).

``FileKey`` holds an Ed25519 key read from a PEM file only its owner can read (``tabellion keygen`` writes one);
its ``keyid`` is the agent's did:key verification method. A key that never leaves hardware implements the same
protocol: ``agent_sdk.tpm`` is the hook for a TPM-resident key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from issuer.statements import multikey_of
from transparency.client import did_of, load_ed25519_key


class AgentKey(Protocol):
    """An Ed25519 key the agent signs with: ``keyid`` names it as the gateway resolves it on the log (the agent's
    DID or its verification method ``did:key:z…#z…``); ``sign`` returns the 64-byte signature of ``data``."""

    @property
    def keyid(self) -> str: ...

    def public_key(self) -> Ed25519PublicKey: ...

    def sign(self, data: bytes) -> bytes: ...


class FileKey:
    """An Ed25519 private key held in this process."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.did = did_of(key)
        self._keyid = f"{self.did}#{multikey_of(key)}"

    @classmethod
    def load(cls, path: str | Path) -> FileKey:
        """The key in the PEM file ``path`` (owner-only, Ed25519); ``ConfigurationError`` otherwise."""
        return cls(load_ed25519_key(path, "agent key"))

    @property
    def keyid(self) -> str:
        return self._keyid

    def public_key(self) -> Ed25519PublicKey:
        return self._key.public_key()

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def __repr__(self) -> str:
        return f"FileKey({self._keyid!r})"
