"""``GatewayAuth``: an ``httpx.Auth`` that signs requests for a Tabellion gateway (RFC 9421).

    key = FileKey.load("agent.key")
    identity = AgentIdentity(namespace="acme", subject=key.did, passport="<entry id of the passport>")
    with httpx.Client(auth=GatewayAuth(key, identity)) as http:
        http.get("https://gw.example/proxy/mail/inbox/1")

Each request gets the four identity headers, a ``Content-Digest`` (RFC 9530, SHA-256) when it has a body, and
one signature ``sig1`` covering ``@method``, ``@target-uri``, the identity headers and ``content-digest``, with
``created`` (now), ``expires`` (``created + ttl``), ``keyid``, ``alg="ed25519"`` and a fresh random ``nonce``:
the gateway accepts a nonce once, so a retry is signed again (``auth_flow`` runs for every send). ``extra``
names more headers the signature must cover (a method override, say). The target URI signed is the URL httpx
sends: address the gateway by the URL its ``public_url`` (or Host) gives.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass

import httpx

from gateway.signatures import AGENT_IDENTITY_HEADERS, Request, sign_request

from .keys import AgentKey

DEFAULT_TTL = 60


@dataclass(frozen=True)
class AgentIdentity:
    """What the identity headers say: the operator's namespace, the agent's DID (``subject``), its passport's
    entry id; ``agent_key`` defaults to the signing key's ``keyid``."""

    namespace: str
    subject: str
    passport: str
    agent_key: str | None = None

    def headers(self, keyid: str) -> list[tuple[str, str]]:
        return [("Tabellion-Namespace", self.namespace), ("Tabellion-Subject", self.subject),
                ("Tabellion-Agent-Key", self.agent_key or keyid), ("Tabellion-Agent-Passport", self.passport)]


class GatewayAuth(httpx.Auth):
    requires_request_body = True

    def __init__(self, key: AgentKey, identity: AgentIdentity, *, ttl: int = DEFAULT_TTL,
                 extra: Sequence[str] = (), clock: Callable[[], float] = time.time,
                 nonce: Callable[[], str] = lambda: secrets.token_urlsafe(18)) -> None:
        self.key, self.identity, self.ttl = key, identity, ttl
        self.extra = tuple(name.lower() for name in extra)
        self.clock, self.nonce = clock, nonce

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.sign(request)
        yield request

    def sign(self, request: httpx.Request) -> None:
        """Add the identity headers, Content-Digest, Signature-Input and Signature to ``request``."""
        for name in ("signature", "signature-input", "content-digest", *AGENT_IDENTITY_HEADERS):
            if name in request.headers:
                del request.headers[name]
        for name, value in self.identity.headers(self.key.keyid):
            request.headers[name] = value
        body = request.content
        unsigned = Request(request.method, str(request.url), tuple(request.headers.multi_items()), body)
        components = ["@method", "@target-uri", *AGENT_IDENTITY_HEADERS, *self.extra]
        if body:
            components.append("content-digest")
        now = int(self.clock())
        done = sign_request(unsigned, key=self.key, keyid=self.key.keyid, created=now, expires=now + self.ttl,
                            nonce=self.nonce(), components=components)
        for name in ("Content-Digest", "Signature-Input", "Signature"):
            signed_value = done.field(name)
            if signed_value is not None:
                request.headers[name] = signed_value
