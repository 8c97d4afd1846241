"""Minting task-bound tokens (``POST /v1/tokens``), in the manner of an RFC 8693 token exchange.

The agent asks with a JSON request signed by its own key::

    {"agent": <DID>, "task_id": <text>, "tools": [<action>, …], "service": <name>, "resource": <name or prefix*>,
     "delegation": <entry id of the delegation to the agent>, "ttl": <seconds, 1..300>, "created": <seconds>,
     "nonce": <16..128 of [A-Za-z0-9._~-]>, "signature": <base64url Ed25519 signature>}

``signature`` is over the RFC 8785 canonical JSON of the request without ``signature``, by the agent's key current
on the log (``IdentityState.current_key``); docs/identity.md spells this out for independent clients. The registry
refuses, in this order, on the state of the latest verified checkpoint: a malformed request (400); a ``created``
more than ``CREATED_SKEW`` s from its clock (``TokenRequestStale``); a bad signature
(``TokenRequestSignatureInvalid``); an agent without a usable passport (``PassportRefused``); a nonce the agent used
in the last ``NONCE_WINDOW`` s (``TokenRequestReplayed``), or an agent that already used ``NONCES_PER_AGENT`` nonces
in that window (``TokenRequestsExhausted``, 429); a delegation chain that does not hold now or whose leaf is not to
the agent (``DelegationRefused``), and a tool, service or resource outside the leaf's scope (``ScopeRefused``).

Nonces are remembered in memory only (``NonceCache``, per process): a restart forgets them, which the ±60 s window
on ``created`` bounds to requests created in the last minute before the restart. Only a request whose signature
verified under the key of an agent holding a usable passport stores a nonce, and each agent has its own capacity:
anyone can make a did:key and sign requests with it, but such requests cannot fill the cache and shut minting
off for the registered agents. The token itself is described in ``verifier.tokens``; its ``exp`` is
``iat + ttl``.
"""

from __future__ import annotations

import re
import secrets
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from issuer.registry_keys import RegistryKey
from schemas.base64url import b64url
from schemas.errors import (
    DelegationRefused,
    InvalidParameter,
    Overloaded,
    TabellionError,
    TokenMalformed,
    TokenRequestReplayed,
    TokenRequestsExhausted,
    TokenRequestSignatureInvalid,
    TokenRequestStale,
)
from schemas.identity_statements import canonical_json
from verifier.delegation import Chain, check_chain
from verifier.identity_state import IdentityState
from verifier.passports import require_passport
from verifier.scopes import check_request
from verifier.tokens import ALG, MAX_TTL, SCOPE_TOKEN, TYP, b64url_decode, delegation_claims

CREATED_SKEW: Final = 60
NONCE_WINDOW: Final = 300
NONCES_PER_AGENT: Final = 100
"""Token requests one agent may make in ``NONCE_WINDOW`` s (each needs a fresh nonce, which is kept that long)."""
MAX_AGENTS: Final = 10_000
"""Agents whose nonces are kept at once: with ``NONCES_PER_AGENT``, at most 10^6 nonces in memory."""
MAX_TOOLS: Final = 64
MAX_TEXT: Final = 512
REQUEST_FIELDS: Final = frozenset({"agent", "task_id", "tools", "service", "resource", "delegation", "ttl",
                                   "created", "nonce", "signature"})
TOKEN_TYPE: Final = "urn:ietf:params:oauth:token-type:jwt"  # noqa: S105 - RFC 8693 §3, a type URI

_NONCE = re.compile(r"[A-Za-z0-9._~-]{16,128}", re.ASCII)
_ENTRY = re.compile(r"[0-9a-f]{64}", re.ASCII)


@dataclass(frozen=True)
class TokenRequest:
    agent: str
    task_id: str
    tools: tuple[str, ...]
    service: str
    resource: str
    delegation: str
    ttl: int
    created: int
    nonce: str
    signature: bytes
    signed: bytes  # the canonical JSON the signature covers


def _text(body: Mapping[str, Any], name: str) -> str:
    value = body[name]
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        raise InvalidParameter(f"token request {name} must be a non-empty string of at most {MAX_TEXT} characters")
    return value


def _int(body: Mapping[str, Any], name: str) -> int:
    value = body[name]
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**53:
        raise InvalidParameter(f"token request {name} must be a whole number")
    return value


