"""Tabellion statement types: every schema is valid, a good payload of each type passes, bad ones are refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.errors import PayloadInvalid
from schemas.identity_statements import (
    STATEMENT_TYPES,
    canonical_json,
    content_type,
    encode_payload,
    parse_payload,
    schema_of,
    statement_type_of,
)

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


def test_every_type_has_a_schema_and_an_example() -> None:
    assert set(GOOD) == set(STATEMENT_TYPES)
    for name in STATEMENT_TYPES:
        assert schema_of(name)["$id"] == f"urn:tabellion:schema:{name}"


@pytest.mark.parametrize("name", STATEMENT_TYPES)
def test_good_payload_round_trips(name: str) -> None:
    payload = encode_payload(name, GOOD[name])
    assert parse_payload(name, payload) == GOOD[name]
    assert statement_type_of(content_type(name)) == name


@pytest.mark.parametrize("name", STATEMENT_TYPES)
def test_unknown_property_is_refused(name: str) -> None:
    with pytest.raises(PayloadInvalid, match="invalid"):
        parse_payload(name, canonical_json({**GOOD[name], "zzz": 1}))


@pytest.mark.parametrize("name", STATEMENT_TYPES)
def test_missing_required_property_is_refused(name: str) -> None:
    first = sorted(schema_of(name)["required"])[0]
    value = {k: v for k, v in GOOD[name].items() if k != first}
    with pytest.raises(PayloadInvalid, match=first):
        parse_payload(name, canonical_json(value))


def test_non_canonical_json_is_refused() -> None:
    pretty = json.dumps(GOOD["revocation"], indent=2).encode()
    with pytest.raises(PayloadInvalid, match="canonical"):
        parse_payload("revocation", pretty)


@pytest.mark.parametrize(
    ("name", "field", "value"),
    [
        ("delegation", "agent", "not-a-did"),
        ("operator-registration", "next_key_digest", "short"),
        ("key-rotation", "previous", "AB" * 32),
        ("revocation", "reason", "becauseISaidSo"),
        ("delegation", "max_depth", 99),
        ("action-record", "decision", "MAYBE"),
        ("action-record", "seq", 0),
        ("action-record", "code", "Scope Refused"),
        ("action-record", "passport", "AB" * 32),
        ("agent-consent", "agent", "did:web:agents.example:a1"),  # an agent consents with its own did:key
        ("agent-consent", "operator", "not-a-did"),
        ("approver-enrolment", "registration", {"client_data_json": "eyJ9"}),
        ("approver-enrolment", "webauthn", {**WEBAUTHN, "signature": "not base64url!"}),
        ("claim-rejection", "webauthn", {"credential_id": "A" * 22}),
        ("claim-revocation", "webauthn", {**WEBAUTHN, "extra": "x"}),
        ("did-web-evidence", "relationship", "authentication"),
        ("did-web-evidence", "url", "http://acme.example/.well-known/did.json"),
        ("did-web-evidence", "did", "did:key:" + KEY),
    ],
)
def test_bad_field_values_are_refused(name: str, field: str, value: Any) -> None:
    with pytest.raises(PayloadInvalid, match=field):
        parse_payload(name, canonical_json({**GOOD[name], field: value}))


@pytest.mark.parametrize("name", ["claim-approval", "claim-rejection", "claim-revocation"])
def test_every_claim_decision_may_carry_a_humans_assertion(name: str) -> None:
    payload = {**GOOD[name], "decided_by": "did:web:acme.example:people:alice", "webauthn": WEBAUTHN}
    assert parse_payload(name, canonical_json(payload)) == payload


def test_not_json_and_unknown_types() -> None:
    with pytest.raises(PayloadInvalid, match="not JSON"):
        parse_payload("revocation", b"\xff")
    with pytest.raises(PayloadInvalid):
        content_type("nonsense")
    with pytest.raises(PayloadInvalid):
        statement_type_of("application/vnd.tabellion.nonsense+json")
    assert statement_type_of("application/json") is None
    assert statement_type_of(60) is None


def test_deeply_nested_json_is_a_payload_error_not_a_crash() -> None:
    with pytest.raises(PayloadInvalid, match="nests too deeply"):
        parse_payload("delegation", b"[" * 100_000 + b"]" * 100_000)
