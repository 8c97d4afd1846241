"""Registry key generations: created on first use, reloaded, rotated (old generations kept and still verifying
what they signed), files 0600 in a 0700 folder, a running holder sees a rotation made elsewhere."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from issuer.registry_keys import (
    RegistryKeys,
    open_registry_keys,
    registry_keys_folder,
    rotate_registry_key,
)
from issuer.tokens import sign_jws
from schemas.errors import ConfigurationError
from transparency.client.signing import save_private_key
from verifier.tokens import jwk_thumbprint, key_from_jwk, parse_jws


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_use_creates_generation_1_with_mode_0600(tmp_path: Path) -> None:
    keys = open_registry_keys(tmp_path)
    folder = registry_keys_folder(tmp_path)
    assert [p.name for p in folder.iterdir()] == ["1.pem"]
    assert _mode(folder / "1.pem") == 0o600 and _mode(folder) == 0o700
    current = keys.current
    assert current.generation == 1 and current.kid == jwk_thumbprint(current.public)
    jwks = keys.jwk_set()
    assert jwks == {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": jwks["keys"][0]["x"], "kid": current.kid,
                              "alg": "EdDSA", "use": "sig", "generation": 1, "status": "current"}]}
    assert key_from_jwk(jwks["keys"][0])[0] == current.kid


def test_reload_reads_the_same_keys(tmp_path: Path) -> None:
    first = open_registry_keys(tmp_path)
    rotate_registry_key(tmp_path)
    again = open_registry_keys(tmp_path)
    assert [k.kid for k in again.generations()] == [k.kid for k in first.generations()]
    assert again.current.generation == 2


def test_rotate_adds_a_generation_and_keeps_the_old_ones(tmp_path: Path) -> None:
    keys = open_registry_keys(tmp_path)
    old = keys.current
    new = keys.rotate()
    assert (new.generation, keys.current.kid) == (2, new.kid) and new.kid != old.kid
    assert [(k["generation"], k["status"]) for k in keys.jwk_set()["keys"]] == [(2, "current"), (1, "retired")]
    assert all(_mode(p) == 0o600 for p in registry_keys_folder(tmp_path).glob("*.pem"))
    assert not list(registry_keys_folder(tmp_path).glob(".*"))  # no temporary file left behind


def test_a_token_signed_by_a_retired_generation_still_verifies(tmp_path: Path) -> None:
    keys = open_registry_keys(tmp_path)
    old = keys.current
    token = sign_jws({"alg": "EdDSA", "kid": old.kid, "typ": "JWT"}, {"sub": "x"}, old.private)
    keys.rotate()
    jws = parse_jws(token)
    published = dict(key_from_jwk(jwk) for jwk in keys.jwk_set()["keys"])
    published[jws.header["kid"]].verify(jws.signature, jws.signing_input)  # raises if it does not
    assert keys.public_keys()[old.kid] is not None and keys.current.kid != old.kid


def test_a_holder_sees_a_rotation_made_by_another_process(tmp_path: Path) -> None:
    running = open_registry_keys(tmp_path)
    rotated = rotate_registry_key(tmp_path)  # e.g. `tabellion registry rotate-key` while the server runs
    assert running.current.kid == rotated.kid and len(running.generations()) == 2


def test_a_lost_race_for_a_generation_takes_the_next(tmp_path: Path) -> None:
    one, two = RegistryKeys(registry_keys_folder(tmp_path)), RegistryKeys(registry_keys_folder(tmp_path))
    one.rotate()
    assert two._add(1) is None  # generation 1 exists: never overwritten
    assert two.rotate().generation == 2 and one.current.generation == 2


def test_a_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    open_registry_keys(tmp_path)
    (registry_keys_folder(tmp_path) / "1.pem").chmod(0o644)
    with pytest.raises(ConfigurationError, match="0600"):
        open_registry_keys(tmp_path)


def test_a_non_ed25519_or_broken_key_file_is_refused(tmp_path: Path) -> None:
    folder = registry_keys_folder(tmp_path)
    folder.mkdir()
    save_private_key(ec.generate_private_key(ec.SECP256R1()), folder / "1.pem")
    with pytest.raises(ConfigurationError, match="not an Ed25519"):
        open_registry_keys(tmp_path)
    (folder / "1.pem").unlink()
    save_private_key(Ed25519PrivateKey.generate(), folder / "1.pem")
    (folder / "2.pem").write_bytes(b"not a key")
    (folder / "2.pem").chmod(0o600)
    with pytest.raises(ConfigurationError):
        open_registry_keys(tmp_path)


def test_other_files_in_the_folder_are_ignored(tmp_path: Path) -> None:
    keys = open_registry_keys(tmp_path)
    folder = registry_keys_folder(tmp_path)
    for name in ("README", "0.pem", "01.pem", ".3.pem.123.tmp", "x.pem"):
        (folder / name).write_text("ignored")
    assert [k.generation for k in keys.generations()] == [1]

