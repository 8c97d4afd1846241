"""The witness's configuration: one TOML file, read once at start-up into frozen values.

    name = "witness.example/w1"        # the cosigner name in its signature lines (a schema-less URL)
    key_file = "witness-key.pem"       # its Ed25519 key (PEM, as `tabellion keygen` writes it), created
                                       # (mode 0600) on first start; relative paths are to this file
    data_dir = "witness-data"          # witness.sqlite: the latest cosigned checkpoint of each log
    host = "127.0.0.1"                 # default 127.0.0.1:8380
    port = 8380
    max_body_bytes = 65536             # largest add-checkpoint body

    [[logs]]                           # one table per log key; two with the same origin: a log's two keys
    vkey = "tabellion.example/log+1a2b3c4d+AQ…"   # the log's checkpoint verifier key (name = its origin)

Unknown keys are refused, so a typo is an error and not a setting silently ignored; every error is one
``WitnessConfigInvalid`` naming the file and the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from schemas.errors import ConfigurationError, MalformedKey
from schemas.note import SIG_TYPE_ED25519, VerifierKey, check_key_name, parse_vkey
from transparency.config_files import read_toml

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8380
DEFAULT_MAX_BODY: Final = 64 * 1024
DATABASE_FILE: Final = "witness.sqlite"
_TOP: Final = frozenset({"name", "key_file", "data_dir", "host", "port", "max_body_bytes", "logs"})


class WitnessConfigInvalid(ConfigurationError):
    code = "witness-config-invalid"
    title = "Witness configuration invalid"


@dataclass(frozen=True)
class WitnessConfig:
    name: str
    key_file: Path
    data_dir: Path
    logs: Mapping[str, tuple[VerifierKey, ...]]  # origin -> the keys trusted for it
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_body_bytes: int = DEFAULT_MAX_BODY

    @property
    def db_path(self) -> Path:
        return self.data_dir / DATABASE_FILE


def load_config(path: Path) -> WitnessConfig:
    raw = read_toml(path, WitnessConfigInvalid, what="the witness configuration ")
    return parse_config(raw, path)


def parse_config(raw: Mapping[str, Any], path: Path) -> WitnessConfig:
    def fail(why: str) -> WitnessConfigInvalid:
        return WitnessConfigInvalid(f"{path}: {why}")

    unknown = sorted(set(raw) - _TOP)
    if unknown:
        raise fail(f"unknown key {unknown[0]!r}")
    name = raw.get("name")
    if not isinstance(name, str):
        raise fail("'name' (the witness's cosigner name) is required and a string")
    try:
        check_key_name(name)
    except MalformedKey as exc:
        raise fail(f"name: {exc.detail}") from exc
    base = path.parent
    key_file = _path(raw, "key_file", base, fail) or base / "witness-key.pem"
    data_dir = _path(raw, "data_dir", base, fail) or base / "witness-data"
    host = raw.get("host", DEFAULT_HOST)
    if not isinstance(host, str) or not host:
        raise fail("'host' is a non-empty string")
    port = _int(raw, "port", DEFAULT_PORT, 0, 65535, fail)
    max_body = _int(raw, "max_body_bytes", DEFAULT_MAX_BODY, 1024, 16 * 1024 * 1024, fail)
    tables = raw.get("logs", [])
    if not isinstance(tables, list) or not tables:
        raise fail("at least one [[logs]] table with the log's vkey is required")
    logs: dict[str, list[VerifierKey]] = {}
    for i, table in enumerate(tables):
        if not isinstance(table, dict) or set(table) != {"vkey"} or not isinstance(table["vkey"], str):
            raise fail(f"[[logs]] number {i + 1} must hold exactly one string key 'vkey'")
        try:
            vkey = parse_vkey(table["vkey"])
        except MalformedKey as exc:
            raise fail(f"[[logs]] number {i + 1}: {exc.detail}") from exc
        if vkey.sig_type != SIG_TYPE_ED25519:
            raise fail(f"[[logs]] number {i + 1}: {vkey.name!r} is not an Ed25519 checkpoint key (type 0x01)")
        if vkey in logs.get(vkey.name, []):
            raise fail(f"[[logs]] number {i + 1} repeats the key of {vkey.name!r}")
        logs.setdefault(vkey.name, []).append(vkey)
    return WitnessConfig(name, key_file, data_dir, {o: tuple(k) for o, k in logs.items()}, host, port, max_body)


def _path(raw: Mapping[str, Any], key: str, base: Path, fail: Any) -> Path | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise fail(f"'{key}' is a non-empty path")
    return base / value


def _int(raw: Mapping[str, Any], key: str, default: int, low: int, high: int, fail: Any) -> int:
    value = raw.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise fail(f"'{key}' is an integer from {low} to {high}")
    return value
