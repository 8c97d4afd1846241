"""The gateway's configuration: one TOML file, read once at start-up into frozen values.

    host = "127.0.0.1"                 # where the gateway listens (default 127.0.0.1:8700)
    port = 8700
    public_url = "https://gw.example"  # optional: the base URL agents sign (@target-uri); default: the
                                       # request's own scheme and Host header
    data_dir = "gateway-data"          # nonces.sqlite, secrets.json, master.key (relative to this file)
    master_key_file = "master.key"     # optional, default <data_dir>/master.key; the env variable
                                       # TABELLION_GATEWAY_MASTER_KEY (base64) takes precedence
    max_skew = 30                      # seconds a signer's clock may be off
    max_age = 300                      # seconds after ``created`` a signature is accepted
    workers = 1                        # worker processes (gateway.server): they share the nonces, rate buckets,
                                       # action-record queue and one verified view of the log
    body_read_timeout = 10             # seconds a request body may stall (and 1 KiB/s on average beyond): 408
    max_body_bytes = 10485760          # largest request body (it is read whole: its digest is checked
                                       # before anything reaches the upstream)
    log_headers = false                # decision log lines list request headers (secrets redacted)

    [log]
    url = "http://127.0.0.1:8000"      # the transparency service
    vkey = "tabellion.local+1a2b3c4d+AQ…"   # its checkpoint verifier key, pinned (or vkey_file = "…")
    keys_file = "log-keys.cbor"        # its receipt key set (COSE_KeySet), pinned
    long_poll = 10                     # seconds the log may hold a checkpoint request until its tree grows
                                       # (a revocation is seen at once); 0: poll every poll_interval
    poll_interval = 0.15               # seconds between polls without long poll, and after a failed one
    max_staleness = 60                 # refuse (503 log-stale) when no checkpoint verified for this long;
                                       # must be above long_poll
    witness_policy = "witnesses.policy"   # optional C2SP tlog-policy: accept only checkpoints its quorum of
                                       # witnesses cosigned (docs/witnessing.md)
    witness_grace = 10                 # with a policy: refuse (503 log-unwitnessed) once a newer checkpoint
                                       # of the log has waited this long for its quorum

    [[connections]]
    id = "mail"                        # /proxy/mail/...
    upstream = "https://api.mail.example/v1"
    service = "mail"                   # the service name claims and delegations use
    kind = "http"                      # or "mcp": JSON-RPC, tools filtered by scope (gateway.mcp)
    credentials = { type = "bearer", secret_ref = "MAIL_TOKEN" }
    # credentials = { type = "headers", headers = { "X-Api-Key" = "MAIL_KEY" } }
    actions = { GET = "read", POST = "write" }   # optional; default: the method lower-cased
    lowercase_method_compat = false    # accept signatures over the lower-cased method (Sigilum SDKs)
    timeout = 30                       # seconds for the upstream to answer
    policy = { file = "mail.rego", query = "data.tabellion.allow", id = "mail", version = "3" }
                                       # optional Rego policy (gateway.policies): must be true to allow
    rate = { per_second = 5, burst = 20 }   # optional token bucket per agent (gateway.ratelimit): 429 beyond

    [action_records]                   # gateway.actions: every decision about an authenticated agent, signed
    enabled = true                     # by the gateway's key and appended to the log (default true)
    key_file = "gateway-key.pem"       # default <data_dir>/gateway-key.pem, created on first start (0600)
    batch = 64                         # records taken per round
    per_statement = 64                 # records in one signed statement (action-record-batch); 1: one each
    concurrency = 8                    # submissions in flight in a round (1: strictly one after the other)
    max_backoff = 30                   # seconds, at most, between retries while the log cannot take them
    linger = 0.2                       # seconds a round waits for more records once one is queued

Unknown keys are refused, so a typo is an error and not a silently ignored setting. Every error is one
``GatewayConfigInvalid`` naming the file and the key.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from schemas.errors import ConnectionUnknown, GatewayConfigInvalid, TabellionError
from schemas.note import VerifierKey, parse_vkey
from schemas.policy import Policy, parse_policy
from transparency.config_files import read_toml
from verifier.keys import KeySet, parse_key_set
from verifier.policy import trusted_log_keys

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8700
DEFAULT_MAX_BODY: Final = 10 * 1024 * 1024
DEFAULT_POLL_INTERVAL: Final = 0.15
DEFAULT_MAX_STALENESS: Final = 60.0
DEFAULT_WITNESS_GRACE: Final = 10.0
DEFAULT_LONG_POLL: Final = 10
MAX_LONG_POLL: Final = 30  # the transparency service holds a long poll at most this long
DEFAULT_UPSTREAM_TIMEOUT: Final = 30.0
MASTER_KEY_FILE: Final = "master.key"
NONCES_FILE: Final = "nonces.sqlite"
SECRETS_FILE: Final = "secrets.json"
KINDS: Final = ("http", "mcp")
DEFAULT_POLICY_QUERY: Final = "data.tabellion.allow"
POLICY_QUERY: Final = re.compile(r"data(\.[A-Za-z_][A-Za-z0-9_]*)+", re.ASCII)

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", re.ASCII)
SECRET_NAME: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", re.ASCII)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", re.ASCII)
# Headers the gateway owns on the way upstream: a credential may not be injected under these names.
RESERVED_HEADERS: Final = frozenset({
    "host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "trailer", "upgrade",
    "proxy-authorization", "proxy-authenticate", "content-digest", "signature", "signature-input",
    "tabellion-namespace", "tabellion-subject", "tabellion-agent-key", "tabellion-agent-passport",
})


@dataclass(frozen=True)
class BearerCredentials:
    """``Authorization: Bearer <secret>``."""

    secret_ref: str


@dataclass(frozen=True)
class HeaderCredentials:
    """Custom headers, each ``(header name, secret name)``."""

    headers: tuple[tuple[str, str], ...]


Credentials = BearerCredentials | HeaderCredentials


@dataclass(frozen=True)
class PolicyConfig:
    """A connection's Rego policy (``gateway.policies``): the module read from ``file`` at start-up, the rule
    ``query`` names (it must be ``true`` to allow), and the ``id`` and ``version`` every decision records."""

    file: Path
    source: str = field(repr=False)
    query: str
    id: str
    version: str


@dataclass(frozen=True)
class RateConfig:
    """A token bucket per agent on a connection (``gateway.ratelimit``): ``burst`` requests at once, refilled at
    ``per_second``."""

    per_second: float
    burst: int


@dataclass(frozen=True)
class Connection:
    id: str
    upstream: str
    service: str
    kind: str = "http"
    credentials: Credentials | None = None
    actions: tuple[tuple[str, str], ...] = ()  # (METHOD, action)
    lowercase_method_compat: bool = False
    timeout: float = DEFAULT_UPSTREAM_TIMEOUT
    policy: PolicyConfig | None = None  # gateway.policies
    rate: RateConfig | None = None  # gateway.ratelimit

    def action_for(self, method: str) -> str:
        """The action a request with ``method`` asks for: the configured mapping, else the method lower-cased."""
        upper = method.upper()
        return next((action for m, action in self.actions if m == upper), method.lower())

    @property
    def secret_refs(self) -> tuple[str, ...]:
        if isinstance(self.credentials, BearerCredentials):
            return (self.credentials.secret_ref,)
        if isinstance(self.credentials, HeaderCredentials):
            return tuple(ref for _, ref in self.credentials.headers)
        return ()


@dataclass(frozen=True)
class LogConfig:
    url: str
    vkey: VerifierKey
    receipt_keys: KeySet
    poll_interval: float = DEFAULT_POLL_INTERVAL
    long_poll: int = DEFAULT_LONG_POLL
    max_staleness: float = DEFAULT_MAX_STALENESS
    witness_policy: Policy | None = None
    witness_grace: float = DEFAULT_WITNESS_GRACE


@dataclass(frozen=True)
class ActionRecordsConfig:
    """``[action_records]`` (``gateway.actions``); ``key_file`` None: ``<data_dir>/gateway-key.pem``."""

    enabled: bool = True
    key_file: Path | None = None
    batch: int = 64
    concurrency: int = 8
    max_backoff: float = 30.0
    per_statement: int = 64
    linger: float = 0.2


@dataclass(frozen=True)
class GatewayConfig:
    path: Path
    log: LogConfig
    connections: tuple[Connection, ...]
    data_dir: Path
    master_key_file: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    public_url: str | None = None
    max_skew: int = 30
    max_age: int = 300
    max_body_bytes: int = DEFAULT_MAX_BODY
    body_read_timeout: float = 10.0  # transparency.request_bodies.BodyReadDeadline
    workers: int = 1  # gateway.server
    log_headers: bool = False
    action_records: ActionRecordsConfig = ActionRecordsConfig()

    def connection(self, connection_id: str) -> Connection:
        for connection in self.connections:
            if connection.id == connection_id:
                return connection
        raise ConnectionUnknown(f"no connection {connection_id[:64]!r} is configured on this gateway")

    @property
    def nonces_path(self) -> Path:
        return self.data_dir / NONCES_FILE

    @property
    def secrets_path(self) -> Path:
        return self.data_dir / SECRETS_FILE

    @property
    def secret_refs(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(ref for c in self.connections for ref in c.secret_refs))


# --- reading ----------------------------------------------------------------------------------------------


def load_config(path: str | Path) -> GatewayConfig:
    """Read and check the configuration file; raise one ``GatewayConfigInvalid`` naming what is wrong."""
    path = Path(path)
    raw = read_toml(path, GatewayConfigInvalid)
    return parse_config(raw, path)


def parse_config(raw: Mapping[str, Any], path: Path) -> GatewayConfig:
    """The configuration in ``raw`` (parsed TOML); relative paths are taken from ``path``'s folder."""
    r = _Reader(path)
    top = r.table(raw, "", {"host", "port", "public_url", "data_dir", "master_key_file", "max_skew", "max_age",
                            "max_body_bytes", "log_headers", "log", "connections", "action_records",
                            "body_read_timeout", "workers"})
    base = path.parent
    data_dir = base / r.text(top, "data_dir", default="gateway-data")
    master = top.get("master_key_file")
    connections = tuple(r.connection(item, i) for i, item in enumerate(r.array(top, "connections")))
    ids = [c.id for c in connections]
    duplicate = next((i for i in ids if ids.count(i) > 1), None)
    if duplicate is not None:
        raise r.error("connections", f"the id {duplicate!r} is used twice")
    return GatewayConfig(
        path=path,
        log=r.log(top.get("log"), base),
        connections=connections,
        data_dir=data_dir,
        master_key_file=base / r.text(top, "master_key_file") if master is not None else data_dir / MASTER_KEY_FILE,
        host=r.text(top, "host", default=DEFAULT_HOST),
        port=r.integer(top, "port", DEFAULT_PORT, 1, 65535),
        public_url=r.url(top, "public_url", optional=True),
        max_skew=r.integer(top, "max_skew", 30, 0, 3600),
        max_age=r.integer(top, "max_age", 300, 1, 86400),
        max_body_bytes=r.integer(top, "max_body_bytes", DEFAULT_MAX_BODY, 0, 2**31),
        body_read_timeout=r.number(top, "body_read_timeout", 10.0, 0.0, 3600.0),
        workers=r.integer(top, "workers", 1, 1, 64),
        log_headers=r.boolean(top, "log_headers", False),
        action_records=r.action_records(top.get("action_records", {}), base),
    )


