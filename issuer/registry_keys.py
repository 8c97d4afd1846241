"""The registry's own signing keys (Ed25519), in generations: what signs task-bound tokens.

They live in the data folder as ``registry-keys/<generation>.pem`` (unencrypted PKCS#8, mode 0600, the folder
0700), generations numbered 1, 2, …; the highest is current and signs, the others are retired and stay
published so that what they signed keeps verifying. ``rotate_registry_key(folder)`` adds a generation: it
needs no running server, and a running one picks the new key up on its next use (every use rescans the
folder, which holds a handful of files). A key file is written atomically and exclusively (``os.link`` of a
fsynced temporary file: two concurrent rotations cannot both write generation n + 1), and one readable by
group or others is refused, as ssh does.

Each key's ``kid`` is its RFC 7638 JWK thumbprint (``verifier.tokens.jwk_thumbprint``). ``GET /registry/keys``
serves them as a JWK Set (RFC 7517 §5), current first, each with ``generation`` and ``status``.
These are not the log's receipt keys, which stay at ``/.well-known/scitt-keys``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from schemas.errors import ConfigurationError, KeyFileExists
from transparency.client.signing import load_ed25519_key, save_private_key
from verifier.tokens import ALG, jwk_thumbprint, public_jwk

FOLDER_NAME: Final = "registry-keys"
JWK_SET_MEDIA_TYPE: Final = "application/jwk-set+json"
_FILE = re.compile(r"([1-9][0-9]{0,8})\.pem", re.ASCII)
_MAX_ATTEMPTS: Final = 16


@dataclass(frozen=True)
class RegistryKey:
    generation: int
    private: Ed25519PrivateKey
    public: Ed25519PublicKey
    kid: str

    def jwk(self, status: str) -> dict[str, Any]:
        """The public JWK (RFC 8037 OKP) with ``kid``, ``alg``, ``use``, ``generation`` and ``status``."""
        return {**public_jwk(self.public), "kid": self.kid, "alg": ALG, "use": "sig", "generation": self.generation,
                "status": status}


def _registry_key(generation: int, private: Ed25519PrivateKey) -> RegistryKey:
    public = private.public_key()
    return RegistryKey(generation, private, public, jwk_thumbprint(public))


def _load(path: Path, generation: int) -> RegistryKey:
    return _registry_key(generation, load_ed25519_key(path, "registry key"))


def _write_exclusive(path: Path, key: Ed25519PrivateKey) -> bool:
    """Write ``key`` to ``path`` (0600) unless the file exists; False if another writer got there first."""
    try:
        save_private_key(key, path)
    except KeyFileExists:
        return False
    return True


class RegistryKeys:
    """The key generations in one folder; ``current`` signs. Every read rescans the folder for new ones."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._keys: dict[int, RegistryKey] = {}

    @classmethod
    def open(cls, folder: Path) -> RegistryKeys:
        """The keys in ``folder``, creating it and generation 1 if there are none."""
        keys = cls(folder)
        if not keys.generations():
            keys._add(1)  # a concurrent first start that wrote generation 1 already is fine too
        return keys

    def reload(self) -> None:
        if not self.folder.is_dir():
            return
        for entry in os.scandir(self.folder):
            match = _FILE.fullmatch(entry.name)
            if match is not None and int(match[1]) not in self._keys:
                self._keys[int(match[1])] = _load(Path(entry.path), int(match[1]))

    def generations(self) -> list[RegistryKey]:
        """Every generation, current (highest) first."""
        self.reload()
        return [self._keys[g] for g in sorted(self._keys, reverse=True)]

    @property
    def current(self) -> RegistryKey:
        keys = self.generations()
        if not keys:
            raise ConfigurationError(f"there is no registry key in {self.folder}")
        return keys[0]

    def public_keys(self) -> dict[str, Ed25519PublicKey]:
        """kid -> public key of every generation: what ``verifier.tokens.verify_token`` takes."""
        return {key.kid: key.public for key in self.generations()}

    def jwk_set(self) -> dict[str, Any]:
        """The JWK Set of every generation, current first (``status`` current or retired)."""
        keys = self.generations()
        return {"keys": [key.jwk("current" if i == 0 else "retired") for i, key in enumerate(keys)]}

    def rotate(self) -> RegistryKey:
        """Add a new generation (the highest + 1), which becomes current; the old ones are kept."""
        for _ in range(_MAX_ATTEMPTS):
            generations = self.generations()
            key = self._add(generations[0].generation + 1 if generations else 1)
            if key is not None:
                return key
        raise ConfigurationError(f"could not add a registry key generation in {self.folder}: too many writers")

    def _add(self, generation: int) -> RegistryKey | None:
        """Write a new key as ``generation``; None if that generation exists already."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        private = Ed25519PrivateKey.generate()
        if not _write_exclusive(self.folder / f"{generation}.pem", private):
            return None
        key = _registry_key(generation, private)
        self._keys[generation] = key
        return key


def registry_keys_folder(data_dir: Path) -> Path:
    return data_dir / FOLDER_NAME


def open_registry_keys(data_dir: Path) -> RegistryKeys:
    """The registry keys of a data folder (``<data>/registry-keys``), generation 1 created on first use."""
    return RegistryKeys.open(registry_keys_folder(data_dir))


def rotate_registry_key(data_dir: Path) -> RegistryKey:
    """Add a registry key generation in a data folder (what ``tabellion registry rotate-key`` runs)."""
    return RegistryKeys(registry_keys_folder(data_dir)).rotate()
