"""A small identity world on a running log, made over its HTTP API as operators and agents make it: an operator
with a namespace, an agent that consented to it, a passport, a delegation and a pending claim."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from issuer.statements import (
    PassportRequest,
    Signer,
    agent_consent,
    agent_passport,
    claim_submission,
    delegation,
    operator_registration,
)

COSE = {"content-type": "application/cose"}
SCOPE = {"services": ["mail"], "actions": ["read"], "resources": ["mail/inbox/*"]}


def b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class World:
    url: str
    operator: Signer
    agent: Signer
    namespace: str = "acme"
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def post(self, path: str, statement: bytes) -> dict[str, Any]:
        with self.http() as http:
            answer = http.post(path, content=statement, headers=COSE)
        assert answer.status_code == 201, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def size(self) -> int:
        with self.http() as http:
            return int(http.get("/checkpoint").text.split("\n")[1])

    def submit_claim(self, claim_id: str, agent: Signer | None = None) -> str:
        body = self.post("/v1/claims", claim_submission(agent or self.agent, claim_id, self.namespace, "mail", SCOPE))
        self.entries[claim_id] = body
        return str(body["entry"])


def make_world(url: str, namespace: str = "acme", operator_key: Ed25519PrivateKey | None = None) -> World:
    world = World(url, Signer(operator_key or Ed25519PrivateKey.generate()), Signer(Ed25519PrivateKey.generate()),
                  namespace)
    op, agent = world.operator, world.agent
    world.entries["registration"] = world.post(
        "/registry/operators", operator_registration(op, namespace, Ed25519PrivateKey.generate()))
    world.entries["consent"] = world.post("/registry/consents", agent_consent(agent, op.identity))
    request = PassportRequest(agent.identity, "software", "sha256:" + "ab" * 32, "EU", "sha256:" + "cd" * 32,
                              "https://issuer.example/status/1", 0)
    world.entries["passport"] = world.post("/api/agent/issue", agent_passport(op, request))
    world.entries["delegation"] = world.post(
        "/v1/delegations", delegation(op, agent.identity, SCOPE, not_after=int(time.time()) + 3600, max_depth=0))
    return world
