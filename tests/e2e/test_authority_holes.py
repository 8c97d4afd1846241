"""Issue 9's authority holes, tried over HTTP as an attacker would, against a real log server.

Each attempt must be refused with its stable code (the problem-details ``type``), leave the log's size unchanged,
and leave the victim's state as it was: its DID document, its passport verdict and ``/v1/verify``. The last test
checks that an audit bundle no longer hides a passport revocation it contains.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from issuer.statements import (
    PassportRequest,
    Signer,
    agent_consent,
    agent_passport,
    approver_enrolment,
    claim_approval,
    claim_submission,
    delegation,
    operator_registration,
    revocation,
)
from tests.cli_process import tabellion
from tests.e2e.issuer_log import Log
from tests.server import running_server
from tests.unit.verifier.identity_world import World
from verifier.bundles import verify_bundle
from verifier.keys import parse_key_set

SCOPE = {"services": ["mail"], "actions": ["read"], "resources": ["mail/*"]}
PROBLEM = "urn:tabellion:error:"


def _passport(operator: Signer, agent: Signer, index: int) -> bytes:
    return agent_passport(operator, PassportRequest(agent.identity, "software", "sha256:" + "ab" * 32, "EU",
                                                    "sha256:" + "cd" * 32, "https://issuer.example/status/1", index))


class Victims:
    """An operator (namespace ``bank``) with an agent that consented to it, holds its passport and a delegation;
    a second agent without any passport; and ``state()``, what an attack must not change."""

    count = 0

    def __init__(self, log: Log) -> None:
        Victims.count += 1
        self.log = log
        self.operator = Signer(Ed25519PrivateKey.generate())
        self.agent = Signer(Ed25519PrivateKey.generate())
        self.bare = Signer(Ed25519PrivateKey.generate())  # an agent with no passport at all
        log.ok("/registry/operators", operator_registration(self.operator, f"bank{Victims.count}",
                                                                       Ed25519PrivateKey.generate()))
        log.ok("/registry/consents", agent_consent(self.agent, self.operator.identity))
        self.passport = log.ok("/api/agent/issue", _passport(self.operator, self.agent, 0))["entry"]
        log.ok("/v1/delegations", delegation(self.operator, self.agent.identity, SCOPE,
                                             not_after=int(time.time()) + 3600, max_depth=0))

    def state(self) -> list[Any]:
        http = self.log.http
        out: list[Any] = [self.log.size()]
        for did in (self.operator.identity, self.agent.identity, self.bare.identity):
            out.append(http.get(f"/1.0/identifiers/{quote(did)}").json())
            out.append(http.post("/api/agent/verify", json={"agent": did}).json()["policy_decision"])
        out.append(self.log.verify(self.agent.identity).json().get("decision"))
        return out


def refused(log: Log, path: str, statement: bytes, code: str) -> None:
    problem = log.refused(path, statement)
    assert problem["type"] == PROBLEM + code, problem


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with running_server(tmp_path_factory.mktemp("log")) as url:
        yield Log(url)


def _attacker(log: Log, namespace: str) -> Signer:
    attacker = Signer(Ed25519PrivateKey.generate())
    log.ok("/registry/operators", operator_registration(attacker, namespace, Ed25519PrivateKey.generate()))
    return attacker


def test_hole_1_an_operator_cannot_revoke_another_by_enrolling_it_as_an_approver(log: Log) -> None:
    victims = Victims(log)
    attacker = _attacker(log, "evil1")
    # the attacker enrols its *own* passkey under the victim operator's DID: the passkey consents, but the
    # attacker may not name a DID it does not speak for (docs/authority.md principle 2); the log is unchanged
    world = World()
    enrolment = {**world.enrolment("mallory", "evil1", approver=victims.operator.identity,
                                   signer_did=attacker.identity)}
    before = victims.state()
    refused(log, "/registry/approvers", approver_enrolment(attacker, enrolment), "approver-not-entitled")
    refused(log, "/registry/revoke", revocation(attacker, victims.operator.identity, "keyCompromise"),
            "did-revocation-not-entitled")
    refused(log, "/registry/revoke", revocation(attacker, victims.agent.identity, "keyCompromise"),
            "did-revocation-not-entitled")
    refused(log, "/registry/revoke", revocation(attacker, victims.passport, "keyCompromise"),
            "passport-revocation-not-entitled")
    assert victims.state() == before


def test_hole_2_a_stranger_cannot_adopt_an_agent_and_then_revoke_it(log: Log) -> None:
    victims = Victims(log)
    attacker = _attacker(log, "evil2")
    before = victims.state()
    for agent, index in ((victims.bare, 900), (victims.agent, 901)):
        refused(log, "/api/agent/issue", _passport(attacker, agent, index), "consent-missing")
        refused(log, "/v1/delegations", delegation(attacker, agent.identity, SCOPE, not_after=int(time.time()) + 60,
                                                   max_depth=0), "consent-missing")
        refused(log, "/registry/revoke", revocation(attacker, agent.identity, "privilegeWithdrawn"),
                "did-revocation-not-entitled")
    # a consent signed by the attacker in the agent's name does not count either
    forged = Signer(attacker.key, victims.bare.identity)
    refused(log, "/registry/consents", agent_consent(forged, attacker.identity), "signer-unresolvable")
    assert victims.state() == before


def test_hole_3_a_namespace_owner_cannot_revoke_an_agent_that_claimed_in_it(log: Log) -> None:
    victims = Victims(log)
    attacker = _attacker(log, "evil3")
    claim = log.ok("/v1/claims", claim_submission(victims.agent, "c1", "evil3", "mail", SCOPE))["entry"]
    log.ok(f"/v1/claims/{claim}/approve", claim_approval(attacker, claim, note="ok"))
    before = victims.state()
    refused(log, "/registry/revoke", revocation(attacker, victims.agent.identity, "privilegeWithdrawn"),
            "did-revocation-not-entitled")
    assert victims.state() == before
    # what the owner may revoke is its own grant: the claim in its namespace
    log.ok("/registry/revoke", revocation(attacker, claim, "privilegeWithdrawn"))
    assert victims.state()[1:-1] == before[1:-1]  # the agent's identity and passport stand


def test_the_rightful_parties_still_revoke(log: Log) -> None:
    victims = Victims(log)
    log.ok("/registry/revoke", revocation(victims.agent, victims.agent.identity, "cessationOfOperation"))
    log.ok("/registry/revoke", revocation(victims.operator, victims.passport, "superseded"))
    other = Signer(Ed25519PrivateKey.generate())
    log.ok("/registry/consents", agent_consent(other, victims.operator.identity))
    log.ok("/registry/revoke", revocation(victims.operator, other.identity, "privilegeWithdrawn"))


def test_hole_7_an_audit_bundle_shows_the_passport_revocation_it_holds(log: Log, tmp_path: Path) -> None:
    victims = Victims(log)
    log.ok("/registry/revoke", revocation(victims.operator, victims.passport, "keyCompromise"))
    bundle = log.http.get(f"/v1/audit/{victims.agent.identity}").json()
    keys_cbor = log.http.get("/.well-known/scitt-keys").content
    report = verify_bundle(bundle, parse_key_set(keys_cbor))
    assert report.passport is not None and "REVOKED" in report.passport and "keyCompromise" in report.passport
    (tmp_path / "bundle.json").write_text(json.dumps(bundle))
    (tmp_path / "keys.cbor").write_bytes(keys_cbor)
    cli = tabellion("verify", "bundle", tmp_path / "bundle.json", "--log-keys", tmp_path / "keys.cbor")
    passport_line = next(line for line in cli.stdout.splitlines() if line.strip().startswith("passport:"))
    assert "REVOKED" in passport_line and victims.passport in passport_line
