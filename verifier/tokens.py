"""Task-bound tokens, verified offline: an RFC 7519 JWT in JWS compact form, signed EdDSA (RFC 8037).

The registry (``issuer.tokens``) mints a token for one agent, one task, a few tools of one service on one
resource, for at most ``MAX_TTL`` seconds. Anyone holding the registry's public keys (``GET /registry/keys``, a
JWK Set) and a state folded from the log checks it here, with no network.

The token
---------
Header: exactly ``{"alg": "EdDSA", "kid": <registry key kid>, "typ": "JWT"}``; ``kid`` is the RFC 7638 JWK
thumbprint (SHA-256, base64url) of the registry's Ed25519 key. Any other ``alg`` (``none``, ``HS256``, ``ES256``…)
and any other header member (``jku``, ``jwk``, ``x5u``, ``crit``…) is refused: keys come only from the key set
given. Claims (all required, nothing else)::

    iss               the registry's did:web
    sub               the root principal's DID: the operator the authority comes from, on whose behalf the agent acts
    aud               the service the token is for
    iat, nbf, exp     seconds; iat <= nbf < exp, exp - iat <= MAX_TTL
    jti               unique token id
    task_id           the task the agent asked for
    scope             the tools (actions of the delegation), space-separated (RFC 8693 §4.2)
    resource          the resource, or a ``…*`` prefix pattern (``verifier.scopes``)
    delegation_chain  the delegation entry ids, root -> leaf; the root's principal is ``sub``, the leaf's agent
                      ``act.sub``
    checkpoint        the tree size the registry decided on
    act               the actors (RFC 8693 §4.1): the agent holding the token outermost, see ``actor_claim``

The ``act`` order
-----------------
RFC 8693 §4.1: "The act (actor) claim provides a means within a JWT to express that delegation has occurred and
identify the acting party to whom authority has been delegated", and "A chain of delegation can be expressed by
nesting one act claim within another. The outermost act claim represents the current actor while nested act
claims represent prior actors. The least recent actor is the most deeply nested." The party acted for is the
token's ``sub``. A delegation chain maps onto this as follows: ``sub`` is the root principal (the operator who
granted the root delegation: every authority in the chain is its authority); the outermost ``act.sub`` is the
agent of the leaf delegation, the agent that holds the token and acts now; each nested ``act.sub`` is the agent
of the delegation above (who acted before by delegating further), and the most deeply nested one is the agent
of the root delegation, the least recent actor. For operator -> A -> B -> C (C holds the token) that is
``{"sub": op, "act": {"sub": C, "act": {"sub": B, "act": {"sub": A}}}}``; a single delegation operator -> A is
``{"sub": op, "act": {"sub": A}}``, the shape of RFC 8693 Figure 4. Each level holds ``sub`` only. Per RFC 8693
only the outermost ``act`` is for access control and the nested ones are informational; this verifier
nevertheless requires the whole nesting to equal the chain's agents on the log.

What ``verify_token`` checks
----------------------------
The form (strict base64url without padding, JSON objects without duplicate members, the header above, ``act``
nested objects of ``sub`` and ``act`` only), the signature under the key named by ``kid``, the time
(``nbf``/``exp`` with ``leeway``, lifetime at most ``MAX_TTL``), the audience, the tool and resource asked for,
and against the log state at ``now``: the chain is the accepted delegations root -> leaf, granted by ``sub`` and
ending at the current actor (``act.sub``), the ``act`` nesting is its agents, the agent's passport is usable,
every link is unrevoked and unexpired, and the leaf's scope still covers the token. A
revocation on the log therefore voids every token minted before it, as soon as the state is folded past it.

Token defects raise the ``TokenInvalid`` family; authority failures the ``AuthorityRefused`` family.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from schemas.base64url import b64url
from schemas.base64url import b64url_decode as _b64url_decode
from schemas.errors import (
    MalformedKey,
    TokenAlgorithmRefused,
    TokenAudienceMismatch,
    TokenChainMismatch,
    TokenExpired,
    TokenIssuerMismatch,
    TokenKeyUnknown,
    TokenLifetimeTooLong,
    TokenMalformed,
    TokenNotYetValid,
    TokenScopeRefused,
    TokenSignatureInvalid,
)
from verifier.delegation import Chain, chain_of, check_chain
from verifier.identity_state import IdentityState
from verifier.passports import PassportStatus, require_passport
from verifier.scopes import check_request, resource_covered

ALG: Final = "EdDSA"
TYP: Final = "JWT"
MAX_TTL: Final = 300
"""The longest lifetime of a token: ``exp - iat`` at most this many seconds."""
DEFAULT_LEEWAY: Final = 5
MAX_TOKEN_CHARS: Final = 16 * 1024
HEADER_MEMBERS: Final = frozenset({"alg", "kid", "typ"})
CLAIMS: Final = frozenset({"iss", "sub", "aud", "iat", "nbf", "exp", "jti", "task_id", "scope", "resource",
                           "delegation_chain", "checkpoint", "act"})
JWK_REQUIRED: Final = {"kty": "OKP", "crv": "Ed25519"}
ED25519_SIZE: Final = 32
SIGNATURE_SIZE: Final = 64

_ENTRY = re.compile(r"[0-9a-f]{64}", re.ASCII)
SCOPE_TOKEN: Final = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+", re.ASCII)
"""RFC 6749 §3.3 scope-token: what one tool name may be (no spaces, quotes or backslashes)."""

JwkSet = Mapping[str, Any]
"""A JWK Set (RFC 7517 §5) as parsed JSON: ``{"keys": [{kty, crv, x, kid, …}, …]}``."""
TokenKeys = Mapping[str, Ed25519PublicKey] | JwkSet
"""The registry's public keys: kid -> Ed25519 key, or the JWK Set that ``GET /registry/keys`` serves."""


