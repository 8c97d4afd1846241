"""The console tests' world on a log: the gateway tests' world with its claim left pending, and the approvers.

Approvers are enrolled as DIDs the operator is entitled to name (docs/authority.md, principle 2): Alice as her
passkey's own did:key (an invitation without ``--approver``), Bob as the operator itself."""

from __future__ import annotations

from issuer.client import IssuerClient
from schemas.identity_statements import statement_type_of
from schemas.statement import parse_statement
from tests.gateway_world import World

ALICE = None
"""Alice is invited with no ``--approver``: she approves as the did:key of the passkey she creates."""
ANOTHER_ORGANISATION = "did:web:bank.example:people:ceo"
"""A DID the operator (a did:key) may not name as an approver."""


def submit_world(log: str, world: World) -> None:
    """Everything of the gateway tests' world but the operator's approval: the claim stays pending."""
    with IssuerClient(log) as issuer:
        for statement in world.statements[:-1]:
            stype = statement_type_of(parse_statement(statement).content_type)
            assert stype is not None
            issuer.submit(stype, statement)
