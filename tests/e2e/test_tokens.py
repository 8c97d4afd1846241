"""Task-bound tokens over real HTTP: operator -> A -> B -> C, C gets a token at POST /v1/tokens (also when it asks
as an independent client written from docs/identity.md) and it verifies offline against the registry's JWK Set
and a state folded by a verifying follower; a registry key rotation made while the server runs is served at once
and old tokens keep verifying; revocation of C is effective at machine speed (the token fails offline on the state
folded right after the revocation, /v1/verify and /api/agent/verify answer BLOCK right after its 201)."""

from __future__ import annotations

import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from issuer.dids import did_web
from issuer.log_state import LogState
from issuer.registry_keys import rotate_registry_key
from issuer.statements import (
    PassportRequest,
    Signer,
    agent_consent,
    agent_passport,
    claim_approval,
    claim_submission,
    delegation,
    operator_registration,
    revocation,
)
from issuer.tokens import NONCES_PER_AGENT, new_nonce, sign_request
from schemas.errors import PassportRefused
from schemas.note import parse_vkey
from tests.e2e.issuer_log import BUNDLE, FINGERPRINT, STATUS_LIST, Log
from tests.problems import problem_code
from tests.server import running_server
from tests.token_request_recipe import signed_request, wire_body
from transparency.client import HttpLogClient
from verifier.keys import parse_key_set
from verifier.tokens import verify_token

LEAF = {"services": ["mail"], "actions": ["read", "list"], "resources": ["mail/inbox/*"]}


def _request(agent: Signer, leaf: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"agent": agent.identity, "task_id": "summarise-inbox", "tools": ["read", "list"],
                            "service": "mail", "resource": "mail/inbox/*", "delegation": leaf, "ttl": 120,
                            "created": int(time.time()), "nonce": new_nonce()}
    body.update(fields)
    return sign_request(agent.ed25519, body)


def _verify_query(agent: str) -> str:
    return "/v1/verify?" + urllib.parse.urlencode(
        {"agent": agent, "service": "mail", "action": "read", "resource": "mail/inbox/1"})


def test_token_minted_verified_offline_rotated_and_revoked(tmp_path: Path) -> None:
    operator = Signer(Ed25519PrivateKey.generate())
    a, b, c = (Signer(Ed25519PrivateKey.generate()) for _ in range(3))
    now = int(time.time())
    with running_server(tmp_path) as url, HttpLogClient(url) as client:
        log = Log(url)
        log.ok("/registry/operators", operator_registration(operator, "acme", Ed25519PrivateKey.generate()))
        for i, agent in enumerate((a, b, c)):
            log.ok("/registry/consents", agent_consent(agent, operator.identity))
            log.ok("/api/agent/issue", agent_passport(operator, PassportRequest(
                agent.identity, "software", FINGERPRINT, "EU", BUNDLE, STATUS_LIST, i)))
        wide = {"services": ["mail", "files"], "actions": ["read", "list", "write"], "resources": ["mail/*"]}
        root = log.ok("/v1/delegations", delegation(operator, a.identity, wide, not_after=now + 3600, max_depth=2))
        middle = {"services": ["mail"], "actions": ["read", "list"], "resources": ["mail/*"]}
        ab = log.ok("/v1/delegations", delegation(a, b.identity, middle, not_after=now + 3000, max_depth=1,
                                                  parent=root["entry"]))
        bc = log.ok("/v1/delegations", delegation(b, c.identity, LEAF, not_after=now + 2000, max_depth=0,
                                                  parent=ab["entry"]))
        chain = [root["entry"], ab["entry"], bc["entry"]]
        claim = log.ok("/v1/claims", claim_submission(c, "c-mail", "acme", "mail", LEAF))
        log.ok(f"/v1/claims/{claim['entry']}/approve", claim_approval(operator, claim["entry"]))

        # the registry's keys: a JWK Set, generation 1; the log's receipt keys stay where they were
        published = log.http.get("/registry/keys")
        assert published.status_code == 200 and published.headers["content-type"] == "application/jwk-set+json"
        jwks = published.json()
        assert [(k["generation"], k["status"], k["alg"]) for k in jwks["keys"]] == [(1, "current", "EdDSA")]
        assert parse_key_set(log.http.get("/.well-known/scitt-keys").content)

        answer = log.http.post("/v1/tokens", json=(body := _request(c, bc["entry"])))
        assert answer.status_code == 201, answer.text
        assert answer.headers["cache-control"] == "no-store"
        minted = answer.json()
        assert minted["chain"] == chain and minted["checkpoint"] == log.size()
        assert minted["expires_at"] - int(time.time()) <= 120

        # offline: the registry's JWK Set, and a state folded by a follower that checks every receipt
        state = LogState(client, parse_vkey(client.vkey()), parse_key_set(client.key_set()))
        state.refresh()
        verified = verify_token(minted["token"], jwks, state.state, int(time.time()), audience="mail", tool="read",
                                resource="mail/inbox/42", issuer=did_web(url))
        assert verified.agent == c.identity and list(verified.chain) == chain
        assert verified.principals == (operator.identity, a.identity, b.identity)
        assert verified.claims["sub"] == operator.identity  # RFC 8693 §4.1: acted for; c acts now, a acted first
        assert verified.claims["act"] == {"sub": c.identity, "act": {"sub": b.identity, "act": {"sub": a.identity}}}

        # an independent client written from docs/identity.md, its body not in canonical form
        recipe = {"agent": c.identity, "task_id": "from-the-docs", "tools": ["list"], "service": "mail",
                  "resource": "mail/inbox/*", "delegation": bc["entry"], "ttl": 60, "created": int(time.time()),
                  "nonce": new_nonce()}
        independent = log.http.post("/v1/tokens", content=wire_body(signed_request(c.ed25519, recipe)),
                                    headers={"Content-Type": "application/json"})
        assert independent.status_code == 201, independent.text
        assert verify_token(independent.json()["token"], jwks, state.state, int(time.time()), audience="mail",
                            tool="list", resource="mail/inbox/3").task_id == "from-the-docs"

        # refusals over HTTP: a replay, a tool outside the leaf's scope, the delegation of someone else
        replayed = log.http.post("/v1/tokens", json=body)
        assert replayed.status_code == 401 and replayed.json()["type"].endswith("token-request-replayed")
        wider = log.http.post("/v1/tokens", json=_request(c, bc["entry"], tools=["write"]))
        assert wider.status_code == 403 and wider.json()["reason_code"] == "action_out_of_scope"
        foreign = log.http.post("/v1/tokens", json=_request(b, bc["entry"]))
        assert foreign.status_code == 403 and foreign.json()["reason_code"] == "delegation_not_for_agent"
        too_long = log.http.post("/v1/tokens", json=_request(c, bc["entry"], ttl=301))
        assert too_long.status_code == 400

        # a rotation made next to the running server is served at once; the old token still verifies
        new_key = rotate_registry_key(url.data_dir)
        jwks = log.http.get("/registry/keys").json()
        assert [(k["kid"], k["status"]) for k in jwks["keys"]][0] == (new_key.kid, "current")
        assert [k["generation"] for k in jwks["keys"]] == [2, 1]
        second = log.http.post("/v1/tokens", json=_request(c, bc["entry"])).json()
        assert verify_token(second["token"], jwks, state.state, int(time.time()), audience="mail", tool="list",
                            resource="mail/inbox/1").kid == new_key.kid
        assert verify_token(minted["token"], jwks, state.state, int(time.time()), audience="mail", tool="read",
                            resource="mail/inbox/1").kid != new_key.kid
        assert log.http.get(_verify_query(c.identity)).json()["decision"] in ("ALLOW", "WARN")

        # revocation at machine speed
        revoked = log.ok("/registry/revoke", revocation(operator, c.identity, "keyCompromise"))
        blocked = log.http.get(_verify_query(c.identity))
        assert blocked.status_code == 403 and blocked.json()["reason_code"] == "revoked"
        passport = log.http.post("/api/agent/verify", json={"agent": c.identity}).json()
        assert passport["policy_decision"] == "BLOCK" and passport["verified"] is False
        refused = log.http.post("/v1/tokens", json=_request(c, bc["entry"]))
        assert refused.status_code == 403 and refused.json()["reason_code"] == "revoked"

        state.refresh()
        assert state.state.size == revoked["index"] + 1  # folded right up to the revocation's entry
        for token in (minted["token"], second["token"]):
            with pytest.raises(PassportRefused) as refusal:
                verify_token(token, jwks, state.state, int(time.time()), audience="mail", tool="read",
                             resource="mail/inbox/1")
            assert refusal.value.reason_code == "revoked"


