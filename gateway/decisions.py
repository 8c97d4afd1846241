"""Decisions: may this signed agent request go through this connection, by what the log says now?

``Gatekeeper.decide`` takes a request as received (``gateway.signatures.Request``) and, holding one snapshot
of the followed log (``gateway.state``):

1. verifies its RFC 9421 signature with the key the log holds for the agent the ``keyid`` names (the agent
   DID, or its did:key verification method): only the agent's *current* key, and only for an agent with a
   passport on the log (anyone else is ``signature-key-unknown``);
2. checks the identity headers against the log: ``Tabellion-Subject`` is that agent, ``Tabellion-Agent-Key``
   names that key, ``Tabellion-Agent-Passport`` is its current passport entry and ``Tabellion-Namespace`` the
   namespace of the operator that issued it (``agent-identity-mismatch`` otherwise);
3. takes a token from the agent's bucket on a connection with a ``rate`` (``gateway.ratelimit``: else
   ``rate-limited``, 429), now that the agent is proven and before any authority work;
4. asks ``verifier.authority.authorise`` whether the agent may do ``action`` (the method lower-cased, or the
   connection's mapping) on ``resource`` (the path after the connection id) of the connection's service;

then, outside the snapshot, remembers the nonce (``gateway.replay``: shared SQLite, survives restarts), so a
replay is refused as such whatever else is wrong with it (and gives its token back). On a connection with a
Rego policy (``gateway.policies``), a request the log authorises must then also satisfy the policy
(``policy-denied``, 403); every decision of such a connection records the policy's id and version.
ALLOW and WARN return the ``Decision``; a refusal
raises the error (with its stable ``code`` and, for authority refusals, ``reason_code``). Either way the
decision is written as one JSON line to the ``gateway.decisions`` logger and handed to the ``DecisionSink``
(no-op by default; the app plugs in ``gateway.actions.ActionRecorder``).

``request_digest`` is ``sha-256:<hex>`` of ``METHOD LF target-uri LF hex(SHA-256(body))``: what was asked,
computable by anyone who holds the request.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, fields, replace
from typing import Any, Final, Protocol
from urllib.parse import quote, unquote, urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from schemas.errors import (
    AgentIdentityMismatch,
    AuthorityRefused,
    BadInput,
    RateLimited,
    ReplayDetected,
    ResourceInvalid,
    SignatureParameterMissing,
    TabellionError,
)
from transparency.problem_details import problem_status
from verifier.authority import Authorisation, authorise
from verifier.identity_state import DID_KEY, IdentityState, multikey_key

from .config import Connection, HeaderCredentials
from .errors import MethodOverrideRefused
from .policies import CompiledPolicy, policy_input
from .proxy import METHOD_OVERRIDES, URL_OVERRIDES, check_signed_fields
from .ratelimit import RateLimiter
from .replay import NonceStore
from .signatures import AgentKey, KeyResolver, Request, verify_request
from .state import View

decision_log = logging.getLogger("gateway.decisions")
_METHOD = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,20}")

REDACTED: Final = "***"
SENSITIVE_HEADERS: Final = frozenset({
    "authorization", "proxy-authorization", "cookie", "set-cookie", "signature",
})
Clock = Callable[[], float]
Authority = Callable[[IdentityState, str, str, str, str, int], Authorisation]
"""Decides (state, agent, service, action, resource, now): ``verifier.authority.authorise`` unless a connection
kind asks otherwise (``gateway.mcp``: session methods need a usable passport only)."""


class StateSource(Protocol):
    """Where decisions read the log-derived state (``gateway.state.FollowedLog``)."""

    def snapshot(self) -> AbstractContextManager[View]: ...


class DecisionSink(Protocol):
    """Receives every decision, allowed or refused (``gateway.actions.ActionRecorder``)."""

    def record(self, decision: Decision) -> None: ...


class NullSink:
    def record(self, decision: Decision) -> None:
        return None


@dataclass(frozen=True)
class Decision:
    """One decision; ``outcome`` is ``allow``, ``warn`` (allowed, e.g. a passport about to expire) or
    ``refuse``; ``code`` is ``ok`` or the refusal's error code, ``reason_code`` the authority's reason."""

    at: int
    connection: str
    service: str
    method: str
    action: str
    resource: str
    outcome: str
    status: int
    code: str
    reason_code: str
    request_digest: str
    agent: str | None = None
    keyid: str | None = None
    passport: str | None = None
    chain: tuple[str, ...] = ()
    root_principal: str | None = None
    claim: str | None = None
    log_size: int | None = None  # the checkpoint the decision was taken on: its size and root
    log_root: str | None = None
    worker: int = field(default_factory=os.getpid)  # the process that decided (several workers: gateway.server)
    policy_id: str | None = None
    policy_version: str | None = None
    detail: str = ""
    headers: tuple[tuple[str, str], ...] | None = field(default=None, repr=False)
    covered: tuple[str, ...] = field(default=(), repr=False)  # what the signature covers (not recorded)

    @property
    def allowed(self) -> bool:
        return self.outcome != "refuse"

    def to_json(self) -> dict[str, Any]:
        record = {name: getattr(self, name) for name in _DECISION_FIELDS}  # asdict's deep copy costs more
        record["chain"] = list(self.chain)
        if self.headers is not None:
            record["headers"] = [list(h) for h in self.headers]
        return record


_DECISION_FIELDS: Final = tuple(f.name for f in fields(Decision) if f.name not in ("covered", "headers"))


# --- building the request -----------------------------------------------------------------------------


def target_uri(scheme: str, host: str | None, raw_path: str, query: str, public_url: str | None = None) -> str:
    """The absolute target URI the client addressed: ``public_url`` (scheme, authority and any path prefix
    the gateway is published under) or else ``scheme://Host``, then the path as sent and the query."""
    if public_url is not None:
        base = public_url.rstrip("/")
    else:
        if not host:
            raise BadInput("the request has no Host header: its target URI is unknown")
        base = f"{scheme}://{host}"
    return base + raw_path + (f"?{query}" if query else "")


