"""Lifecycle events from the log reach a subscriber as signed webhooks (real server, real receiver)."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from issuer.outbox import open_outbox
from issuer.statements import PassportRequest, Signer, agent_consent, agent_passport, operator_registration
from issuer.webhooks import parse_public_key
from tests.cli_process import tabellion
from tests.e2e.issuer_log import Log
from tests.e2e.webhook_receiver import Receiver, receiving
from tests.server import running_server
from tests.waiting import wait_for


def said(*args: str, ok: bool = True) -> str:
    """What ``tabellion ARGS`` printed: its output if it succeeded, its error if it failed (as ``ok`` expects)."""
    done = tabellion(*args, ok=ok)
    return (done.stdout if ok else done.stderr).strip()


def test_every_lifecycle_change_is_delivered_signed(tmp_path: Path) -> None:
    """The receiver is on 127.0.0.1: the service and the subscription allow it explicitly (outbound_allow)."""
    data = tmp_path / "data"
    with running_server(tmp_path, data_dir=data, outbound_allow="127.0.0.0/8") as url:
        public = parse_public_key(said("webhooks", "key", "--data", str(data)))
        receiver = Receiver(public)
        with receiving(receiver) as hook:
            refused = said("webhooks", "add", "--data", str(data), hook, "--event", "*", ok=False)
            assert "Outbound target refused" in refused and "loopback" in refused  # not without the setting
            assert said("webhooks", "add", "--data", str(data), hook, "--event", "*",
                        "--outbound-allow", "127.0.0.0/8").startswith("OK")
            assert hook in said("webhooks", "list", "--data", str(data))
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
            wait_for(lambda: expected <= set(receiver.received), "the three webhook deliveries")
            assert receiver.refused == []


def test_deliveries_are_checked_again_by_the_service(tmp_path: Path) -> None:
    """Subscribed with 127.0.0.0/8 allowed on the command line, but the service does not allow it: nothing is sent,
    the delivery is retried with the refusal as its error (the check runs before every attempt)."""
    data = tmp_path / "data"
    with running_server(tmp_path, data_dir=data) as url:
        receiver = Receiver(parse_public_key(said("webhooks", "key", "--data", str(data))))
        with receiving(receiver) as hook:
            assert said("webhooks", "add", "--data", str(data), hook, "--event", "*",
                        "--outbound-allow", "127.0.0.1").startswith("OK")
            Log(url).ok("/registry/operators", operator_registration(Signer(Ed25519PrivateKey.generate()), "acme",
                                                                    Ed25519PrivateKey.generate()))
            outbox = open_outbox(data / "issuer-cache.sqlite")
            try:
                wait_for(lambda: any(d.last_error for d in outbox.deliveries()), "a failed delivery attempt")
                delivery = outbox.deliveries()[0]
            finally:
                outbox.close()
            assert delivery.status == "pending" and delivery.last_status is None
            assert (delivery.last_error or "").startswith("outbound-target-refused:")
            assert receiver.attempts == []
