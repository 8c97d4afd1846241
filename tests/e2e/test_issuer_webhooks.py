"""Lifecycle events from the log reach a subscriber as signed webhooks (real server, real receiver)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from issuer.statements import PassportRequest, Signer, agent_consent, agent_passport, operator_registration
from issuer.webhooks import parse_public_key
from tests.e2e.test_issuer_end_to_end import Log
from tests.e2e.test_webhooks import Receiver, _wait_for, serving
from tests.server import REPO, running_server


def tabellion(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=REPO, capture_output=True, text=True,
                          check=True, timeout=60)
    return done.stdout.strip()


def test_every_lifecycle_change_is_delivered_signed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_server(tmp_path, data_dir=data) as url:
        public = parse_public_key(tabellion("webhooks", "key", "--data", str(data)))
        receiver = Receiver(public)
        with serving(receiver) as hook:
            assert tabellion("webhooks", "add", "--data", str(data), hook, "--event", "*").startswith("OK")
            assert hook in tabellion("webhooks", "list", "--data", str(data))
            log = Log(url)
            operator = Signer(Ed25519PrivateKey.generate())
            registration = log.ok("/registry/operators", operator_registration(operator, "acme",
                                                                               Ed25519PrivateKey.generate()))
            agent = Signer(Ed25519PrivateKey.generate())
            log.ok("/registry/consents", agent_consent(agent, operator.identity))
            passport = log.ok("/api/agent/issue", agent_passport(operator, PassportRequest(
                agent.identity, "software", "sha256:" + "ab" * 32, "EU", "sha256:" + "cd" * 32,
                "https://issuer.example/status/1", 0)))
            expected = {f"{registration['entry']}:statement_submitted", f"{passport['entry']}:statement_submitted",
                        f"{passport['entry']}:passport_issued"}
            _wait_for(lambda: expected <= set(receiver.received), "the three webhook deliveries")
            assert receiver.refused == []
