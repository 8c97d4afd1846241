"""Rego policies per connection, evaluated with ``regopy`` (rego-cpp) after the log has authorised a request.

A connection configured with ``policy = { file, query, id, version }`` allows a request only when the rule
``query`` names (``data.<package>.<rule>``, default ``data.tabellion.allow``) evaluates to ``true`` for the
request's input document (``policy_input``). Anything else denies, with ``PolicyDenied`` (403
``policy-denied``) whose ``reason_code`` says what the rule gave: ``false``, ``undefined`` (no rule body held
and no default), ``not_true`` (another value) or ``evaluation_failed`` (the engine reported an error, e.g. an
unknown function). The policy's ``id`` and ``version`` are recorded with every decision of the connection.

Each policy is compiled once at start-up into a rego-cpp bundle; a syntax error, a query that names a package
or rule the module does not define, or a module that fails on a sample input is a one-line
``GatewayConfigInvalid`` naming the file, line and column. Evaluation reuses the bundle (about 0.1 ms on this
project's machine); the interpreter holds the input between two calls, so each policy evaluates under its lock.

The input document (``input`` in Rego)::

    {"time": 1760000000, "connection": "mail-api", "service": "mail", "method": "GET", "path": "/proxy/…",
     "query": "x=1", "action": "read", "resource": "inbox/1",
     "agent": "did:key:z…", "keyid": "did:key:z…#z…", "verdict": "allow" | "warn",
     "passport": {"entry", "operator", "tier", "jurisdiction", "valid_from", "valid_until", "policy_bundle",
                  "machine_fingerprint"},
     "delegation": {"chain": [{"entry", "principal", "agent", "depth", "not_after"}, …],   # root first
                    "root_principal": "did:…"},
     "claim": {"entry", "service", "namespace"},
     "checkpoint": {"origin", "size"}}
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Final

from schemas.errors import GatewayConfigInvalid, PolicyDenied
from verifier.authority import Authorisation
from verifier.identity_state import IdentityState

from .config import Connection, PolicyConfig
from .state import LogPosition

RESULT_VAR: Final = "tabellion_result"
_UNDEFINED: Final = object()
_FAILED: Final = object()
_PACKAGE = re.compile(r"^[ \t]*package[ \t]+([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)", re.M | re.ASCII)
_ERROR_AT = re.compile(r"\(error\s+\d+:([^|\s]*)\|(\d+)\|(\d+)")
_ERROR_MSG = re.compile(r"\(errormsg\s+(\d+):")

# A plausible input, evaluated once at start-up: rego-cpp reports some mistakes (an unknown function) only
# when a rule is evaluated, and those should stop the start, not deny every request.
SAMPLE_INPUT: Final[dict[str, Any]] = {
    "time": 1_760_000_000, "connection": "sample", "service": "sample", "method": "GET",
    "path": "/proxy/sample/x", "query": "", "action": "read", "resource": "x", "agent": "did:key:z6Mk",
    "keyid": "did:key:z6Mk#z6Mk", "verdict": "allow",
    "passport": {"entry": "00" * 32, "operator": "did:key:z6Mk", "tier": "software", "jurisdiction": "EU",
                 "valid_from": 1_700_000_000, "valid_until": 1_800_000_000, "policy_bundle": "",
                 "machine_fingerprint": ""},
    "delegation": {"chain": [{"entry": "00" * 32, "principal": "did:key:z6Mk", "agent": "did:key:z6Mk",
                              "depth": 0, "not_after": 1_800_000_000}], "root_principal": "did:key:z6Mk"},
    "claim": {"entry": "00" * 32, "service": "sample", "namespace": "sample"},
    "checkpoint": {"origin": "sample", "size": 1},
}


class CompiledPolicy:
    """One connection's policy, compiled; ``check`` raises ``PolicyDenied`` unless the rule is ``true``."""

    def __init__(self, config: PolicyConfig, connection: str) -> None:
        self.config = config
        self.connection = connection
        self.id = config.id
        self.version = config.version
        self._lock = threading.Lock()
        try:
            import regopy
        except ImportError as exc:  # pragma: no cover - regopy is a dependency; a platform without its wheel
            raise GatewayConfigInvalid(
                f"{config.file}: connection {connection!r} has a Rego policy, but regopy cannot be imported: {exc}"
            ) from exc
        self._regopy = regopy
        self._interpreter = regopy.Interpreter()
        self._interpreter.log_level = regopy.LogLevel.NONE  # errors are raised, not printed
        _check_query_names_a_rule(config)
        try:
            self._interpreter.add_module(config.file.name, config.source)
            self._bundle = self._interpreter.build(f"{RESULT_VAR} := {config.query}")
        except regopy.RegoError as exc:
            raise GatewayConfigInvalid(f"{config.file}: {_rego_error_text(str(exc), config.source)}") from exc
        if not self._bundle.ok():
            raise GatewayConfigInvalid(f"{config.file}: the policy does not compile")
        try:
            self.check(SAMPLE_INPUT)
        except PolicyDenied as exc:
            if exc.reason_code == "evaluation_failed":
                raise GatewayConfigInvalid(f"{config.file}: {exc.detail}") from exc

    def check(self, document: Mapping[str, Any]) -> None:
        """Return if the rule is ``true`` for ``document``; raise ``PolicyDenied`` naming what it gave otherwise."""
        with self._lock:
            try:
                self._interpreter.set_input(dict(document))
                ok, text = _query_bundle(self._interpreter, self._bundle)
            except self._regopy.RegoError as exc:
                ok, text = False, str(exc)
        try:
            value = _result(text) if ok else _FAILED
        except ValueError:  # not JSON: the engine's error text
            value = _FAILED
        if value is _FAILED:
            self._deny("evaluation_failed", f"failed: {_rego_error_text(text, self.config.source)}")
        if value is _UNDEFINED:
            self._deny("undefined", "is undefined for this request")
        if value is True:
            return
        if value is False:
            self._deny("false", "is false for this request")
        self._deny("not_true", f"is {json.dumps(value)[:80]}, not true, for this request")

    def _deny(self, reason_code: str, what: str) -> None:
        raise PolicyDenied(
            f"connection {self.connection!r}: policy {self.id} version {self.version}: {self.config.query} {what}",
            self.id, self.version, reason_code,
        )


