"""Settings of the transparency service: built once at the edge (CLI flags > env > defaults), frozen."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from schemas.errors import ConfigurationError
from transparency.outbound import AllowedTargets

ENV_PREFIX = "TABELLION_"


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("./data")
    host: str = "127.0.0.1"
    port: int = 8000
    origin: str = "tabellion.localhost/log"
    max_body_bytes: int = 1024 * 1024
    body_read_timeout_s: float = 10.0  # a request body stalling this long is refused (transparency.request_bodies)
    batch_max_entries: int = 256
    batch_max_wait_ms: float = 5.0
    registration_timeout_s: float = 5.0
    queue_limit: int = 4096
    rate_per_second: float = 0.0  # per-client POST /entries budget; 0 = unlimited
    rate_burst: int = 100
    entries_page_limit: int = 1000
    did_web_ca_file: Path | None = None  # PEM CA bundle for did:web fetches; None: the system's trust store
    did_web_timeout_s: float = 5.0  # the whole fetch of a did:web DID document
    read_threads: int = 2  # threads reading receipts, proofs, tiles off the event loop (pages have their own)
    # address ranges outbound requests (webhooks, did:web) may reach although not public: transparency.outbound
    outbound_allow: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "log.sqlite"

    @property
    def key_path(self) -> Path:
        return self.data_dir / "log-key.pem"

    @property
    def retired_keys_dir(self) -> Path:
        return self.data_dir / "retired-keys"

    @property
    def allowed_targets(self) -> AllowedTargets:
        return AllowedTargets.parse(self.outbound_allow)


def flag(raw: str) -> bool:
    """A boolean setting: true/1/yes/on or false/0/no/off (any case)."""
    value = raw.strip().lower()
    if value not in ("true", "1", "yes", "on", "false", "0", "no", "off"):
        raise ValueError(raw)
    return value in ("true", "1", "yes", "on")


_CASTS: dict[str, Callable[[str], Any]] = {
    "data_dir": Path, "host": str, "port": int, "origin": str, "max_body_bytes": int,
    "batch_max_entries": int, "batch_max_wait_ms": float, "registration_timeout_s": float,
    "queue_limit": int, "rate_per_second": float, "rate_burst": int, "entries_page_limit": int,
    "did_web_ca_file": Path, "did_web_timeout_s": float, "body_read_timeout_s": float, "read_threads": int,
    "outbound_allow": str,
}


def load_settings(overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Defaults, then ``TABELLION_*`` environment variables, then explicit overrides (CLI flags)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for name, cast in _CASTS.items():
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is not None:
            try:
                values[name] = cast(raw)
            except ValueError as exc:
                raise ConfigurationError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {cast.__name__}") from exc
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    settings = replace(Settings(), **values)
    if (settings.batch_max_entries < 1 or settings.max_body_bytes < 1 or settings.queue_limit < 1
            or settings.read_threads < 1):
        raise ConfigurationError("batch_max_entries, max_body_bytes, queue_limit and read_threads must be positive")
    if not settings.body_read_timeout_s > 0:
        raise ConfigurationError(f"body_read_timeout_s {settings.body_read_timeout_s} must be positive")
    if settings.did_web_timeout_s <= 0:
        raise ConfigurationError("did_web_timeout_s must be positive")
    if not settings.origin or any(c.isspace() for c in settings.origin) or "+" in settings.origin:
        raise ConfigurationError(f"origin {settings.origin!r} must be non-empty, without spaces or '+'")
    AllowedTargets.parse(settings.outbound_allow)  # ConfigurationError unless address ranges
    return settings
