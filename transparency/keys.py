"""The log's signing key: Ed25519, created on first start in the data folder, never leaves it.

It signs receipts (COSE, kid = RFC 9679 thumbprint) and checkpoints (C2SP signed note, key name = origin).
Retired public keys (``retired-keys/*.pem`` in the data folder) stay in the published key set so receipts
they signed keep verifying.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from schemas.errors import ConfigurationError
from schemas.note import VerifierKey, ed25519_vkey
from transparency.client.signing import load_ed25519_key, save_private_key
from verifier.keys import KeySet, PublicKey, thumbprint


@dataclass(frozen=True)
class LogKey:
    private: Ed25519PrivateKey
    public: Ed25519PublicKey
    public_bytes: bytes
    kid: bytes

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)

    def note_key(self, origin: str) -> VerifierKey:
        return ed25519_vkey(origin, self.public_bytes)


def log_key_from_private(private: Ed25519PrivateKey) -> LogKey:
    public = private.public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return LogKey(private, public, raw, thumbprint(public))


def load_or_create_log_key(path: Path) -> LogKey:
    """Read the log key, or create it (mode 0600, written atomically) if the data folder has none."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        save_private_key(Ed25519PrivateKey.generate(), path)
    # owner_only=False keeps this key's old acceptance of a file others can read (see the closing note)
    return log_key_from_private(load_ed25519_key(path, "log key", owner_only=False))


def retired_public_keys(folder: Path) -> list[PublicKey]:
    keys: list[PublicKey] = []
    for pem in sorted(folder.glob("*.pem")) if folder.is_dir() else []:
        public = serialization.load_pem_public_key(pem.read_bytes())
        if not isinstance(public, Ed25519PublicKey):
            raise ConfigurationError(f"retired key {pem} is not an Ed25519 public key")
        keys.append(public)
    return keys


def published_key_set(current: LogKey, retired: list[PublicKey]) -> KeySet:
    return KeySet.from_keys([current.public, *retired])


def read_published_key_set(key_path: Path, retired_folder: Path) -> KeySet:
    """The log's published key set (current and retired), read from its data folder; nothing is created."""
    if not key_path.is_file():
        raise ConfigurationError(f"there is no log key {key_path}")
    current = log_key_from_private(load_ed25519_key(key_path, "log key", owner_only=False))
    return published_key_set(current, retired_public_keys(retired_folder))
