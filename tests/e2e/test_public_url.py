"""The service's public URL is configuration, never the request's Host header: a stranger who sends
``Host: evil.example`` still gets the did.json, the signed status list and the signed token of the configured
``public_url`` (and, without one, of the listen address), and the signed ones verify. Over real HTTP."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from issuer.dids import did_web
from issuer.log_state import LogState
from issuer.statements import PassportRequest, Signer, agent_consent, agent_passport, delegation, operator_registration
from issuer.tokens import new_nonce, sign_request
from schemas.note import parse_vkey
from tests.e2e.issuer_log import BUNDLE, FINGERPRINT, STATUS_LIST, Log
from tests.server import running_server
from transparency.client import HttpLogClient
from verifier.data_integrity import verify_proof
from verifier.keys import parse_key_set
from verifier.tokens import key_from_jwk, verify_token

PUBLIC = "https://log.acme.example"
EVIL = {"Host": "evil.example"}
LEAF = {"services": ["mail"], "actions": ["read"], "resources": ["mail/inbox/*"]}


def _identity_documents(log: Log, client: HttpLogClient, public: str) -> None:
    """did.json, a status list and a token asked for with a foreign Host all name ``public``'s did:web."""
    did = did_web(public)
    operator, agent = Signer(Ed25519PrivateKey.generate()), Signer(Ed25519PrivateKey.generate())
    log.ok("/registry/operators", operator_registration(operator, "acme", Ed25519PrivateKey.generate()))
    log.ok("/registry/consents", agent_consent(agent, operator.identity))
    log.ok("/api/agent/issue", agent_passport(operator, PassportRequest(
        agent.identity, "software", FINGERPRINT, "EU", BUNDLE, STATUS_LIST, 3)))
    leaf = log.ok("/v1/delegations", delegation(operator, agent.identity, LEAF, not_after=int(time.time()) + 600,
                                                max_depth=0))["entry"]

    document = log.http.get("/.well-known/did.json", headers=EVIL)
    assert document.status_code == 200, document.text
    body = document.json()
    assert body["id"] == did
    assert {s["serviceEndpoint"] for s in body["service"]} == {public, f"{public}/1.0/identifiers/"}
    assert all(m["id"].startswith(did + "#") for m in body["verificationMethod"])
    assert "evil.example" not in document.text

    jwks = log.http.get("/registry/keys", headers=EVIL).json()
    keys = dict(key_from_jwk(jwk) for jwk in jwks["keys"])

    def resolve(method: str) -> Ed25519PublicKey:
        assert method.startswith(did + "#")
        return keys[method.rpartition("#")[2]]

    listed = log.http.get(f"/v1/status-lists/{operator.identity}", headers=EVIL)
    assert listed.status_code == 200, listed.text
    credential = listed.json()
    assert credential["issuer"] == did and credential["id"] == f"{public}/v1/status-lists/{operator.identity}"
    assert "evil.example" not in listed.text
    verify_proof(credential, resolve)
    assert credential["proof"]["verificationMethod"] in body["assertionMethod"]

    request: dict[str, Any] = {"agent": agent.identity, "task_id": "t", "tools": ["read"], "service": "mail",
                               "resource": "mail/inbox/*", "delegation": leaf, "ttl": 60,
                               "created": int(time.time()), "nonce": new_nonce()}
    minted = log.http.post("/v1/tokens", json=sign_request(agent.ed25519, request), headers=EVIL)
    assert minted.status_code == 201, minted.text
    state = LogState(client, parse_vkey(client.vkey()), parse_key_set(client.key_set()))
    state.refresh()
    verified = verify_token(minted.json()["token"], jwks, state.state, int(time.time()), audience="mail",
                            tool="read", resource="mail/inbox/1", issuer=did)
    assert verified.claims["iss"] == did


def test_a_foreign_host_gets_the_configured_public_url(tmp_path: Path) -> None:
    with running_server(tmp_path, public_url=PUBLIC + "/") as url, HttpLogClient(url) as client:
        _identity_documents(Log(url), client, PUBLIC)


def test_without_a_public_url_the_listen_address_is_named(tmp_path: Path) -> None:
    with running_server(tmp_path) as url, HttpLogClient(url) as client:
        _identity_documents(Log(url), client, str(url))
