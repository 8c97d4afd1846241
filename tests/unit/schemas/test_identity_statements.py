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
from tests.unit.schemas.good_payloads import GOOD, KEY, WEBAUTHN


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
