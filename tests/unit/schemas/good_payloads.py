"""A good payload of every Tabellion statement type, as the schema tests accept it."""

from __future__ import annotations

from typing import Any

OPERATOR = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"
AGENT = "did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG"
KEY = "z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"
DIGEST = "A" * 43
ENTRY = "ab" * 32
SCOPE = {"services": ["crm"], "actions": ["read"], "resources": ["accounts/*"]}
WEBAUTHN = {"credential_id": "A" * 22, "authenticator_data": "AAAA", "client_data_json": "eyJ9", "signature": "MEUC"}

GOOD: dict[str, dict[str, Any]] = {
    "operator-registration": {"operator": OPERATOR, "namespace": "acme", "key": KEY, "next_key_digest": DIGEST,
                              "witnesses": [], "witness_threshold": 0},
    "key-rotation": {"controller": OPERATOR, "sequence": 1, "previous": ENTRY, "key": KEY,
                     "next_key_digest": DIGEST, "witness_signatures": [{"witness": AGENT, "signature": "A" * 86}]},
    "agent-passport": {"credential": {"@context": [], "type": [], "issuer": OPERATOR, "credentialSubject": {},
                                      "validFrom": "x", "validUntil": "y", "proof": {}}},
    "delegation": {"principal": OPERATOR, "agent": AGENT, "parent": None, "scope": SCOPE, "not_after": 1_900_000_000,
                   "max_depth": 2},
    "claim-submission": {"claim_id": "c-1", "agent": AGENT, "namespace": "acme", "service": "crm", "scope": SCOPE},
    "claim-approval": {"claim": ENTRY, "decided_by": OPERATOR},
    "claim-rejection": {"claim": ENTRY, "decided_by": OPERATOR, "reason": "not needed"},
    "claim-revocation": {"claim": ENTRY, "decided_by": OPERATOR, "reason": "privilegeWithdrawn"},
    "revocation": {"target": AGENT, "reason": "keyCompromise"},
    "registration-policy": {"policy_id": "default", "version": 1, "accepted_content_types": ["application/json"]},
    "trust-anchor": {"anchor": OPERATOR, "kind": "did"},
    "action-record": {"agent": AGENT, "delegation_chain": [ENTRY], "resource": "accounts/1", "action": "read",
                      "decision": "ALLOW", "policy_id": "p@1", "request_digest": "sha-256=:x:", "at": 1_800_000_000,
                      # optional, as a gateway writes them (gateway.actions)
                      "seq": 7, "connection": "crm-api", "service": "crm", "code": "ok", "reason_code": "ok",
                      "passport": ENTRY, "claim": ENTRY, "root_principal": OPERATOR, "log_size": 42,
                      "policy_version": "3"},
    "approver-enrolment": {"namespace": "acme", "approver": "did:web:acme.example:people:alice",
                           "credential_id": "A" * 22, "public_key": "pQECAyYgASFY", "rp_id": "acme.example",
                           "origin": "https://acme.example",
                           # the human's consent: the passkey's registration, then its assertion over the enrolment
                           "registration": {"client_data_json": "eyJ9", "attestation_object": "o2Nm"},
                           "webauthn": WEBAUTHN},
    "agent-consent": {"agent": AGENT, "operator": OPERATOR},
    "did-web-evidence": {"did": "did:web:acme.example", "url": "https://acme.example/.well-known/did.json",
                         "document_sha256": "ab" * 32, "fetched_at": 1_800_000_000, "key": KEY,
                         "method": "did:web:acme.example#key-1", "relationship": "assertionMethod"},
    "agent-enrolment": {
        "agent": "did:key:zDnaerDaTF5BXEavCrfRZEk316dpbLsfPDZ3WJ5hRTPFU2169", "operator": OPERATOR,
        "namespace": "acme", "platform": "tpm2", "machine_fingerprint": "sha256:" + "ab" * 32,
        "ek_certificate_sha256": "01" * 32, "ek_root_sha256": "02" * 32, "trust_anchor": "03" * 32,
        "ak_name": "000b" + "04" * 32, "quote_sha256": "05" * 32, "quote_pcr_selection": "sha256:0,1,2,3,4,5,6,7",
        "quote_pcr_digest": "06" * 32, "certify_sha256": "07" * 32, "agent_key_name": "000b" + "08" * 32,
        "nonce": "09" * 32, "enrolment_digest": "0a" * 32,
        "webauthn": {"credential_id": "AAAA", "authenticator_data": "AAAA", "client_data_json": "AAAA",
                     "signature": "AAAA"},
        "gates": ["G1", "G2", "G3", "G4", "G5", "G6"], "enrolled_at": 1_800_000_000},
    "namespace-policy": {"namespace": "acme", "require_hardware": True},
    "action-record-batch": {"records": [
        {"agent": AGENT, "delegation_chain": [ENTRY], "resource": "accounts/1", "action": "read", "decision": "ALLOW",
         "policy_id": "p@1", "request_digest": "sha-256=:x:", "at": 1_800_000_000, "seq": 7},
        {"agent": AGENT, "delegation_chain": [], "resource": "accounts/2", "action": "delete", "decision": "BLOCK",
         "policy_id": "p@1", "request_digest": "sha-256=:y:", "at": 1_800_000_001, "seq": 8, "code": "scope-refused",
         "reason_code": "action_out_of_scope", "log_size": 42}]},
}