_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_ENCODED_DOT_OR_PERCENT = re.compile(r"%(2[eE]|25)")
# What a path segment may hold unencoded when it goes upstream (RFC 3986 pchar without ";"): everything else is
# percent-encoded, so the upstream decodes exactly the resource that was decided on.
_PCHAR_SAFE: Final = "!$&'()*+,=:@"


def resource_of(rest: str) -> str:
    """The resource a proxied path names: the raw path after ``/proxy/{connection}/``, percent-decoded.

    Refused (``resource-invalid``) when an upstream could read it as another path than the one decided on:
    ``.``/``..`` segments, encoded dots (``%2e``) and encoded percents (``%25``: ``%252e`` is a dot to a server
    that decodes twice), a ``%`` not followed by two hex digits (``%u002e``, IIS), ``;`` (path parameters:
    ``inbox/..;/outbox`` is ``outbox`` to Tomcat) raw or encoded, an empty segment but a last one, encoded
    ``/``, backslashes, control characters, anything not ASCII. What goes upstream is ``forwarded_path`` of the
    result, never the raw path.
    """
    if not rest.isascii() or "\\" in rest or ";" in rest:
        raise ResourceInvalid("the path must be ASCII without backslashes or ';'")
    if _PERCENT.search(rest) or _ENCODED_DOT_OR_PERCENT.search(rest):
        raise ResourceInvalid("the path has an encoded dot or percent sign, or a '%' that is not an escape")
    raws = rest.split("/")
    segments = []
    for i, raw in enumerate(raws):
        try:
            segment = unquote(raw, errors="strict") if "%" in raw else raw
        except UnicodeDecodeError as exc:
            raise ResourceInvalid(f"the path segment {raw[:60]!r} is not percent-encoded UTF-8") from exc
        if segment in (".", "..") or any(c in segment for c in "/\\;") or not segment.isprintable():
            raise ResourceInvalid(f"the path segment {raw[:60]!r} could name another resource upstream")
        if not segment and 0 < len(raws) - 1 != i:
            raise ResourceInvalid("the path has an empty segment ('//'), which upstreams merge differently")
        segments.append(segment)
    return "/".join(segments)


def forwarded_path(resource: str) -> str:
    """The path sent upstream for a decided ``resource``: each segment percent-encoded the one way, so that the
    upstream decodes exactly ``resource`` whatever escapes the agent chose."""
    return "/".join(quote(segment, safe=_PCHAR_SAFE) for segment in resource.split("/"))


def request_digest(request: Request) -> str:
    body = hashlib.sha256(request.body).hexdigest()
    line = f"{request.method}\n{request.target_uri}\n{body}".encode("utf-8", "surrogateescape")
    return "sha-256:" + hashlib.sha256(line).hexdigest()


def redact_headers(headers: Sequence[tuple[str, str]], also: Sequence[str] = ()) -> tuple[tuple[str, str], ...]:
    """The headers with the values of ``Signature``, ``Authorization``, cookies and ``also`` replaced."""
    hidden = SENSITIVE_HEADERS | {n.lower() for n in also}
    return tuple((k, REDACTED if k.lower() in hidden else v) for k, v in headers)


