"""Settings of the transparency service: built once at the edge (CLI flags > env > defaults), frozen."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from schemas.errors import ConfigurationError
from transparency.outbound import AllowedTargets

ENV_PREFIX = "TABELLION_"


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("./data")
    database: str | None = None  # a postgresql:// URL; None: the SQLite file in data_dir (the embedded default)
    publish_dir: Path | None = None  # write tiles, bundles and checkpoints there as static files (transparency.publish)
    host: str = "127.0.0.1"
    port: int = 8000
    origin: str = "tabellion.localhost/log"
    # the URL the service is reached at, e.g. https://log.acme.example: it names the service's did:web (did.json,
    # status lists, tokens); never taken from a request's Host. None: http://{host}:{port}, the listen address
    public_url: str | None = None
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
    enrolment_token_ttl_s: int = 300  # how long an enrolment token and its nonce may be used (single use)
    witness_policy: Path | None = None  # a C2SP tlog-policy: the witnesses asked to cosign, the quorum aimed for
    witness_timeout_s: float = 5.0  # one add-checkpoint request to one witness
    witness_max_backoff_s: float = 10.0  # longest pause before asking a failed witness again
    issuer_witness_policy: Path | None = None  # the embedded issuer accepts only checkpoints this quorum cosigned
    issuer_witness_grace_s: float = 10.0  # ... and answers 503 log-unwitnessed past this wait for a quorum
    snapshot_every: int = 100_000  # save a snapshot of the identity state every this many entries ...
    snapshot_interval_s: float = 300.0  # ... or after this many seconds, whichever comes first (and at a stop)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "log.sqlite"

    @property
    def service_url(self) -> str:
        """The service's public base URL, without a trailing ``/``: ``public_url``, else the listen address."""
        if self.public_url is not None:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def log_location(self) -> Path | str:
        """Where the log is stored (``transparency.log.storage``): the PostgreSQL URL, else the SQLite file."""
        return self.database or self.db_path

    @property
    def key_path(self) -> Path:
        return self.data_dir / "log-key.pem"

    @property
    def enrolments_path(self) -> Path:
        """The enrolment ceremony's tokens and nonces (SQLite): short-lived, single-use, not part of the log."""
        return self.data_dir / "enrolments.sqlite"

    @property
    def retired_keys_dir(self) -> Path:
        return self.data_dir / "retired-keys"

    @property
    def state_dir(self) -> Path:
        """The identity state kept between starts: snapshots and outcomes (a cache: delete it to rebuild)."""
        return self.data_dir / "state"

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
    "data_dir": Path, "database": str, "publish_dir": Path, "host": str, "port": int, "origin": str,
    "public_url": str,
    "max_body_bytes": int,
    "batch_max_entries": int, "batch_max_wait_ms": float, "registration_timeout_s": float,
    "queue_limit": int, "rate_per_second": float, "rate_burst": int, "entries_page_limit": int,
    "did_web_ca_file": Path, "did_web_timeout_s": float, "body_read_timeout_s": float, "read_threads": int,
    "outbound_allow": str, "snapshot_every": int, "snapshot_interval_s": float,
    "enrolment_token_ttl_s": int,
    "witness_policy": Path, "witness_timeout_s": float, "witness_max_backoff_s": float,
    "issuer_witness_policy": Path, "issuer_witness_grace_s": float,
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
    if not 0 < settings.body_read_timeout_s < math.inf:
        raise ConfigurationError(f"body_read_timeout_s {settings.body_read_timeout_s} must be positive and finite")
    if not 0 < settings.did_web_timeout_s < math.inf:
        raise ConfigurationError(f"did_web_timeout_s {settings.did_web_timeout_s} must be positive and finite")
    if settings.enrolment_token_ttl_s < 1:
        raise ConfigurationError("enrolment_token_ttl_s must be at least 1")
    if settings.witness_timeout_s <= 0 or settings.witness_max_backoff_s <= 0:
        raise ConfigurationError("witness_timeout_s and witness_max_backoff_s must be positive")
    if settings.database is not None and not settings.database.startswith(("postgresql://", "postgres://")):
        raise ConfigurationError("the log database must be a postgresql:// URL (without it, the log is the SQLite "
                                 "file in the data folder)")
    if settings.snapshot_every < 1 or settings.snapshot_interval_s <= 0:
        raise ConfigurationError("snapshot_every and snapshot_interval_s must be positive")
    if not settings.origin or any(c.isspace() for c in settings.origin) or "+" in settings.origin:
        raise ConfigurationError(f"origin {settings.origin!r} must be non-empty, without spaces or '+'")
    if settings.public_url is not None:
        check_public_url(settings.public_url)
    elif settings.port == 0:
        raise ConfigurationError("port 0 picks a port only at start: give public_url, the URL the service is "
                                 "reached at")
    AllowedTargets.parse(settings.outbound_allow)  # ConfigurationError unless address ranges
    return settings


def check_public_url(value: str) -> None:
    """``public_url`` is an absolute http(s) URL, without user information, query or fragment (a path is kept:
    ``https://acme.example/log`` is ``did:web:acme.example:log``)."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- a port that is not a number raises ValueError here
    except ValueError as exc:
        raise ConfigurationError(f"public_url {value[:100]!r} is not a URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        raise ConfigurationError(f"public_url {value[:100]!r} must be an http:// or https:// URL without user "
                                 "information")
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise ConfigurationError(f"public_url {value[:100]!r} must have no query and no fragment")
    if any(c.isspace() or ord(c) < 0x20 for c in value):
        raise ConfigurationError(f"public_url {value[:100]!r} must have no spaces or control characters")