def parse_request(body: Mapping[str, Any]) -> TokenRequest:
    """The request's fields, each checked for form (not yet its signature, time or authority)."""
    missing, extra = sorted(REQUEST_FIELDS - body.keys()), sorted(body.keys() - REQUEST_FIELDS)
    if missing or extra:
        raise InvalidParameter(f"token request fields missing: {', '.join(missing) or '-'}; "
                               f"unknown: {', '.join(extra)[:200] or '-'}")
    agent = _text(body, "agent")
    if not agent.startswith("did:"):
        raise InvalidParameter("token request agent must be the agent's DID")
    tools = body["tools"]
    if (not isinstance(tools, list) or not 0 < len(tools) <= MAX_TOOLS or len(set(map(str, tools))) != len(tools)
            or not all(isinstance(t, str) and SCOPE_TOKEN.fullmatch(t) for t in tools)):
        raise InvalidParameter(f"token request tools must be 1 to {MAX_TOOLS} distinct tool names without spaces")
    delegation = _text(body, "delegation")
    if not _ENTRY.fullmatch(delegation):
        raise InvalidParameter("token request delegation must be the delegation's entry id (64 lower-case hex)")
    ttl = _int(body, "ttl")
    if not 0 < ttl <= MAX_TTL:
        raise InvalidParameter(f"token request ttl {ttl} must be from 1 to {MAX_TTL} seconds")
    nonce = _text(body, "nonce")
    if not _NONCE.fullmatch(nonce):
        raise InvalidParameter("token request nonce must be 16 to 128 characters of [A-Za-z0-9._~-]")
    try:
        signature = b64url_decode(_text(body, "signature"), "the request signature")
    except TokenMalformed as exc:
        raise InvalidParameter(exc.detail) from exc
    unsigned = {name: value for name, value in body.items() if name != "signature"}
    return TokenRequest(
        agent=agent, task_id=_text(body, "task_id"), tools=tuple(tools), service=_text(body, "service"),
        resource=_text(body, "resource"), delegation=delegation, ttl=ttl, created=_int(body, "created"),
        nonce=nonce, signature=signature, signed=canonical_json(unsigned),
    )


def sign_request(key: Ed25519PrivateKey, request: Mapping[str, Any]) -> dict[str, Any]:
    """The request with its ``signature`` (what the agent sends): over the canonical JSON of the rest."""
    unsigned = {name: value for name, value in request.items() if name != "signature"}
    return {**unsigned, "signature": b64url(key.sign(canonical_json(unsigned)))}


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


class NonceCache:
    """Per agent, the nonces it used in the last ``window`` seconds: at most ``per_agent`` of them, for at most
    ``max_agents`` agents (least recently active first).

    Only what the window has passed is ever forgotten. An agent that used ``per_agent`` nonces in the window is
    refused (``TokenRequestsExhausted``, 429) until its oldest one expires, and other agents are unaffected; a new
    agent while ``max_agents`` agents all have nonces in the window is refused (``Overloaded``, 429).
    """

    def __init__(self, window: int = NONCE_WINDOW, per_agent: int = NONCES_PER_AGENT,
                 max_agents: int = MAX_AGENTS) -> None:
        if window < 1 or per_agent < 1 or max_agents < 1:
            raise ValueError("a nonce cache needs a window, per_agent and max_agents of at least 1")
        self.window = window
        self.per_agent = per_agent
        self.max_agents = max_agents
        self._agents: OrderedDict[str, OrderedDict[str, int]] = OrderedDict()  # agent -> nonce -> time used

    def __len__(self) -> int:
        """The agents tracked (for tests and metrics)."""
        return len(self._agents)

    def use(self, agent: str, nonce: str, now: int) -> None:
        """Record the nonce, or raise ``TokenRequestReplayed`` if the agent used it within the window (429 when the
        agent, or the cache, is at capacity)."""
        expired = now - self.window
        while self._agents and next(reversed(next(iter(self._agents.values())).values())) <= expired:
            self._agents.popitem(last=False)  # the least recently active agent's nonces have all expired
        seen = self._agents.get(agent)
        if seen is None:
            if len(self._agents) >= self.max_agents:
                oldest = next(reversed(next(iter(self._agents.values())).values()))
                raise Overloaded(f"token requests of {self.max_agents} agents are in the replay window; retry later",
                                 retry_after=max(1, oldest - expired))
            seen = self._agents[agent] = OrderedDict()
        while seen and next(iter(seen.values())) <= expired:
            seen.popitem(last=False)
        if nonce in seen:
            raise TokenRequestReplayed(f"nonce {nonce[:40]!r} was used by this agent within the last {self.window} s")
        if len(seen) >= self.per_agent:
            raise TokenRequestsExhausted(
                f"{agent[:200]} made {self.per_agent} token requests in the last {self.window} s, the most it may",
                retry_after=max(1, next(iter(seen.values())) - expired),
            )
        seen[nonce] = now
        self._agents.move_to_end(agent)


