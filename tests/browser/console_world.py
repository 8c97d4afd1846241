"""The console tests' world on a log: the gateway tests' world with its claim left pending, and two approvers' DIDs."""

from __future__ import annotations

from issuer.client import IssuerClient
from schemas.identity_statements import statement_type_of
from schemas.statement import parse_statement
from tests.gateway_world import World

ALICE = "did:web:acme.example:people:alice"
BOB = "did:web:acme.example:people:bob"


def submit_world(log: str, world: World) -> None:
    """Everything of the gateway tests' world but the operator's approval: the claim stays pending."""
    with IssuerClient(log) as issuer:
        for statement in world.statements[:-1]:
            stype = statement_type_of(parse_statement(statement).content_type)
            assert stype is not None
            issuer.submit(stype, statement)
