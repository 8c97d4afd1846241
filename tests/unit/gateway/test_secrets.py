"""Provider secrets at rest: SecretBox round trips, a wrong master key refused, values never shown."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import pickle
from pathlib import Path

import pytest

from cli.commands import run
from gateway.config import load_config
from gateway.secrets import (
    MASTER_KEY_ENV,
    RedactSecrets,
    Secret,
    SecretStore,
    generate_master_key,
    load_master_key,
)
from gateway.server import load_connection_secrets
from schemas.errors import MasterKeyInvalid, SecretMissing, SecretStoreError, SecretUndecryptable
from tests.unit.gateway.config_files import write_config

KEY = bytes(range(32))
OTHER = bytes(range(1, 33))


def test_round_trip_and_the_file_holds_no_plaintext(tmp_path: Path) -> None:
    store = SecretStore(tmp_path / "secrets.json", KEY)
    store.set("MAIL_TOKEN", Secret("tok-123456789"))
    store.set("CRM_KEY", Secret("crm-abcdef"))
    again = SecretStore(tmp_path / "secrets.json", KEY)
    assert again.names() == ["CRM_KEY", "MAIL_TOKEN"]
    assert again.get("MAIL_TOKEN").reveal() == "tok-123456789"
    assert {k: v.reveal() for k, v in again.load(["CRM_KEY"]).items()} == {"CRM_KEY": "crm-abcdef"}
    text = (tmp_path / "secrets.json").read_text()
    assert "tok-123456789" not in text and "crm-abcdef" not in text
    assert (tmp_path / "secrets.json").stat().st_mode & 0o777 == 0o600
    again.delete("CRM_KEY")
    assert again.names() == ["MAIL_TOKEN"]
    with pytest.raises(SecretMissing):
        again.get("CRM_KEY")
    with pytest.raises(SecretMissing, match="secret set"):
        again.load(["NOPE"])


def test_a_wrong_master_key_is_refused_and_cannot_mix_keys(tmp_path: Path) -> None:
    SecretStore(tmp_path / "secrets.json", KEY).set("A", Secret("value-a"))
    wrong = SecretStore(tmp_path / "secrets.json", OTHER)
    with pytest.raises(SecretUndecryptable, match="does not decrypt with this master key"):
        wrong.get("A")
    with pytest.raises(SecretUndecryptable):
        wrong.set("B", Secret("value-b"))
    assert SecretStore(tmp_path / "secrets.json", KEY).names() == ["A"]


def test_a_value_moved_to_another_name_or_tampered_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    store = SecretStore(path, KEY)
    store.set("A", Secret("value-a"))
    data = json.loads(path.read_text())
    data["secrets"]["B"] = data["secrets"]["A"]
    path.write_text(json.dumps(data))
    with pytest.raises(SecretUndecryptable, match="another name"):
        store.get("B")
    sealed = bytearray(base64.b64decode(data["secrets"]["A"]))
    sealed[-1] ^= 1
    data["secrets"]["A"] = base64.b64encode(bytes(sealed)).decode()
    path.write_text(json.dumps(data))
    with pytest.raises(SecretUndecryptable):
        store.get("A")
    path.write_text("{}")
    with pytest.raises(SecretStoreError, match="not a tabellion-gateway-secrets/1 file"):
        store.names()


def test_secret_values_are_not_shown() -> None:
    secret = Secret("sk-live-very-secret")
    printf = "%s" % (secret,)  # noqa: UP031 - the old formatting must not show it either
    for shown in (repr(secret), str(secret), f"{secret}", f"{secret!r}", printf, repr([secret])):
        assert "very-secret" not in shown
    assert secret == Secret("sk-live-very-secret") and secret != Secret("other")
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_log_records_are_scrubbed() -> None:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "sent %s to %s", ("Bearer sk-123", "u"), None)
    assert RedactSecrets([Secret("sk-123")]).filter(record)
    assert record.getMessage() == "sent Bearer *** to u"


def test_master_key_from_env_file_and_permissions(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    with pytest.raises(MasterKeyInvalid, match="does not exist"):
        load_master_key(path, {})
    key = load_master_key(path, {}, create=True)
    assert len(key) == 32 and path.stat().st_mode & 0o777 == 0o600
    assert load_master_key(path, {}) == key
    env_key = generate_master_key()
    assert load_master_key(path, {MASTER_KEY_ENV: env_key}) == base64.b64decode(env_key)
    with pytest.raises(MasterKeyInvalid, match="not base64"):
        load_master_key(path, {MASTER_KEY_ENV: "!!"})
    with pytest.raises(MasterKeyInvalid, match="16 bytes"):
        load_master_key(path, {MASTER_KEY_ENV: base64.b64encode(bytes(16)).decode()})
    os.chmod(path, 0o644)
    with pytest.raises(MasterKeyInvalid, match="readable by others"):
        load_master_key(path, {})


def test_cli_secret_set_list_delete(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)
    config = write_config(tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO("tok-from-stdin\n"))
    assert run(["gateway", "secret", "set", "--config", str(config), "MAIL_TOKEN"]) == 0
    out = capsys.readouterr().out
    assert "created the master key" in out and "OK: secret MAIL_TOKEN stored" in out and "tok-from" not in out
    assert run(["gateway", "secret", "list", "--config", str(config)]) == 0
    assert capsys.readouterr().out.split() == ["MAIL_TOKEN"]
    loaded = load_connection_secrets(load_config(config))
    assert loaded["MAIL_TOKEN"].reveal() == "tok-from-stdin"
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert run(["gateway", "secret", "set", "--config", str(config), "OTHER"]) == 1
    assert "no secret value" in capsys.readouterr().err
    monkeypatch.setenv(MASTER_KEY_ENV, generate_master_key())
    assert run(["gateway", "secret", "list", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not decrypt" in err
    monkeypatch.delenv(MASTER_KEY_ENV)
    assert run(["gateway", "secret", "delete", "--config", str(config), "MAIL_TOKEN"]) == 0
    assert run(["gateway", "secret", "list", "--config", str(config)]) == 0
    assert "missing: MAIL_TOKEN" in capsys.readouterr().out
