"""The console tests' world on a log: the gateway tests' world with its claim left pending, and the approvers.

Approvers are enrolled as DIDs the operator is entitled to name (docs/authority.md, principle 2): Alice as her
passkey's own did:key (an invitation without ``--approver``), Bob as the operator itself."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from issuer.client import IssuerClient
from schemas.identity_statements import statement_type_of
from schemas.statement import parse_statement
from tests.browser.console_process import ConsoleProcess, console_config
from tests.gateway_world import World, build_world
from tests.server import running_server

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


@dataclass
class ConsoleOverLog:
    """A log holding the world, and the console of its namespace ``acme`` (started)."""

    log: str
    world: World
    console: ConsoleProcess

    def size(self) -> int:
        return int(httpx.get(f"{self.log}/checkpoint").text.split("\n")[1])


@contextmanager
def console_over_log(tmp_path: Path) -> Iterator[ConsoleOverLog]:
    """A log in ``tmp_path/log`` with the world submitted, and its console in ``tmp_path/console``; both stopped
    after the block."""
    with running_server(tmp_path / "log") as log:
        world = build_world()
        submit_world(log, world)
        console = console_config(tmp_path / "console", log, "acme", world.operator.ed25519).start()
        try:
            yield ConsoleOverLog(log, world, console)
        finally:
            console.stop()