# --- the agent and its key ----------------------------------------------------------------------------


def agent_of(keyid: str) -> str:
    """The agent DID a keyid names: the DID itself, or the DID part of a verification method."""
    return keyid.partition("#")[0]


def agent_key_resolver(state: IdentityState) -> KeyResolver:
    """Maps a keyid to the agent's current key (Ed25519, or P-256 as a TPM holds it), for an agent that has a
    passport on the log."""

    def resolve(keyid: str) -> AgentKey | None:
        agent, _, fragment = keyid.partition("#")
        if agent not in state.passports:
            return None
        multikey = state.current_multikey(agent)
        if multikey is None or (fragment and fragment != multikey):
            return None
        key = multikey_key(multikey)
        return key if isinstance(key, Ed25519PublicKey | ec.EllipticCurvePublicKey) else None

    return resolve


def _named_key(value: str) -> str:
    """The multikey a ``Tabellion-Agent-Key`` value names: ``z…``, ``did:key:z…`` or ``did:key:z…#z…``."""
    did, _, fragment = value.partition("#")
    return fragment or did.removeprefix(DID_KEY)


def check_identity_headers(request: Request, state: IdentityState, agent: str) -> None:
    """Raise ``AgentIdentityMismatch`` unless the identity headers say what the log says of ``agent``."""
    passport = state.passports[agent]
    controller = state.controllers.get(passport.operator)
    key = request.field("tabellion-agent-key")
    expected = {
        "tabellion-subject": (agent, request.field("tabellion-subject")),
        "tabellion-agent-key": (state.current_multikey(agent), None if key is None else _named_key(key)),
        "tabellion-agent-passport": (passport.entry, request.field("tabellion-agent-passport")),
        "tabellion-namespace": (controller.namespace if controller else None, request.field("tabellion-namespace")),
    }
    for name, (logged, sent) in expected.items():
        if sent is None or sent != logged:
            raise AgentIdentityMismatch(
                f"{name} is {str(sent)[:200]!r}; the log holds {str(logged)[:200]!r} for the signing agent"
            )


# --- deciding -----------------------------------------------------------------------------------------


