"""The world the gateway's tests decide in: an operator (namespace acme) -> A -> B -> C, each agent with its
consent and passport, C's claim on ``mail`` approved; a state source holding one folded state, and a sink of
decisions. Shared by the gateway's unit tests, its end-to-end tests and the console's."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.config import Connection
from gateway.decisions import Decision
from gateway.signatures import Request, sign_request
from gateway.state import LogPosition, View
from issuer.statements import (
    PassportRequest,
    Signer,
    agent_consent,
    agent_passport,
    claim_approval,
    claim_submission,
    delegation,
    multikey_of,
    operator_registration,
)
from schemas.cose_sign1 import decode_sign1
from schemas.errors import TabellionError
from schemas.leaf import entry_id, leaf_data
from verifier.fold import Fold, FoldEntry, IdentityState

SERVICE = "mail"
NAMESPACE = "acme"
SCOPE = {"services": [SERVICE], "actions": ["read", "write"], "resources": ["inbox/*"]}
GATEWAY = "http://gw.test:8700"
CONNECTION = Connection(id="mail-api", upstream="http://upstream.test/api", service=SERVICE,
                        actions=(("GET", "read"), ("POST", "write")))


def ident(statement: bytes) -> str:
    return entry_id(leaf_data(decode_sign1(statement)))


@dataclass
class World:
    """operator (namespace acme) -> A -> B -> C, each agent consented to the operator and holds its passport, C's
    claim on ``mail`` approved."""

    operator: Signer
    a: Signer
    b: Signer
    c: Signer
    statements: list[bytes] = field(default_factory=list)
    passports: dict[str, str] = field(default_factory=dict)
    chain: tuple[str, ...] = ()
    claim: str = ""

    def state(self, *extra: bytes) -> IdentityState:
        fold = Fold()
        for i, statement in enumerate([*self.statements, *extra]):
            outcome = fold.apply(FoldEntry(i, statement))
            assert outcome.accepted, outcome.reason
        return fold.state

    def headers(self, override: dict[str, str] | None = None, agent: Signer | None = None) -> tuple[
        tuple[str, str], ...
    ]:
        agent = agent or self.c
        values = {
            "Tabellion-Namespace": NAMESPACE, "Tabellion-Subject": agent.identity,
            "Tabellion-Agent-Key": f"{agent.identity}#{multikey_of(agent.key)}",
            "Tabellion-Agent-Passport": self.passports.get(agent.identity, "00" * 32),
        } | (override or {})
        return tuple(values.items())

    def request(self, path: str = "/proxy/mail-api/inbox/1?x=1", method: str = "GET", body: bytes = b"", *,
                agent: Signer | None = None, key: Ed25519PrivateKey | None = None, now: int | None = None,
                headers: tuple[tuple[str, str], ...] | None = None, **sign: Any) -> Request:
        agent = agent or self.c
        created = int(time.time()) if now is None else now
        fields = (("Host", "gw.test:8700"), *(headers or self.headers(agent=agent)))
        unsigned = Request(method, GATEWAY + path, fields, body)
        options: dict[str, Any] = {"key": key or agent.key, "keyid": agent.identity, "created": created,
                                   "expires": created + 60, "nonce": uuid.uuid4().hex} | sign
        return sign_request(unsigned, **options)


def build_world(now: int | None = None) -> World:
    now = int(time.time()) if now is None else now
    op0, op1 = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    a, b, c = (Signer(Ed25519PrivateKey.generate()) for _ in range(3))
    world = World(Signer(op0), a, b, c)
    add = world.statements.append
    add(operator_registration(world.operator, NAMESPACE, op1))
    for i, agent in enumerate((world.a, world.b, world.c)):
        add(agent_consent(agent, world.operator.identity))  # each agent accepts the operator first
        passport = agent_passport(world.operator, PassportRequest(
            agent.identity, "software", "sha256:" + "ab" * 32, "EU", "sha256:" + "cd" * 32,
            "https://issuer.example/status/1", i), now=now - 60)
        add(passport)
        world.passports[agent.identity] = ident(passport)
    wide = {"services": [SERVICE, "files"], "actions": ["read", "write"], "resources": ["inbox/*", "outbox/*"]}
    root = delegation(world.operator, world.a.identity, wide, not_after=now + 3600, max_depth=2)
    ab = delegation(world.a, world.b.identity, wide, not_after=now + 3000, max_depth=1, parent=ident(root))
    bc = delegation(world.b, world.c.identity, SCOPE, not_after=now + 2000, max_depth=0, parent=ident(ab))
    claim = claim_submission(world.c, "c-mail", NAMESPACE, SERVICE, SCOPE)
    for statement in (root, ab, bc, claim, claim_approval(world.operator, ident(claim))):
        add(statement)
    world.chain = (ident(root), ident(ab), ident(bc))
    world.claim = ident(claim)
    return world


class FixedLog:
    """A state source holding one folded state (or refusing, like an untrusted log)."""

    def __init__(self, state: IdentityState, refusal: TabellionError | None = None) -> None:
        self.state = state
        self.refusal = refusal

    @contextmanager
    def snapshot(self) -> Iterator[View]:
        if self.refusal is not None:
            raise self.refusal
        yield View(self.state, self.position())

    def position(self) -> LogPosition:
        if self.refusal is not None:
            raise self.refusal
        return LogPosition("gateway.test/log", self.state.size, bytes(32), 0.0)


class Sink:
    def __init__(self) -> None:
        self.decisions: list[Decision] = []

    def record(self, decision: Decision) -> None:
        self.decisions.append(decision)
