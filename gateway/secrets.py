"""Provider secrets at rest: each value encrypted with NaCl SecretBox under one master key.

The secrets live in ``<data_dir>/secrets.json``::

    {"format": "tabellion-gateway-secrets/1", "secrets": {"MAIL_TOKEN": "<base64(nonce ‖ box)>", …}}

Each box holds the JSON ``{"name": NAME, "value": VALUE}``, so a value copied under another
name does not decrypt as that name. The master key (32 bytes, base64 text) comes from the environment
variable ``TABELLION_GATEWAY_MASTER_KEY`` when it is set, else from a file that only its owner may read
(mode 0600; ``create=True`` makes one). A wrong master key, or a tampered value, is refused by name
(``SecretUndecryptable``); a secret is decrypted once, at start-up.

A decrypted value is a ``Secret``: its ``repr`` and ``str`` are redacted, so it cannot reach a log line by
accident, and ``RedactSecrets`` scrubs the values from every log record that passes a handler as a second
line of defence. Only ``Secret.reveal()`` gives the value, and only the proxy calls it (for the upstream).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

import nacl.exceptions
import nacl.secret
import nacl.utils

from schemas.errors import MasterKeyInvalid, SecretMissing, SecretStoreError, SecretUndecryptable

MASTER_KEY_ENV: Final = "TABELLION_GATEWAY_MASTER_KEY"
FORMAT: Final = "tabellion-gateway-secrets/1"
KEY_SIZE: Final = nacl.secret.SecretBox.KEY_SIZE
REDACTED: Final = "***"


class Secret:
    """A secret value that does not show itself: ``repr``/``str``/``format`` are redacted."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, spec: str) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(Secret)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret is not pickled")


# --- the master key ---------------------------------------------------------------------------------------


def generate_master_key() -> str:
    """A new master key as the base64 text stored in the file or the environment variable."""
    return base64.b64encode(nacl.utils.random(KEY_SIZE)).decode()


def parse_master_key(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MasterKeyInvalid(f"the master key in {where} is not base64") from exc
    if len(key) != KEY_SIZE:
        raise MasterKeyInvalid(f"the master key in {where} is {len(key)} bytes, not {KEY_SIZE}")
    return key


def load_master_key(path: Path, env: Mapping[str, str] | None = None, *, create: bool = False) -> bytes:
    """The master key from ``TABELLION_GATEWAY_MASTER_KEY`` if set, else from the file ``path``.

    The file must be readable by its owner only (0600 or stricter); ``create`` writes a new key there,
    exclusively and with mode 0600, when there is no file yet.
    """
    env = os.environ if env is None else env
    if env.get(MASTER_KEY_ENV):
        return parse_master_key(env[MASTER_KEY_ENV], f"${MASTER_KEY_ENV}")
    if create and not path.exists():
        _create_key_file(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError as exc:
        raise MasterKeyInvalid(
            f"no master key: {path} does not exist and ${MASTER_KEY_ENV} is not set "
            "('tabellion gateway secret set' creates one)"
        ) from exc
    except OSError as exc:
        raise MasterKeyInvalid(f"cannot read the master key {path}: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "rb") as fh:
        mode = os.fstat(fh.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise MasterKeyInvalid(f"the master key {path} is not a regular file")
        if mode & 0o077:
            raise MasterKeyInvalid(
                f"the master key {path} is readable by others (mode {stat.S_IMODE(mode):04o}); chmod 600 it"
            )
        text = fh.read(1024).decode("ascii", "replace")
    return parse_master_key(text, str(path))


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process made it first: use theirs
    with os.fdopen(fd, "w") as fh:
        fh.write(generate_master_key() + "\n")
        fh.flush()
        os.fsync(fh.fileno())


# --- the store --------------------------------------------------------------------------------------------


class SecretStore:
    """The encrypted secrets in the JSON file ``path``, under ``master_key``."""

    def __init__(self, path: Path, master_key: bytes) -> None:
        if len(master_key) != KEY_SIZE:
            raise MasterKeyInvalid(f"a master key is {KEY_SIZE} bytes, not {len(master_key)}")
        self.path = path
        self._box = nacl.secret.SecretBox(master_key)

    def names(self) -> list[str]:
        return sorted(self._read())

    def get(self, name: str) -> Secret:
        sealed = self._read().get(name)
        if sealed is None:
            raise SecretMissing(f"no secret {name[:128]!r} is stored in {self.path}")
        return self._open(name, sealed)

    def load(self, names: Iterable[str]) -> dict[str, Secret]:
        """Decrypt every named secret (raises for the first that is missing or does not decrypt)."""
        stored = self._read()
        found: dict[str, Secret] = {}
        for name in names:
            if name not in stored:
                raise SecretMissing(
                    f"no secret {name[:128]!r} is stored in {self.path} "
                    f"('tabellion gateway secret set --config FILE {name[:128]}' stores one)"
                )
            found[name] = self._open(name, stored[name])
        return found

    def set(self, name: str, value: Secret) -> None:
        stored = self._read()
        first = next(iter(stored.items()), None)
        if first is not None:  # a wrong master key must not mix values under two keys in one file
            self._open(*first)
        plaintext = json.dumps({"name": name, "value": value.reveal()}, sort_keys=True).encode()
        stored[name] = base64.b64encode(self._box.encrypt(plaintext)).decode()
        self._write(stored)

    def delete(self, name: str) -> None:
        stored = self._read()
        if stored.pop(name, None) is None:
            raise SecretMissing(f"no secret {name[:128]!r} is stored in {self.path}")
        self._write(stored)

    def _open(self, name: str, sealed: str) -> Secret:
        try:
            plaintext = self._box.decrypt(base64.b64decode(sealed, validate=True))
            record = json.loads(plaintext)
        except (nacl.exceptions.CryptoError, binascii.Error, ValueError) as exc:
            raise SecretUndecryptable(
                f"secret {name[:128]!r} in {self.path} does not decrypt with this master key (a wrong key, or "
                "a tampered value)"
            ) from exc
        if not isinstance(record, dict) or record.get("name") != name or not isinstance(record.get("value"), str):
            raise SecretUndecryptable(f"secret {name[:128]!r} in {self.path} was stored under another name")
        return Secret(record["value"])

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise SecretStoreError(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        except ValueError as exc:
            raise SecretStoreError(f"{self.path} is not JSON: {exc}") from exc
        secrets = data.get("secrets") if isinstance(data, dict) and data.get("format") == FORMAT else None
        if not isinstance(secrets, dict) or not all(isinstance(v, str) for v in secrets.values()):
            raise SecretStoreError(f"{self.path} is not a {FORMAT} file")
        return dict(secrets)

    def _write(self, stored: Mapping[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"format": FORMAT, "secrets": dict(sorted(stored.items()))}, indent=1) + "\n"
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


# --- logging ----------------------------------------------------------------------------------------------


class RedactSecrets(logging.Filter):
    """Replaces every occurrence of the given secrets' values in a log record's message with ``***``."""

    def __init__(self, secrets: Iterable[Secret]) -> None:
        super().__init__()
        self._values = sorted({s.reveal() for s in secrets if s.reveal()}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._values:
            return True
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True

    def redact(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, REDACTED)
        return text
