"""Issue 3 end to end over real HTTP: register, passports, delegation A -> B -> C, claim, approval, verify,
rotation (the old key is refused), revocation (verify flips to BLOCK), DID documents; receipts offline."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from issuer.statements import (
    PassportRequest,
    Signer,
    agent_consent,
    agent_passport,
    claim_approval,
    claim_submission,
    delegation,
    key_rotation,
    operator_registration,
    revocation,
)
from schemas.errors import TabellionError
from tests.cli_process import tabellion
from tests.e2e.issuer_log import BUNDLE, FINGERPRINT, STATUS_LIST, Log
from tests.server import running_server
from transparency.client import did_of
from verifier.bundles import verify_bundle
from verifier.keys import parse_key_set
from verifier.receipts import verify_receipt


def test_operator_to_agent_chain_claim_rotation_revocation(tmp_path: Path) -> None:
    op0, op1, op2 = (Ed25519PrivateKey.generate() for _ in range(3))
    witnesses = [Ed25519PrivateKey.generate() for _ in range(3)]
    a, b, c = (Signer(Ed25519PrivateKey.generate()) for _ in range(3))
    operator = Signer(op0)
    now = int(time.time())
    with running_server(tmp_path) as url:
        log = Log(url)
        registration = log.ok("/registry/operators", operator_registration(
            operator, "acme", op1, [did_of(w) for w in witnesses], 2))
        for i, agent in enumerate((a, b, c)):
            log.ok("/registry/consents", agent_consent(agent, operator.identity))
            log.ok("/api/agent/issue", agent_passport(operator, PassportRequest(
                agent.identity, "software", FINGERPRINT, "EU", BUNDLE, STATUS_LIST, i)))

        wide = {"services": ["mail", "files"], "actions": ["read", "write"], "resources": ["mail/*", "files/*"]}
        root = log.ok("/v1/delegations", delegation(operator, a.identity, wide, not_after=now + 3600, max_depth=2))
        narrower = {"services": ["mail"], "actions": ["read", "write"], "resources": ["mail/*"]}
        ab = log.ok("/v1/delegations", delegation(a, b.identity, narrower, not_after=now + 3000, max_depth=1,
                                                  parent=root["entry"]))
        narrowest = {"services": ["mail"], "actions": ["read"], "resources": ["mail/inbox/*"]}
        bc = log.ok("/v1/delegations", delegation(b, c.identity, narrowest, not_after=now + 2000, max_depth=0,
                                                  parent=ab["entry"]))
        # widening at the last hop, and going deeper than allowed, are refused and change nothing
        widened = {"services": ["mail"], "actions": ["read", "delete"], "resources": ["mail/inbox/*"]}
        log.refused("/v1/delegations", delegation(b, c.identity, widened, not_after=now + 2000, max_depth=0,
                                                  parent=ab["entry"]))
        d = Signer(Ed25519PrivateKey.generate())
        log.refused("/v1/delegations", delegation(c, d.identity, narrowest, not_after=now + 1000, max_depth=0,
                                                  parent=bc["entry"]))

        claim = log.ok("/v1/claims", claim_submission(c, "c-mail-1", "acme", "mail", narrowest))
        assert log.verify(c.identity).status_code == 403  # not approved yet
        # issue 9 hole 5: the namespace key alone cannot approve in a human's name (no passkey assertion)
        human = did_of(Ed25519PrivateKey.generate())
        problem = log.refused(f"/v1/claims/{claim['entry']}/approve", claim_approval(operator, claim["entry"],
                                                                                      decided_by=human, note="ok"))
        assert problem["type"] == "urn:tabellion:error:human-assertion-missing"
        assert log.verify(c.identity).status_code == 403  # still not approved
        approval = log.ok(f"/v1/claims/{claim['entry']}/approve", claim_approval(operator, claim["entry"], note="ok"))
        human = operator.identity  # the owner's own decision
        # approving twice is a replay of the decision: refused
        log.refused(f"/v1/claims/{claim['entry']}/approve", claim_approval(operator, claim["entry"], note="again"))

        allowed = log.verify(c.identity)
        assert allowed.status_code == 200, allowed.text
        decision = allowed.json()
        assert decision["decision"] in ("ALLOW", "WARN")
        assert decision["chain"] == [root["entry"], ab["entry"], bc["entry"]]
        assert decision["root_principal"] == operator.identity
        assert decision["claim"] == claim["entry"]
        assert log.verify(c.identity, action="write").status_code == 403  # outside C's scope
        feed = log.http.get("/v1/claims/approved").json()
        assert [item["approval"] for item in feed["items"]] == [approval["entry"]]
        assert feed["items"][0]["decided_by"] == human

        # rotation: the committed key takes over with 2 of 3 witnesses; the old key is refused from then on
        log.ok("/registry/rotate", key_rotation(operator.identity, op1, sequence=1, previous=registration["entry"],
                                                next_key=op2, witness_keys=witnesses[:2]))
        problem = log.refused("/registry/revoke", revocation(operator, c.identity, "privilegeWithdrawn"))
        assert "rotated out" in problem["detail"] or "current" in problem["detail"]
        document = log.http.get(f"/1.0/identifiers/{operator.identity}").json()
        assert [k["entry"] for k in document["didDocumentMetadata"]["keyHistory"]][0] == registration["entry"]
        assert len(document["didDocument"]["verificationMethod"]) == 2

        # revocation by the operator's current key: verify flips to BLOCK at once
        log.ok("/registry/revoke", revocation(Signer(op1, operator.identity), c.identity, "privilegeWithdrawn"))
        assert log.verify(c.identity).status_code == 403
        passport = log.http.post("/api/agent/verify", json={"agent": c.identity}).json()
        assert passport["policy_decision"] == "BLOCK" and passport["verified"] is False
        assert log.http.post("/api/agent/verify", json={"agent": a.identity}).json()["policy_decision"] == "ALLOW"

        keys_cbor = log.http.get("/.well-known/scitt-keys").content
        keys = parse_key_set(keys_cbor)
        for ident, receipt in log.receipts.items():
            assert verify_receipt(receipt, log.statements[ident], keys).leaf_index >= 0

        # the audit bundle answers offline who authorised C, through which chain, as of which tree size
        bundle = log.http.get(f"/v1/audit/{c.identity}").json()
        report = verify_bundle(bundle, keys)
        assert report.tree_size == log.size()
        assert [chain.principals for chain in report.chains] == [
            (operator.identity, a.identity, b.identity, c.identity)]
        assert report.chains[0].delegations == (root["entry"], ab["entry"], bc["entry"])
        assert [(cl.claim_id, cl.status, cl.decided_by) for cl in report.claims] == [("c-mail-1", "approved", human)]
        assert report.revoked is not None and operator.identity in report.revoked
        (tmp_path / "bundle.json").write_text(json.dumps(bundle))
        (tmp_path / "keys.cbor").write_bytes(keys_cbor)
        cli = tabellion("verify", "bundle", tmp_path / "bundle.json", "--log-keys", tmp_path / "keys.cbor")
        assert f"authorised by {operator.identity}" in cli.stdout and human in cli.stdout

        # a bundle whose statement was swapped for another one does not verify
        tampered = dict(bundle, entries=[dict(bundle["entries"][0], statement=bundle["entries"][1]["statement"]),
                                         *bundle["entries"][1:]])
        with pytest.raises(TabellionError):
            verify_bundle(tampered, keys)
        assert log.http.get(f"/v1/audit/{did_of(Ed25519PrivateKey.generate())}").status_code == 404