class Gatekeeper:
    def __init__(
        self,
        log: StateSource,
        nonces: NonceStore,
        *,
        max_skew: int = 30,
        max_age: int = 300,
        sink: DecisionSink | None = None,
        clock: Clock = time.time,
        log_headers: bool = False,
        policies: Mapping[str, CompiledPolicy] | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.log = log
        self.nonces = nonces
        self.max_skew = max_skew
        self.max_age = max_age
        self.sink: DecisionSink = sink or NullSink()
        self.clock = clock
        self.log_headers = log_headers
        self._nonce_lock = threading.Lock()  # one SQLite connection, used from the threadpool
        self.policies: Mapping[str, CompiledPolicy] = policies or {}  # by connection id (gateway.policies)
        self.limiter = limiter if limiter is not None else RateLimiter({})  # gateway.ratelimit

    def decide(self, connection: Connection, request: Request, resource: str, *, action: str | None = None,
               authority: Authority = authorise) -> Decision:
        """The decision for ``request`` through ``connection``: returned if allowed, else its error raised.
        ``action`` defaults to the connection's action for the method; ``authority`` to ``authorise``."""
        now = int(self.clock())
        draft = _Draft(Decision(
            at=now, connection=connection.id, service=connection.service, method=request.method,
            action=action or connection.action_for(request.method), resource=resource, outcome="refuse", status=0,
            code="", reason_code="", request_digest=request_digest(request),
            headers=redact_headers(request.headers, _credential_headers(connection)) if self.log_headers else None,
            policy_id=connection.policy.id if connection.policy else None,
            policy_version=connection.policy.version if connection.policy else None,
        ))
        try:
            decision = self._decide(connection, request, draft, now, authority, overridable=action is None)
        except TabellionError as exc:
            self._record(replace(draft.decision, status=problem_status(exc), code=exc.code,
                                 reason_code=getattr(exc, "reason_code", exc.code), detail=exc.detail))
            raise
        self._record(decision)
        return decision

    def _decide(self, connection: Connection, request: Request, draft: _Draft, now: int,
                authority: Authority = authorise, *, overridable: bool = True) -> Decision:
        """The allowed decision, or raise the refusal; ``draft`` gathers what is known on the way (the agent,
        the log size) so that a refusal is recorded with it. ``overridable``: a signed method override decides
        the action (an HTTP connection); else it is refused (an MCP message names its own action)."""
        with self.log.snapshot() as view:
            verified = verify_request(
                request, key_resolver=agent_key_resolver(view.state), now=now, max_skew=self.max_skew,
                max_age=self.max_age, lowercase_method_compat=connection.lowercase_method_compat,
            )
            agent = agent_of(verified.keyid)
            decision = draft.decision = replace(draft.decision, agent=agent, keyid=verified.keyid,
                                                log_size=view.position.size, log_root=view.position.root_hash.hex(),
                                                passport=view.state.passports[agent].entry,
                                                covered=verified.covered_components)
            check_identity_headers(request, view.state, agent)
            check_signed_fields(request.headers, verified.covered_components)
            override = signed_method_override(request, verified.covered_components)
            if override is not None:
                if not overridable:
                    raise MethodOverrideRefused(f"a signed method override ({override[:20]}) on an MCP connection")
                decision = draft.decision = replace(decision, action=connection.action_for(override))
            outcome: Authorisation | AuthorityRefused | RateLimited
            try:
                self.limiter.take(connection.id, agent)  # the agent is proven; the authority's work is still to do
                outcome = authority(view.state, agent, connection.service, decision.action, decision.resource, now)
            except (AuthorityRefused, RateLimited) as exc:
                outcome = exc
            policy_document = self._policy_input(connection, request, verified.keyid, outcome, view, now)
        if verified.nonce is None:
            raise SignatureParameterMissing("the signature has no nonce parameter")
        try:
            with self._nonce_lock:
                self.nonces.remember(agent, verified.nonce, verified.valid_until, now)
        except ReplayDetected:
            if not isinstance(outcome, RateLimited):
                self.limiter.refund(connection.id, agent)  # a replay is not served: its token goes back
            raise
        if isinstance(outcome, AuthorityRefused | RateLimited):
            raise outcome
        authorisation = outcome
        allowed = replace(
            decision, outcome=authorisation.verdict.value, status=200, code="ok",
            reason_code=authorisation.reason_code, chain=authorisation.chain,
            root_principal=authorisation.root_principal, claim=authorisation.claim,
            detail=f"{decision.action} on {decision.resource[:200]!r} of {connection.service!r}",
        )
        if policy_document is not None:  # gateway.policies: the log allows; the connection's policy must too
            draft.decision = replace(allowed, outcome="refuse")
            self.policies[connection.id].check(policy_document)
        return allowed

    def _policy_input(self, connection: Connection, request: Request, keyid: str,
                      outcome: Authorisation | TabellionError, view: View, now: int) -> dict[str, Any] | None:
        """The policy's input document for an authorised request on a connection with a policy, else None."""
        if connection.id not in self.policies or not isinstance(outcome, Authorisation):
            return None
        target = urlsplit(request.target_uri)
        return policy_input(now=now, connection=connection, method=request.method, path=target.path,
                            query=target.query, authorisation=outcome, keyid=keyid, state=view.state,
                            position=view.position)

    def _record(self, decision: Decision) -> None:
        decision_log.info(json.dumps(decision.to_json(), sort_keys=True, separators=(",", ":")))
        self.sink.record(decision)


@dataclass
class _Draft:
    decision: Decision


def _credential_headers(connection: Connection) -> tuple[str, ...]:
    credentials = connection.credentials
    return tuple(name for name, _ in credentials.headers) if isinstance(credentials, HeaderCredentials) else ()


def signed_method_override(request: Request, covered: Sequence[str]) -> str | None:
    """The method a signed override header asks the upstream to use, or None. Unsigned overrides are dropped
    on the way up (``gateway.proxy``); a signed URL override (``X-Original-URL``, ``X-Rewrite-URL``) would have
    the upstream serve another path than the one decided on, and is refused (``MethodOverrideRefused``)."""
    urls = sorted(URL_OVERRIDES.intersection(covered))
    if urls:
        raise MethodOverrideRefused(f"the signature covers {urls[0]}: the gateway decides on the request's own path")
    methods = {value.strip() for name in METHOD_OVERRIDES.intersection(covered)
               if (value := request.field(name)) is not None}
    if not methods:
        return None
    method = methods.pop()
    if methods or not _METHOD.fullmatch(method):
        raise MethodOverrideRefused("the signed method override headers do not name one HTTP method")
    return method.upper()


def split_proxy_path(raw_path: str) -> tuple[str, str]:
    """``/proxy/{connection_id}/{rest}`` (raw, as sent) -> ``(connection_id, rest)``."""
    prefix = "/proxy/"
    if not raw_path.startswith(prefix):
        raise ResourceInvalid("not a /proxy/{connection}/... path")
    connection_id, _, rest = raw_path[len(prefix):].partition("/")
    return connection_id, rest