# --- base64url and JWK ------------------------------------------------------------------------------------


def b64url_decode(text: str, what: str) -> bytes:
    """Strict, canonical base64url without padding (RFC 7515 §2); ``TokenMalformed`` otherwise."""
    return _b64url_decode(text, what, TokenMalformed, canonical=True)


def public_jwk(key: Ed25519PublicKey) -> dict[str, str]:
    """The required members of the OKP JWK of an Ed25519 key (RFC 8037 §2)."""
    return {"crv": "Ed25519", "kty": "OKP", "x": b64url(key.public_bytes(Encoding.Raw, PublicFormat.Raw))}


def jwk_thumbprint(key: Ed25519PublicKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256) of the key's OKP JWK, base64url: the kid of a registry key."""
    members = public_jwk(key)  # RFC 7638 §3.2: required members only, in lexicographic order, no whitespace
    text = json.dumps(members, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return b64url(hashlib.sha256(text.encode("ascii")).digest())


def key_from_jwk(jwk: object) -> tuple[str, Ed25519PublicKey]:
    """``(kid, key)`` of a public Ed25519 JWK; its ``kid``, when present, must be its RFC 7638 thumbprint."""
    if not isinstance(jwk, Mapping):
        raise MalformedKey("a JWK must be a JSON object")
    if "d" in jwk:
        raise MalformedKey("the JWK carries a private key (d); only public keys are accepted")
    for name, value in JWK_REQUIRED.items():
        if jwk.get(name) != value:
            raise MalformedKey(f"JWK {name} is {str(jwk.get(name))[:40]!r}; only OKP Ed25519 keys sign tokens")
    if jwk.get("alg", ALG) != ALG or jwk.get("use", "sig") != "sig":
        raise MalformedKey(f"the JWK is for alg {str(jwk.get('alg'))[:40]!r} / use {str(jwk.get('use'))[:40]!r}")
    x = jwk.get("x")
    try:
        raw = b64url_decode(x, "JWK x") if isinstance(x, str) else b""
    except TokenMalformed as exc:
        raise MalformedKey(exc.detail) from exc
    if len(raw) != ED25519_SIZE:
        raise MalformedKey(f"JWK x must be {ED25519_SIZE} bytes of an Ed25519 public key")
    key = Ed25519PublicKey.from_public_bytes(raw)
    kid = jwk_thumbprint(key)
    if jwk.get("kid", kid) != kid:
        raise MalformedKey(f"JWK kid {str(jwk.get('kid'))[:60]!r} is not the key's RFC 7638 thumbprint {kid}")
    return kid, key


def key_map(keys: TokenKeys) -> dict[str, Ed25519PublicKey]:
    """kid -> key from a JWK Set or from a mapping of kids to Ed25519 keys."""
    if "keys" in keys:  # a kid is a 43-character thumbprint, never "keys"
        listed = keys["keys"]
        if not isinstance(listed, list):
            raise MalformedKey("a JWK Set's keys must be a JSON array")
        return dict(key_from_jwk(jwk) for jwk in listed)
    result: dict[str, Ed25519PublicKey] = {}
    for kid, key in keys.items():
        if not isinstance(kid, str) or not isinstance(key, Ed25519PublicKey):
            raise MalformedKey("registry keys must map kids to Ed25519 public keys, or be a JWK Set")
        result[kid] = key
    return result


# --- JWS compact --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Jws:
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise TokenMalformed(f"the token repeats the JSON member {name[:40]!r}")
        result[name] = value
    return result


def _no_constant(name: str) -> Any:
    raise TokenMalformed(f"the token holds the non-JSON number {name}")


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise TokenMalformed(f"the token's {what} is not JSON: {str(exc)[:200]}") from exc
    if not isinstance(value, dict):
        raise TokenMalformed(f"the token's {what} is not a JSON object")
    return value


def parse_jws(token: str) -> Jws:
    """Split and decode a JWS compact serialization strictly; check the header (alg EdDSA only)."""
    if not isinstance(token, str) or not token.isascii() or len(token) > MAX_TOKEN_CHARS:
        raise TokenMalformed(f"a token is an ASCII string of at most {MAX_TOKEN_CHARS} characters")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenMalformed(f"a JWS compact token has 3 parts separated by '.', this one has {len(parts)}")
    header = _json_object(b64url_decode(parts[0], "the token header"), "header")
    alg = header.get("alg")
    if alg != ALG:
        raise TokenAlgorithmRefused(f"token alg {str(alg)[:40]!r} is refused; only {ALG} (RFC 8037) is accepted")
    extra = sorted(header.keys() - HEADER_MEMBERS)
    if extra:
        raise TokenMalformed(f"the token header has members this verifier does not accept: {', '.join(extra)[:200]}")
    if header.get("typ") != TYP:
        raise TokenMalformed(f"token typ must be {TYP!r}")
    if not isinstance(header.get("kid"), str):
        raise TokenMalformed("the token header names no kid")
    claims = _json_object(b64url_decode(parts[1], "the token payload"), "payload")
    signature = b64url_decode(parts[2], "the token signature")
    if len(signature) != SIGNATURE_SIZE:
        raise TokenSignatureInvalid(f"an Ed25519 signature is {SIGNATURE_SIZE} bytes, not {len(signature)}")
    return Jws(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)


# --- claims ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedToken:
    """A token that verified; ``principals`` are the chain's principals root -> leaf."""

    kid: str
    issuer: str
    agent: str
    audience: str
    issued_at: int
    not_before: int
    expires_at: int
    jti: str
    task_id: str
    tools: tuple[str, ...]
    resource: str
    chain: tuple[str, ...]
    checkpoint: int
    principals: tuple[str, ...]
    passport: PassportStatus
    claims: dict[str, Any]

    @property
    def root_principal(self) -> str:
        return self.principals[0]


def actor_claim(actors: Sequence[str]) -> dict[str, Any]:
    """The RFC 8693 §4.1 ``act`` claim for actors given least recent first: the last (the current actor)
    outermost, the first most deeply nested."""
    if not actors:
        raise TokenChainMismatch("a delegation chain has at least one actor")
    act: dict[str, Any] = {"sub": actors[0]}
    for actor in actors[1:]:
        act = {"sub": actor, "act": act}
    return act


def delegation_claims(chain: Chain) -> dict[str, Any]:
    """``sub`` and ``act`` of a token for the chain: the root principal is acted for; the chain's agents act, the
    leaf's agent (the token's holder) the current actor."""
    return {"sub": chain.root_principal, "act": actor_claim([d.agent for d in chain.delegations])}


def actors_of(act: object) -> tuple[str, ...]:
    """The actors an ``act`` claim names, least recent first (the inverse of ``actor_claim``); ``TokenMalformed``
    unless every level is ``{"sub": <text>}`` or ``{"sub": <text>, "act": <the prior level>}``."""
    actors: list[str] = []
    level: object = act
    while True:
        if (not isinstance(level, dict) or not level.keys() <= {"sub", "act"} or not isinstance(level.get("sub"), str)
                or not level["sub"]):
            raise TokenMalformed('token claim act must nest objects {"sub": <actor>, "act": <prior actor>} '
                                 "(RFC 8693 §4.1)")
        actors.append(level["sub"])
        if "act" not in level:
            return tuple(reversed(actors))
        level = level["act"]


def _text(claims: dict[str, Any], name: str) -> str:
    value = claims[name]
    if not isinstance(value, str) or not value:
        raise TokenMalformed(f"token claim {name} must be a non-empty string")
    return value


def _int(claims: dict[str, Any], name: str) -> int:
    value = claims[name]
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**53:
        raise TokenMalformed(f"token claim {name} must be a whole number of seconds (or a tree size)")
    return value


def check_claims(claims: dict[str, Any]) -> None:
    """The claims have exactly the members above, each of its type (the time rules are checked later)."""
    missing, extra = sorted(CLAIMS - claims.keys()), sorted(claims.keys() - CLAIMS)
    if missing or extra:
        raise TokenMalformed(f"token claims missing: {', '.join(missing) or '-'}; unknown: {', '.join(extra)[:200]}")
    for name in ("iss", "sub", "aud", "jti", "task_id", "scope", "resource"):
        _text(claims, name)
    for name in ("iat", "nbf", "exp", "checkpoint"):
        _int(claims, name)
    if not all(SCOPE_TOKEN.fullmatch(tool) for tool in claims["scope"].split(" ")):
        raise TokenMalformed("token claim scope must be tool names separated by single spaces (RFC 6749 §3.3)")
    chain = claims["delegation_chain"]
    if not isinstance(chain, list) or not chain or not all(isinstance(e, str) and _ENTRY.fullmatch(e) for e in chain):
        raise TokenMalformed("token claim delegation_chain must be a non-empty list of entry ids (64 hex)")
    actors_of(claims["act"])


def _check_time(claims: dict[str, Any], now: int, leeway: int) -> None:
    iat, nbf, exp = claims["iat"], claims["nbf"], claims["exp"]
    if not iat <= nbf < exp:
        raise TokenMalformed(f"token times must satisfy iat <= nbf < exp (iat {iat}, nbf {nbf}, exp {exp})")
    if exp - iat > MAX_TTL:
        raise TokenLifetimeTooLong(f"the token lives {exp - iat} s; at most {MAX_TTL} s are allowed")
    if now + leeway < nbf:
        raise TokenNotYetValid(f"the token is valid from {nbf} (now {now}, leeway {leeway} s)")
    if now - leeway >= exp:
        raise TokenExpired(f"the token expired at {exp} (now {now}, leeway {leeway} s)")


def check_chain_claims(state: IdentityState, claims: dict[str, Any]) -> Chain:
    """The log's chain for the token, whether or not it still holds: ``delegation_chain`` root -> leaf, granted by
    ``sub``, its agents the ``act`` nesting (the leaf's agent the current actor); ``TokenChainMismatch`` otherwise.
    Revocation and expiry are ``check_chain``'s."""
    listed: list[str] = claims["delegation_chain"]
    for entry in listed:
        if entry not in state.delegations:
            behind = f" (the state covers {state.size} entries, the token checkpoint {claims['checkpoint']})"
            raise TokenChainMismatch(
                f"{entry} in delegation_chain is not an accepted delegation on this log"
                + (behind if state.size < claims["checkpoint"] else "")
            )
    chain = chain_of(state, listed[-1])
    if list(chain.entries) != listed:
        raise TokenChainMismatch("delegation_chain is not the log's chain from its root to its last entry")
    actors = actors_of(claims["act"])
    if chain.leaf.agent != actors[-1]:
        raise TokenChainMismatch(f"the chain ends at {chain.leaf.agent[:200]}, not at the token's current actor "
                                 f"(act.sub {actors[-1][:200]})")
    if chain.root_principal != claims["sub"]:
        raise TokenChainMismatch(f"the chain is granted by {chain.root_principal[:200]}, not by the token's sub "
                                 f"{claims['sub'][:200]}")
    if claims["act"] != actor_claim([d.agent for d in chain.delegations]):
        raise TokenChainMismatch("the act claim does not nest the chain's agents (the leaf's agent outermost, the "
                                 "root's deepest)")
    return chain


def verify_token(
    token: str, registry_keys: TokenKeys, state: IdentityState, now: int, *, audience: str | None,
    tool: str | None, resource: str | None, issuer: str | None = None, leeway: int = DEFAULT_LEEWAY,
) -> VerifiedToken:
    """Verify a task-bound token offline (see the module docstring); raise why it does not hold.

    ``audience``, ``tool``, ``resource`` and ``issuer``, when given, must match the token (``None`` skips that
    check: a gateway gives all of them). ``now`` is seconds since the epoch.
    """
    jws = parse_jws(token)
    kid = jws.header["kid"]
    key = key_map(registry_keys).get(kid)
    if key is None:
        raise TokenKeyUnknown(f"no registry key has kid {kid[:60]!r}")
    try:
        key.verify(jws.signature, jws.signing_input)
    except InvalidSignature as exc:
        raise TokenSignatureInvalid(f"the token's signature does not verify under registry key {kid}") from exc
    claims = jws.claims
    check_claims(claims)
    _check_time(claims, now, leeway)
    if issuer is not None and claims["iss"] != issuer:
        raise TokenIssuerMismatch(f"the token is issued by {claims['iss'][:200]}, not {issuer[:200]}")
    if audience is not None and claims["aud"] != audience:
        raise TokenAudienceMismatch(f"the token is for {claims['aud'][:200]!r}, not {audience[:200]!r}")
    tools = tuple(claims["scope"].split(" "))
    if tool is not None and tool not in tools:
        raise TokenScopeRefused(f"tool {tool[:100]!r} is not in the token's scope {claims['scope'][:200]!r}")
    if resource is not None and not resource_covered(claims["resource"], resource):
        raise TokenScopeRefused(f"resource {resource[:200]!r} is not covered by the token's {claims['resource']!r}")
    chain = check_chain_claims(state, claims)
    agent = chain.leaf.agent  # the current actor: the outermost act.sub
    passport = require_passport(state, agent, now)
    check_chain(state, chain.leaf.entry, now)
    for name in tools:
        check_request(chain.leaf.scope, claims["aud"], name, claims["resource"], f"delegation entry {chain.leaf.entry}")
    return VerifiedToken(
        kid=kid, issuer=claims["iss"], agent=agent, audience=claims["aud"], issued_at=claims["iat"],
        not_before=claims["nbf"], expires_at=claims["exp"], jti=claims["jti"], task_id=claims["task_id"],
        tools=tools, resource=claims["resource"], chain=chain.entries, checkpoint=claims["checkpoint"],
        principals=tuple(d.principal for d in chain.delegations), passport=passport, claims=claims,
    )
