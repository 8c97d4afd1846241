"""The console's configuration: one TOML file, read once at start-up into a frozen value.

    host = "127.0.0.1"                  # where the console listens (default 127.0.0.1:8100)
    port = 8100
    issuer = "http://127.0.0.1:8000"    # the issuer's URL (the embedded default: the log's)
    namespace = "acme"                  # the namespace whose claims this console decides
    namespace_key = "acme.key"          # the namespace owner's Ed25519 PEM key (mode 0600); it never leaves
    operator = "did:key:z6Mk…"          # optional: the DID the key signs for (after a rotation); default its did:key
    origin = "http://localhost:8100"    # the console's origin as browsers see it: WebAuthn binds passkeys to it
    rp_id = "localhost"                 # the WebAuthn relying party id: origin's host or a registrable suffix of it
    rp_name = "Acme approvals"          # shown by the authenticator when a passkey is made
    data_dir = "console-data"           # the session secret (session.key) and spent invitations
    session_max_age = 28800             # seconds a sign-in lasts
    log_url = "http://127.0.0.1:8000"   # optional: the log's public URL for links to its explorer (default: issuer)

Relative paths are taken from the file's folder. Unknown keys are refused; every error is one
``ConsoleConfigInvalid`` naming the file and the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from schemas.errors import ConfigurationError, TabellionError
from transparency.config_files import read_toml
from verifier.webauthn import check_rp_origin

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8100
DEFAULT_SESSION_MAX_AGE: Final = 8 * 3600
KEYS: Final = frozenset({"host", "port", "issuer", "namespace", "namespace_key", "operator", "origin", "rp_id",
                         "rp_name", "data_dir", "session_max_age", "log_url"})


class ConsoleConfigInvalid(ConfigurationError):
    """The console's TOML configuration cannot be used; the detail names the file, the key and why."""

    code = "console-config-invalid"
    title = "Invalid console configuration"


@dataclass(frozen=True)
class ConsoleConfig:
    path: Path
    issuer: str
    namespace: str
    namespace_key: Path
    origin: str
    rp_id: str
    rp_name: str
    data_dir: Path
    operator: str | None = None
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    session_max_age: int = DEFAULT_SESSION_MAX_AGE
    log_url: str = ""

    @property
    def secure_cookies(self) -> bool:
        return self.origin.startswith("https://")

    @property
    def explorer(self) -> str:
        return (self.log_url or self.issuer).rstrip("/")


def load_config(path: str | Path) -> ConsoleConfig:
    path = Path(path)
    raw = read_toml(path, ConsoleConfigInvalid)
    return parse_config(raw, path)


def parse_config(raw: dict[str, Any], path: Path) -> ConsoleConfig:
    unknown = sorted(set(raw) - KEYS)
    if unknown:
        raise ConsoleConfigInvalid(f"{path}: unknown key {unknown[0]!r} (known: {', '.join(sorted(KEYS))})")

    def text(key: str, default: str | None = None) -> str:
        value = raw.get(key, default)
        if not isinstance(value, str) or not value:
            raise ConsoleConfigInvalid(f"{path}: {key} must be a non-empty string")
        return value

    def number(key: str, default: int, low: int, high: int) -> int:
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConsoleConfigInvalid(f"{path}: {key} must be an integer from {low} to {high}")
        return value

    base = path.parent
    origin = text("origin").rstrip("/")
    rp_id = text("rp_id")
    try:
        check_rp_origin(rp_id, origin)
    except TabellionError as exc:
        raise ConsoleConfigInvalid(f"{path}: origin and rp_id: {exc.detail}") from exc
    for key in ("issuer", "log_url"):
        if key in raw and urlsplit(text(key)).scheme not in ("http", "https"):
            raise ConsoleConfigInvalid(f"{path}: {key} must be an http:// or https:// URL")
    operator = raw.get("operator")
    if operator is not None and (not isinstance(operator, str) or not operator.startswith("did:")):
        raise ConsoleConfigInvalid(f"{path}: operator must be a DID")
    return ConsoleConfig(
        path=path, issuer=text("issuer").rstrip("/"), namespace=text("namespace"),
        namespace_key=base / text("namespace_key"), origin=origin, rp_id=rp_id,
        rp_name=text("rp_name", "Tabellion approvals"), data_dir=base / text("data_dir", "console-data"),
        operator=operator, host=text("host", DEFAULT_HOST), port=number("port", DEFAULT_PORT, 0, 65535),
        session_max_age=number("session_max_age", DEFAULT_SESSION_MAX_AGE, 60, 7 * 24 * 3600),
        log_url=str(raw.get("log_url", "")),
    )
