"""Tabellion's own statement types (ARCHITECTURE.md §4): one content type and one JSON Schema each.

A payload of one of these types is RFC 8785 canonical JSON (so that every signer, verifier and follower
hashes the same bytes) and must validate against its schema in ``schemas/json/<name>.schema.json``.
Statements of any other content type are general SCITT statements and are not interpreted here.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Final

import rfc8785
from jsonschema import Draft202012Validator

from schemas.errors import PayloadInvalid

CONTENT_TYPE_PREFIX: Final = "application/vnd.tabellion."
CONTENT_TYPE_SUFFIX: Final = "+json"

STATEMENT_TYPES: Final = (
    "operator-registration",
    "key-rotation",
    "agent-passport",
    "delegation",
    "claim-submission",
    "claim-approval",
    "claim-rejection",
    "claim-revocation",
    "revocation",
    "registration-policy",
    "trust-anchor",
    "action-record",
)

# RFC 5280 §5.3.1 CRLReason names, by code (7 is unused).
REVOCATION_REASONS: Final = {
    "unspecified": 0, "keyCompromise": 1, "cACompromise": 2, "affiliationChanged": 3, "superseded": 4,
    "cessationOfOperation": 5, "certificateHold": 6, "removeFromCRL": 8, "privilegeWithdrawn": 9,
    "aACompromise": 10,
}


def content_type(statement_type: str) -> str:
    if statement_type not in STATEMENT_TYPES:
        raise PayloadInvalid(f"{statement_type!r} is not a Tabellion statement type")
    return f"{CONTENT_TYPE_PREFIX}{statement_type}{CONTENT_TYPE_SUFFIX}"


def statement_type_of(ctype: object) -> str | None:
    """The Tabellion statement type a content type names, or ``None`` for any other content type."""
    if not isinstance(ctype, str) or not ctype.startswith(CONTENT_TYPE_PREFIX) or not ctype.endswith(
        CONTENT_TYPE_SUFFIX
    ):
        return None
    name = ctype[len(CONTENT_TYPE_PREFIX) : -len(CONTENT_TYPE_SUFFIX)]
    if name not in STATEMENT_TYPES:
        raise PayloadInvalid(f"content type {ctype!r} names no Tabellion statement type")
    return name


@cache
def _validator(statement_type: str) -> Draft202012Validator:
    text = resources.files("schemas").joinpath("json", f"{statement_type}.schema.json").read_text("utf-8")
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_of(statement_type: str) -> dict[str, Any]:
    content_type(statement_type)
    schema: dict[str, Any] = _validator(statement_type).schema
    return schema


def canonical_json(value: Any) -> bytes:
    return bytes(rfc8785.dumps(value))


def parse_payload(statement_type: str, payload: bytes) -> dict[str, Any]:
    """Decode, check canonical form and validate a payload; raise ``PayloadInvalid`` naming the defect."""
    content_type(statement_type)
    try:
        value = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadInvalid(f"the {statement_type} payload is not JSON: {exc}") from exc
    except RecursionError as exc:
        raise PayloadInvalid(f"the {statement_type} payload nests too deeply") from exc
    try:
        canonical = canonical_json(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise PayloadInvalid(f"the {statement_type} payload cannot be canonicalised: {exc}") from exc
    if canonical != payload:
        raise PayloadInvalid(f"the {statement_type} payload is not RFC 8785 canonical JSON")
    error = next(iter(sorted(_validator(statement_type).iter_errors(value), key=lambda e: list(e.path))), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise PayloadInvalid(f"the {statement_type} payload is invalid at {where}: {error.message[:300]}")
    if not isinstance(value, dict):
        raise PayloadInvalid(f"the {statement_type} payload is not a JSON object")
    return value


def encode_payload(statement_type: str, value: dict[str, Any]) -> bytes:
    """Canonical bytes of a payload, validated first: what a signer puts in the statement."""
    payload = canonical_json(value)
    parse_payload(statement_type, payload)
    return payload