def test_signed_requests_of_strangers_do_not_shut_minting_off(tmp_path: Path) -> None:
    """Anyone can make a did:key and sign token requests with it: those are refused for the passport before a
    nonce is kept, so they use up nothing. A registered agent's own requests are bounded per agent (429), and
    another agent still mints."""
    operator = Signer(Ed25519PrivateKey.generate())
    c, d = Signer(Ed25519PrivateKey.generate()), Signer(Ed25519PrivateKey.generate())
    now = int(time.time())
    with running_server(tmp_path) as url:
        log = Log(url)
        log.ok("/registry/operators", operator_registration(operator, "acme", Ed25519PrivateKey.generate()))
        leaves = {}
        for i, agent in enumerate((c, d)):
            log.ok("/registry/consents", agent_consent(agent, operator.identity))
            log.ok("/api/agent/issue", agent_passport(operator, PassportRequest(
                agent.identity, "software", FINGERPRINT, "EU", BUNDLE, STATUS_LIST, i)))
            leaves[agent.identity] = log.ok("/v1/delegations", delegation(operator, agent.identity, LEAF,
                                                                          not_after=now + 3600, max_depth=0))["entry"]
        size = log.size()

        first = _request(Signer(Ed25519PrivateKey.generate()), leaves[c.identity])
        for body in [first, first, *(_request(Signer(Ed25519PrivateKey.generate()), leaves[c.identity])
                                     for _ in range(200))]:
            refused = log.http.post("/v1/tokens", json=body)
            assert refused.status_code == 403 and problem_code(refused) == "passport-refused", refused.text
            assert refused.json()["reason_code"] == "not_issued"

        for n in range(NONCES_PER_AGENT):
            answer = log.http.post("/v1/tokens", json=_request(c, leaves[c.identity]))
            assert answer.status_code == 201, (n, answer.text)
        exhausted = log.http.post("/v1/tokens", json=_request(c, leaves[c.identity]))
        assert exhausted.status_code == 429 and problem_code(exhausted) == "token-requests-exhausted"
        assert int(exhausted.headers["retry-after"]) >= 1
        assert log.http.post("/v1/tokens", json=_request(d, leaves[d.identity])).status_code == 201
        assert log.size() == size
