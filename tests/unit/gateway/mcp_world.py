"""The MCP world of the gateway tests: operator (namespace acme) -> A -> C, where C may call two of crm's four tools."""

from __future__ import annotations

import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from issuer.statements import (
    PassportRequest,
    Signer,
    agent_consent,
    agent_passport,
    claim_approval,
    claim_submission,
    delegation,
    operator_registration,
)
from tests.gateway_world import NAMESPACE, World, ident

SERVICE = "crm"
IN_SCOPE = ("search", "read_ticket")
TOOLS = [{"name": n, "description": f"the {n} tool", "inputSchema": {"type": "object"}}
         for n in ("search", "read_ticket", "delete_ticket", "admin/reset")]
TOOL_SCOPE = {"services": [SERVICE], "actions": list(IN_SCOPE), "resources": ["tools/*"]}


def build_mcp_world(now: int | None = None) -> World:
    """operator (namespace acme) -> A -> C; C may call the tools ``search`` and ``read_ticket`` of ``crm``."""
    now = int(time.time()) if now is None else now
    operator, a, c = Signer(Ed25519PrivateKey.generate()), *(Signer(Ed25519PrivateKey.generate()) for _ in range(2))
    world = World(operator, a, a, c)
    add = world.statements.append
    add(operator_registration(operator, NAMESPACE, Ed25519PrivateKey.generate()))
    for i, agent in enumerate((a, c)):
        add(agent_consent(agent, operator.identity))
        passport = agent_passport(operator, PassportRequest(
            agent.identity, "software", "sha256:" + "ab" * 32, "EU", "sha256:" + "cd" * 32,
            "https://issuer.example/status/1", i), now=now - 60)
        add(passport)
        world.passports[agent.identity] = ident(passport)
    wide = {"services": [SERVICE], "actions": [*IN_SCOPE, "delete_ticket"], "resources": ["tools/*"]}
    root = delegation(operator, a.identity, wide, not_after=now + 3600, max_depth=1)
    ac = delegation(a, c.identity, TOOL_SCOPE, not_after=now + 3000, max_depth=0, parent=ident(root))
    claim = claim_submission(c, "c-crm", NAMESPACE, SERVICE, TOOL_SCOPE)
    for statement in (root, ac, claim, claim_approval(operator, ident(claim))):
        add(statement)
    world.chain, world.claim = (ident(root), ident(ac)), ident(claim)
    return world
