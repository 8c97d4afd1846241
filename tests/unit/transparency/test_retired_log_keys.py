"""A retired log key signs nothing new: after the log key is replaced (the old public key kept in retired-keys/ so
that old receipts and the service statements it signed still verify and fold), a statement signed by the old key
is refused (``log-key-retired``) and nothing is logged; the current key and everyone else register as before."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from transparency.client import did_of, generate_key, sign_statement
from transparency.keys import LogKey, load_or_create_log_key
from transparency.registration import LogKeyRetired
from transparency.service import TransparencyService
from transparency.settings import Settings

ORIGIN = "tabellion.localhost/log"


def _rotate(data: Path) -> tuple[LogKey, LogKey]:
    """Replace the log key of ``data``, keeping the old public key in retired-keys/; the old and the new key."""
    old = load_or_create_log_key(data / "log-key.pem")
    (data / "retired-keys").mkdir()
    pem = old.public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    (data / "retired-keys" / "1.pem").write_bytes(pem)
    (data / "log-key.pem").unlink()
    return old, load_or_create_log_key(data / "log-key.pem")


def _signed_by(key: Ed25519PrivateKey, n: int) -> bytes:
    return sign_statement(key, b'{"n": %d}' % n, subject=f"urn:example:{n}", content_type="application/json",
                          issuer=did_of(key))


def test_a_retired_log_key_signs_nothing_new(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    old, new = _rotate(data)
    service = TransparencyService(Settings(data_dir=data, origin=ORIGIN, batch_max_wait_ms=1.0))
    try:
        size = service.latest_head().tree_size
        with pytest.raises(LogKeyRetired) as refused:
            asyncio.run(service.register(_signed_by(old.private, 1)))
        assert refused.value.code == "log-key-retired" and did_of(old.private) in refused.value.detail
        assert service.latest_head().tree_size == size
        stranger = generate_key()
        assert isinstance(stranger, Ed25519PrivateKey)
        for n, key in enumerate((new.private, stranger), start=2):
            assert asyncio.run(service.register(_signed_by(key, n))).receipt is not None
        assert service.latest_head().tree_size == size + 2
    finally:
        service.close()


def test_a_key_both_current_and_listed_as_retired_still_signs(tmp_path: Path) -> None:
    """A current key copied into retired-keys/ by mistake is still the log's key: its statements register."""
    data = tmp_path / "data"
    current = load_or_create_log_key(data / "log-key.pem")
    (data / "retired-keys").mkdir()
    (data / "retired-keys" / "1.pem").write_bytes(
        current.public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    service = TransparencyService(Settings(data_dir=data, origin=ORIGIN, batch_max_wait_ms=1.0))
    try:
        assert asyncio.run(service.register(_signed_by(current.private, 1))).receipt is not None
    finally:
        service.close()
