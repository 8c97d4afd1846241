"""An operator with a domain (did:web) binds its DID to a key on the log, then acts with that key."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from issuer.statements import PassportRequest, Signer, agent_passport, multikey_of, operator_registration
from tests.e2e.test_issuer_end_to_end import Log
from tests.server import running_server

DOMAIN_DID = "did:web:acme.example"


def test_did_web_operator_registers_and_issues(tmp_path: Path) -> None:
    operator = Signer(Ed25519PrivateKey.generate(), DOMAIN_DID)
    with running_server(tmp_path) as url:
        log = Log(url)
        log.ok("/registry/operators", operator_registration(operator, "acme", Ed25519PrivateKey.generate()))
        agent = Signer(Ed25519PrivateKey.generate())
        log.ok("/api/agent/issue", agent_passport(operator, PassportRequest(
            agent.identity, "software", "sha256:" + "ab" * 32, "EU", "sha256:" + "cd" * 32,
            "https://acme.example/status/1", 0)))
        document = log.http.get(f"/1.0/identifiers/{DOMAIN_DID}").json()["didDocument"]
        assert document["verificationMethod"][0]["publicKeyMultibase"] == multikey_of(operator.key)

        # the DID is taken: another key cannot register it, nor sign for it
        squatter = Signer(Ed25519PrivateKey.generate(), DOMAIN_DID)
        log.refused("/registry/operators", operator_registration(squatter, "acme2", Ed25519PrivateKey.generate()))
        log.refused("/api/agent/issue", agent_passport(squatter, PassportRequest(
            agent.identity, "software", "sha256:" + "ab" * 32, "EU", "sha256:" + "cd" * 32,
            "https://acme.example/status/1", 1)))