def check_request_signature(state: IdentityState, request: TokenRequest, now: int) -> None:
    """The request is fresh and signed by the agent's current key on the log (raises otherwise)."""
    if abs(now - request.created) > CREATED_SKEW:
        raise TokenRequestStale(f"the request was created at {request.created}, more than {CREATED_SKEW} s from "
                                f"{now}")
    try:
        key = state.current_key(request.agent)
    except TabellionError as exc:
        raise TokenRequestSignatureInvalid(f"the log knows no key for {request.agent[:200]}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise TokenRequestSignatureInvalid("the agent's current key is not Ed25519")
    try:
        key.verify(request.signature, request.signed)
    except InvalidSignature as exc:
        raise TokenRequestSignatureInvalid(
            f"the request signature does not verify under {request.agent[:200]}'s current key"
        ) from exc


@dataclass(frozen=True)
class MintedToken:
    token: str
    claims: dict[str, Any]

    def json(self) -> dict[str, Any]:
        ttl = self.claims["exp"] - self.claims["iat"]
        return {"token": self.token, "expires_at": self.claims["exp"], "chain": self.claims["delegation_chain"],
                "checkpoint": self.claims["checkpoint"], "issued_token_type": TOKEN_TYPE, "token_type": "Bearer",
                "expires_in": ttl, "scope": self.claims["scope"]}


def sign_jws(header: Mapping[str, Any], claims: Mapping[str, Any], key: Ed25519PrivateKey) -> str:
    """JWS compact serialization (RFC 7515 §7.1) of ``claims`` (compact JSON) under ``header``, Ed25519-signed."""
    parts = [b64url(canonical_json(dict(value))) for value in (header, claims)]
    signing_input = ".".join(parts)
    return f"{signing_input}.{b64url(key.sign(signing_input.encode('ascii')))}"


def token_claims(request: TokenRequest, chain: Chain, *, issuer: str, now: int, checkpoint: int) -> dict[str, Any]:
    """The token's claims (``verifier.tokens``): ``sub`` the chain's root principal, ``act`` its agents with the
    requesting agent, the leaf's, outermost (RFC 8693 §4.1)."""
    return {
        "iss": issuer, **delegation_claims(chain), "aud": request.service, "iat": now, "nbf": now,
        "exp": now + request.ttl, "jti": secrets.token_urlsafe(16), "task_id": request.task_id,
        "scope": " ".join(request.tools), "resource": request.resource, "delegation_chain": list(chain.entries),
        "checkpoint": checkpoint,
    }


def mint_token(body: Mapping[str, Any], *, state: IdentityState, key: RegistryKey, nonces: NonceCache, now: int,
               issuer: str, checkpoint: int) -> MintedToken:
    """Check the agent's signed request against the state and sign its token with ``key`` (see the docstring)."""
    request = parse_request(body)
    check_request_signature(state, request, now)
    require_passport(state, request.agent, now)
    nonces.use(request.agent, request.nonce, now)  # only now: see the module docstring
    if request.delegation not in state.delegations:
        raise DelegationRefused(f"{request.delegation} is not an accepted delegation on this log", "no_delegation")
    chain = check_chain(state, request.delegation, now)
    if chain.leaf.agent != request.agent:
        raise DelegationRefused(
            f"delegation entry {chain.leaf.entry} is to {chain.leaf.agent[:200]}, not to the requesting agent",
            "delegation_not_for_agent",
        )
    for tool in request.tools:
        check_request(chain.leaf.scope, request.service, tool, request.resource, f"delegation entry {chain.leaf.entry}")
    claims = token_claims(request, chain, issuer=issuer, now=now, checkpoint=checkpoint)
    header = {"alg": ALG, "kid": key.kid, "typ": TYP}
    return MintedToken(sign_jws(header, claims, key.private), claims)