class _Reader:
    """Typed reads of the parsed TOML, each failure a ``GatewayConfigInvalid`` naming the file and key."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = ""

    def error(self, key: str, why: str) -> GatewayConfigInvalid:
        name = f"{self.where}.{key}" if self.where and key else self.where or key
        return GatewayConfigInvalid(f"{self.path}: {name or 'top level'}: {why}")

    def table(self, value: object, where: str, allowed: set[str]) -> dict[str, Any]:
        self.where = where
        if not isinstance(value, dict):
            raise self.error("", "must be a table")
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise self.error(unknown[0], f"unknown key (known: {', '.join(sorted(allowed))})")
        return value

    def text(self, t: Mapping[str, Any], key: str, *, default: str | None = None) -> str:
        value = t.get(key, default)
        if value is None:
            raise self.error(key, "is required")
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, "must be a non-empty string")
        return value

    def integer(self, t: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
        value = t.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise self.error(key, f"must be an integer from {low} to {high}")
        return value

    def number(self, t: Mapping[str, Any], key: str, default: float, low: float, high: float, *,
               zero: bool = False) -> float:
        """A number in (``low``, ``high``]; 0 too when ``zero``."""
        value = t.get(key, default)
        if (not isinstance(value, int | float) or isinstance(value, bool)
                or not (low < value <= high or (zero and value == 0))):
            raise self.error(key, f"must be {'0 or ' if zero else ''}a number above {low:g} and at most {high:g}")
        return float(value)

    def boolean(self, t: Mapping[str, Any], key: str, default: bool) -> bool:
        value = t.get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, "must be true or false")
        return value

    def url(self, t: Mapping[str, Any], key: str, *, optional: bool = False) -> str | None:
        if optional and key not in t:
            return None
        value = self.text(t, key)
        try:
            parts = urlsplit(value)
        except ValueError as exc:
            raise self.error(key, f"is not a URL: {exc}") from exc
        if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
            raise self.error(key, "must be an http:// or https:// URL without user information")
        if parts.query or parts.fragment or "?" in value or "#" in value:
            raise self.error(key, "must have no query and no fragment")
        return value.rstrip("/")

    def array(self, t: Mapping[str, Any], key: str) -> list[Any]:
        value = t.get(key)
        if not isinstance(value, list) or not value:
            raise self.error(key, "must list at least one [[connections]] table")
        return value

    def log(self, value: object, base: Path) -> LogConfig:
        if value is None:
            self.where = ""
            raise self.error("log", "the [log] table is required")
        t = self.table(value, "log", {"url", "vkey", "vkey_file", "keys_file", "poll_interval", "long_poll",
                                      "max_staleness", "witness_policy", "witness_grace"})
        if ("vkey" in t) == ("vkey_file" in t):
            raise self.error("vkey", "give exactly one of vkey (the verifier key text) and vkey_file")
        key = "vkey" if "vkey" in t else "vkey_file"
        text = self.text(t, key) if key == "vkey" else self._read(base / self.text(t, key), key)
        try:
            vkey = parse_vkey(text)
        except TabellionError as exc:
            raise self.error(key, f"not a signed-note verifier key: {exc.detail}") from exc
        keys = self._read_bytes(base / self.text(t, "keys_file"), "keys_file")
        try:
            receipt_keys = parse_key_set(keys)
        except TabellionError as exc:
            raise self.error("keys_file", f"not a COSE key set: {exc.detail}") from exc
        long_poll = self.integer(t, "long_poll", DEFAULT_LONG_POLL, 0, MAX_LONG_POLL)
        max_staleness = self.number(t, "max_staleness", DEFAULT_MAX_STALENESS, 0.0, 86400.0)
        if max_staleness <= long_poll:
            raise self.error("max_staleness", f"must be above long_poll ({long_poll} s)")
        policy = None
        if "witness_policy" in t:
            try:
                policy = parse_policy(self._read_bytes(base / self.text(t, "witness_policy"), "witness_policy"))
                trusted_log_keys(policy, vkey)
            except TabellionError as exc:
                raise self.error("witness_policy", exc.detail) from exc
        return LogConfig(
            url=str(self.url(t, "url")), vkey=vkey, receipt_keys=receipt_keys,
            poll_interval=self.number(t, "poll_interval", DEFAULT_POLL_INTERVAL, 0.0, 60.0),
            long_poll=long_poll, max_staleness=max_staleness, witness_policy=policy,
            witness_grace=self.number(t, "witness_grace", DEFAULT_WITNESS_GRACE, 0.0, 86400.0),
        )

    def connection(self, value: object, i: int) -> Connection:
        t = self.table(value, f"connections[{i}]", {"id", "upstream", "service", "kind", "credentials", "actions",
                                                    "lowercase_method_compat", "timeout", "policy", "rate"})
        ident = self.text(t, "id")
        if not _ID.fullmatch(ident):
            raise self.error("id", "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        kind = self.text(t, "kind", default="http")
        if kind not in KINDS:
            raise self.error("kind", f"{kind!r} is not supported (supported: {', '.join(KINDS)})")
        if kind == "mcp" and "actions" in t:
            raise self.error("actions", "an MCP connection's actions are its tool names (gateway.mcp); remove it")
        return Connection(
            id=ident, upstream=str(self.url(t, "upstream")), service=self.text(t, "service"), kind=kind,
            credentials=self.credentials(t.get("credentials")), actions=self.actions(t.get("actions", {})),
            lowercase_method_compat=self.boolean(t, "lowercase_method_compat", False),
            timeout=self.number(t, "timeout", DEFAULT_UPSTREAM_TIMEOUT, 0.0, 3600.0),
            policy=self.policy(t.get("policy"), f"connections[{i}]"),
            rate=self.rate(t.get("rate"), f"connections[{i}]"),
        )

    def credentials(self, value: object) -> Credentials | None:
        if value is None:
            return None
        where = self.where
        if not isinstance(value, dict):
            raise self.error("credentials", "must be an inline table with a type")
        kind = value.get("type")
        if kind == "bearer":
            t = self.table(value, f"{where}.credentials", {"type", "secret_ref"})
            return BearerCredentials(self.secret_ref(t, "secret_ref"))
        if kind == "headers":
            t = self.table(value, f"{where}.credentials", {"type", "headers"})
            headers = t.get("headers")
            if not isinstance(headers, dict) or not headers:
                raise self.error("headers", "must map at least one header name to a secret name")
            self.where = f"{where}.credentials.headers"
            pairs = []
            for name in headers:
                if not _TOKEN.fullmatch(name) or name.lower() in RESERVED_HEADERS:
                    raise self.error(name, "is not a header name a credential may be sent in")
                pairs.append((name, self.secret_ref(headers, name)))
            if len({n.lower() for n, _ in pairs}) != len(pairs):
                raise self.error("", "names one header twice")
            return HeaderCredentials(tuple(pairs))
        raise self.error("credentials.type", f"{str(kind)[:40]!r} is not one of 'bearer', 'headers'")

    def secret_ref(self, t: Mapping[str, Any], key: str) -> str:
        ref = self.text(t, key)
        if not SECRET_NAME.fullmatch(ref):
            raise self.error(key, "a secret name is 1-128 letters, digits, '_', '.' or '-'")
        return ref

    def actions(self, value: object) -> tuple[tuple[str, str], ...]:
        if not isinstance(value, dict):
            raise self.error("actions", "must map HTTP methods to action names")
        pairs = []
        for method, action in value.items():
            if not _TOKEN.fullmatch(method) or not isinstance(action, str) or not action:
                raise self.error(f"actions.{method}", "must map an HTTP method to a non-empty action name")
            pairs.append((method.upper(), action))
        return tuple(pairs)

    # --- operations: a connection's Rego policy and rate limit (gateway.policies, gateway.ratelimit) -------

    def policy(self, value: object, where: str) -> PolicyConfig | None:
        """``policy = { file = "mail.rego", query = "data.tabellion.allow", id = "mail", version = "3" }``:
        ``query`` defaults to ``data.tabellion.allow``, ``id`` to the file's stem, ``version`` to ``sha256:``
        and the first 16 hex digits of the file's digest. The module is compiled by ``gateway.policies``."""
        if value is None:
            return None
        self.where = where
        if not isinstance(value, dict):
            raise self.error("policy", "must be an inline table with a file")
        t = self.table(value, f"{where}.policy", {"file", "query", "id", "version"})
        file = self.path.parent / self.text(t, "file")
        source = self._read(file, "file")
        query = self.text(t, "query", default=DEFAULT_POLICY_QUERY)
        if not POLICY_QUERY.fullmatch(query):
            raise self.error("query", "must name a rule, as data.<package>.<rule> (e.g. data.tabellion.allow)")
        digest = "sha256:" + hashlib.sha256(source.encode()).hexdigest()[:16]
        policy = PolicyConfig(file=file, source=source, query=query, id=self.text(t, "id", default=file.stem),
                              version=self.text(t, "version", default=digest))
        self.where = where
        return policy

    def rate(self, value: object, where: str) -> RateConfig | None:
        """``rate = { per_second = 5, burst = 20 }``; ``burst`` defaults to ``per_second`` rounded up (at least 1)."""
        if value is None:
            return None
        self.where = where
        if not isinstance(value, dict):
            raise self.error("rate", "must be an inline table with per_second")
        t = self.table(value, f"{where}.rate", {"per_second", "burst"})
        if "per_second" not in t:
            raise self.error("per_second", "is required")
        per_second = self.number(t, "per_second", 0.0, 0.0, 1e6)
        rate = RateConfig(per_second, self.integer(t, "burst", max(1, math.ceil(per_second)), 1, 10**6))
        self.where = where
        return rate

    # --- action records (gateway.actions) -------------------------------------------------------------

    def action_records(self, value: object, base: Path) -> ActionRecordsConfig:
        t = self.table(value, "action_records", {"enabled", "key_file", "batch", "per_statement", "concurrency",
                                                 "max_backoff", "linger"})
        key_file = t.get("key_file")
        return ActionRecordsConfig(
            enabled=self.boolean(t, "enabled", True),
            key_file=None if key_file is None else base / self.text(t, "key_file"),
            batch=self.integer(t, "batch", 64, 1, 1000),
            per_statement=self.integer(t, "per_statement", 64, 1, 1000),
            concurrency=self.integer(t, "concurrency", 8, 1, 64),
            max_backoff=self.number(t, "max_backoff", 30.0, 0.0, 3600.0),
            linger=self.number(t, "linger", 0.2, 0.0, 10.0, zero=True),
        )

    def _read(self, path: Path, key: str) -> str:
        return self._read_bytes(path, key).decode("utf-8", "replace")

    def _read_bytes(self, path: Path, key: str) -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise self.error(key, f"cannot read {path}: {exc.strerror or exc}") from exc
