"""The gateway's TOML configuration: what it reads, and every mistake refused as one line naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.commands import run
from gateway.config import BearerCredentials, GatewayConfig, HeaderCredentials, load_config
from schemas.errors import ConnectionUnknown, GatewayConfigInvalid
from tests.unit.gateway.config_files import ORIGIN, write_config, write_log_trust


def test_a_full_configuration(tmp_path: Path) -> None:
    path = write_config(tmp_path, 'port = 8123\npublic_url = "https://gw.example/"\nmax_skew = 5\n', connections=(
        '[[connections]]\nid = "mail"\nupstream = "http://127.0.0.1:9/api/"\nservice = "mail"\n'
        'credentials = { type = "bearer", secret_ref = "MAIL_TOKEN" }\nactions = { get = "read", POST = "write" }\n'
        '[[connections]]\nid = "crm"\nupstream = "https://crm.example"\nservice = "crm"\n'
        'lowercase_method_compat = true\ntimeout = 2.5\n'
        'credentials = { type = "headers", headers = { "X-Api-Key" = "CRM_KEY", "X-Tenant" = "CRM_TENANT" } }\n'
    ))
    config = load_config(path)
    assert isinstance(config, GatewayConfig)
    assert (config.host, config.port, config.public_url, config.max_skew, config.max_age) == (
        "127.0.0.1", 8123, "https://gw.example", 5, 300)
    assert config.data_dir == tmp_path / "gateway-data"
    assert config.nonces_path == tmp_path / "gateway-data" / "nonces.sqlite"
    assert config.master_key_file == tmp_path / "gateway-data" / "master.key"
    assert config.log.vkey.name == ORIGIN and len(config.log.receipt_keys) == 1
    mail, crm = config.connections
    assert mail.upstream == "http://127.0.0.1:9/api" and mail.credentials == BearerCredentials("MAIL_TOKEN")
    assert (mail.action_for("GET"), mail.action_for("post"), mail.action_for("DELETE")) == ("read", "write", "delete")
    assert crm.credentials == HeaderCredentials((("X-Api-Key", "CRM_KEY"), ("X-Tenant", "CRM_TENANT")))
    assert crm.lowercase_method_compat and crm.timeout == 2.5 and not mail.lowercase_method_compat
    assert config.secret_refs == ("MAIL_TOKEN", "CRM_KEY", "CRM_TENANT")
    assert config.connection("crm") is crm
    with pytest.raises(ConnectionUnknown):
        config.connection("nope")


def test_vkey_from_a_file_and_master_key_file(tmp_path: Path) -> None:
    vkey, keys = write_log_trust(tmp_path)
    (tmp_path / "log.vkey").write_text(vkey + "\n")
    path = write_config(tmp_path, 'master_key_file = "keys/master.key"\ndata_dir = "/var/lib/gw"\n',
                        log=f'[log]\nurl = "https://log.example"\nvkey_file = "log.vkey"\nkeys_file = "{keys.name}"\n'
                            "poll_interval = 0.1\nlong_poll = 0\nmax_staleness = 5\n")
    config = load_config(path)
    assert config.log.vkey.encode() == vkey and config.log.poll_interval == 0.1 and config.log.max_staleness == 5
    assert config.log.long_poll == 0
    assert config.master_key_file == tmp_path / "keys" / "master.key" and config.data_dir == Path("/var/lib/gw")


@pytest.mark.parametrize(("body", "connections", "log", "expected"), [
    ("port = 0", None, None, "port: must be an integer from 1 to 65535"),
    ('porf = 1', None, None, "porf: unknown key"),
    ('public_url = "ftp://x"', None, None, "public_url: must be an http:// or https:// URL"),
    ("max_age = true", None, None, "max_age: must be an integer"),
    ("", "", None, "connections: must list at least one"),
    ("", '[[connections]]\nid = "a b"\nupstream = "http://u"\nservice = "s"\n', None, "connections[0].id"),
    ("", '[[connections]]\nid = "a"\nupstream = "http://u?x=1"\nservice = "s"\n', None,
     "connections[0].upstream: must have no query"),
    ("", '[[connections]]\nid = "a"\nupstream = "http://u"\n', None, "connections[0].service: is required"),
    ("", '[[connections]]\nid = "a"\nupstream = "http://u"\nservice = "s"\nkind = "grpc"\n', None,
     "connections[0].kind: 'grpc' is not supported"),
    ("", '[[connections]]\nid = "a"\nupstream = "http://u"\nservice = "s"\nkind = "mcp"\nactions = { POST = "w" }\n',
     None, "connections[0].actions: an MCP connection's actions are its tool names"),
    ("[action_records]\nbatch = 0", None, None, "action_records.batch: must be an integer from 1"),
    ("[action_records]\nsecret = 1", None, None, "action_records.secret: unknown key"),
    ("", '[[connections]]\nid = "a"\nupstream = "http://u"\nservice = "s"\n'
         'credentials = { type = "basic", secret_ref = "X" }\n', None, "credentials.type: 'basic' is not one of"),
    ("", '[[connections]]\nid = "a"\nupstream = "http://u"\nservice = "s"\n'
         'credentials = { type = "bearer", secret_ref = "no spaces" }\n', None, "secret_ref: a secret name"),
    ("", '[[connections]]\nid = "a"\nupstream = "http://u"\nservice = "s"\n'
         'credentials = { type = "headers", headers = { Host = "X" } }\n', None, "headers.Host: is not a header name"),
    ("", '[[connections]]\nid = "a"\nupstream = "http://u"\nservice = "s"\n'
         'credentials = { type = "bearer", secret_ref = "X", extra = 1 }\n', None, "credentials.extra: unknown key"),
    ("", '[[connections]]\nid = "a"\nupstream = "http://u"\nservice = "s"\n'
         '[[connections]]\nid = "a"\nupstream = "http://v"\nservice = "t"\n', None, "the id 'a' is used twice"),
    ("", None, "", "log: the [log] table is required"),
    ("", None, '[log]\nurl = "http://l"\nvkey = "nope"\nkeys_file = "log-keys.cbor"\n',
     "log.vkey: not a signed-note verifier key"),
    ("", None, '[log]\nurl = "http://l"\nvkey_file = "a"\nvkey = "b"\nkeys_file = "k"\n', "give exactly one"),
    ("", None, '[log]\nurl = "http://l"\nvkey_file = "missing.vkey"\nkeys_file = "k"\n',
     "log.vkey_file: cannot read"),
])
def test_mistakes_are_one_line_naming_the_key(
    tmp_path: Path, body: str, connections: str | None, log: str | None, expected: str
) -> None:
    path = write_config(tmp_path, body, log=log, connections=connections)
    with pytest.raises(GatewayConfigInvalid) as caught:
        load_config(path)
    assert expected in caught.value.detail and str(path) in caught.value.detail
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("extra", "expected"), [
    ("long_poll = 31", "log.long_poll: must be an integer from 0 to 30"),
    ("long_poll = 20\nmax_staleness = 20", "log.max_staleness: must be above long_poll (20 s)"),
    ("poll_interval = 0", "log.poll_interval: must be a number above 0"),
])
def test_log_timing_mistakes(tmp_path: Path, extra: str, expected: str) -> None:
    vkey, keys = write_log_trust(tmp_path)
    path = write_config(tmp_path, log=f'[log]\nurl = "http://l"\nvkey = "{vkey}"\nkeys_file = "{keys.name}"\n{extra}\n')
    with pytest.raises(GatewayConfigInvalid, match=expected.replace("(", r"\(").replace(")", r"\)")):
        load_config(path)
    assert load_config(write_config(tmp_path)).log.long_poll == 10


def test_not_toml_and_bad_receipt_keys(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text("port = = 1\n")
    with pytest.raises(GatewayConfigInvalid, match="is not TOML"):
        load_config(path)
    with pytest.raises(GatewayConfigInvalid, match="cannot read"):
        load_config(tmp_path / "absent.toml")
    path = write_config(tmp_path)
    (tmp_path / "log-keys.cbor").write_bytes(b"\xff")
    with pytest.raises(GatewayConfigInvalid, match="log.keys_file: not a COSE key set"):
        load_config(path)


def test_the_cli_prints_a_config_error_on_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, "port = 70000")
    assert run(["gateway", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tabellion: error: Invalid gateway configuration:" in err and "port" in err
    assert run(["gateway"]) == 2