def compile_policies(connections: Iterable[Connection]) -> dict[str, CompiledPolicy]:
    """The compiled policy of every connection that has one, by connection id; the first that does not
    compile raises ``GatewayConfigInvalid``."""
    return {c.id: CompiledPolicy(c.policy, c.id) for c in connections if c.policy is not None}


def policy_input(
    *, now: int, connection: Connection, method: str, path: str, query: str, authorisation: Authorisation,
    keyid: str, state: IdentityState, position: LogPosition,
) -> dict[str, Any]:
    """The input document of an authorised request (see the module docstring); read ``state`` inside the
    snapshot that authorised it."""
    passport = state.passports[authorisation.agent]
    chain = [state.delegations[entry] for entry in authorisation.chain]
    claim = state.claims.get(authorisation.claim)
    return {
        "time": now, "connection": connection.id, "service": authorisation.service, "method": method,
        "path": path, "query": query, "action": authorisation.action, "resource": authorisation.resource,
        "agent": authorisation.agent, "keyid": keyid, "verdict": authorisation.verdict.value,
        "passport": {
            "entry": passport.entry, "operator": passport.operator, "tier": passport.tier,
            "jurisdiction": passport.jurisdiction, "valid_from": passport.valid_from,
            "valid_until": passport.valid_until, "policy_bundle": passport.policy_bundle,
            "machine_fingerprint": passport.machine_fingerprint,
        },
        "delegation": {
            "chain": [{"entry": d.entry, "principal": d.principal, "agent": d.agent, "depth": d.depth,
                       "not_after": d.not_after} for d in chain],
            "root_principal": authorisation.root_principal,
        },
        "claim": {"entry": authorisation.claim, "service": claim.service if claim else None,
                  "namespace": claim.namespace if claim else None},
        "checkpoint": {"origin": position.origin, "size": position.size},
    }


def _query_bundle(interpreter: Any, bundle: Any) -> tuple[bool, str]:
    """Evaluate ``bundle`` with the interpreter's input: (ok, the output text). ``Interpreter.query_bundle`` is
    not used because it cannot report an evaluation error (it fails parsing the error text as JSON)."""
    from regopy import rego_shared

    output = rego_shared.rego_bundle_query(interpreter._impl, bundle._impl)
    try:
        return bool(rego_shared.rego_output_ok(output)), str(rego_shared.rego_output_string(output))
    finally:
        rego_shared.rego_free_output(output)


def _result(text: str) -> Any:
    """The value bound to ``RESULT_VAR`` in an output text, or ``_UNDEFINED``; ``ValueError`` if not JSON."""
    if text == "undefined":
        return _UNDEFINED
    parsed = json.loads(text)
    results = parsed if isinstance(parsed, list) else [parsed]
    bindings = [r.get("bindings") for r in results if isinstance(r, dict)]
    values = [b[RESULT_VAR] for b in bindings if isinstance(b, dict) and RESULT_VAR in b]
    return values[0] if values else _UNDEFINED


def _check_query_names_a_rule(config: PolicyConfig) -> None:
    """Refuse a query outside the module's package or naming no rule of it: it could only ever deny."""
    package = _PACKAGE.search(config.source)
    if package is None:
        return  # the compiler names what is wrong
    prefix = f"data.{package.group(1)}."
    rule = config.query.removeprefix(prefix).split(".")[0]
    if not config.query.startswith(prefix):
        raise GatewayConfigInvalid(f"{config.file}: the query {config.query} is outside the module's package "
                                   f"{package.group(1)} (it would deny every request)")
    if not re.search(rf"^[ \t]*(?:default[ \t]+)?{re.escape(rule)}\b", config.source, re.M):
        raise GatewayConfigInvalid(f"{config.file}: the query {config.query} names no rule {rule!r} of package "
                                   f"{package.group(1)} (it would deny every request)")


def _rego_error_text(raw: str, source: str) -> str:
    """rego-cpp's error (an S-expression) as one line: ``line L, column C: message``."""
    message = "the Rego engine refused the module"
    found = _ERROR_MSG.search(raw)
    if found is not None:
        start = found.end()
        message = raw[start:start + int(found.group(1))]
    at = _ERROR_AT.search(raw)
    if at is None:
        return message
    before = source.encode()[:int(at.group(2))]
    line, column = before.count(b"\n") + 1, len(before) - (before.rfind(b"\n") + 1) + 1
    return f"line {line}, column {column}: {message}"
