"""The revocation status list of an operator, derived from the log, signed by the registry key."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from issuer.statements import (
    PassportRequest,
    Signer,
    agent_consent,
    agent_passport,
    operator_registration,
    revocation,
)
from issuer.status_lists import status_list_url
from schemas.status_list import decode_status_list, is_set
from tests.e2e.issuer_log import Log
from tests.server import running_server
from verifier.data_integrity import verify_proof
from verifier.tokens import key_from_jwk


def test_revoking_an_agent_sets_its_passport_bit(tmp_path: Path) -> None:
    operator = Signer(Ed25519PrivateKey.generate())
    agents = [Signer(Ed25519PrivateKey.generate()) for _ in range(3)]
    with running_server(tmp_path) as url:
        log = Log(url)
        log.ok("/registry/operators", operator_registration(operator, "acme", Ed25519PrivateKey.generate()))
        lists = status_list_url(url, operator.identity)
        for index, agent in zip((5, 9, 131_100), agents, strict=True):
            log.ok("/registry/consents", agent_consent(agent, operator.identity))
            log.ok("/api/agent/issue", agent_passport(operator, PassportRequest(
                agent.identity, "software", "sha256:" + "ab" * 32, "EU", "sha256:" + "cd" * 32, lists, index)))
        log.ok("/registry/revoke", revocation(operator, agents[1].identity, "privilegeWithdrawn"))
        log.ok("/registry/revoke", revocation(operator, agents[2].identity, "keyCompromise"))

        credential = log.http.get(lists).json()
        keys = dict(key_from_jwk(jwk) for jwk in log.http.get("/registry/keys").json()["keys"])

        def resolve(method: str) -> Ed25519PublicKey:
            return keys[method.rpartition("#")[2]]

        verify_proof(credential, resolve)
        assert credential["id"] == lists
        assert credential["type"] == ["VerifiableCredential", "BitstringStatusListCredential"]
        assert credential["proof"]["verificationMethod"].startswith(credential["issuer"] + "#")
        bits = decode_status_list(credential["credentialSubject"]["encodedList"])
        assert len(bits) * 8 == 2 * 131_072  # grown to hold index 131,100
        assert [is_set(bits, i) for i in (5, 9, 131_100, 0)] == [False, True, True, False]
        document = log.http.get("/.well-known/did.json").json()
        assert credential["proof"]["verificationMethod"] in document["assertionMethod"]
        assert log.http.get(status_list_url(url, agents[0].identity)).status_code == 404
