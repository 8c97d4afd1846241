"""The registrar hands the sequencer the statement it parsed only when the body is exactly what is logged, so the
log's fold may take it instead of parsing the logged bytes again (``Checked.as_logged``)."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.cose_sign1 import decode_sign1
from schemas.statement import parse_statement
from transparency.client import sign_statement
from transparency.registration import AllPolicies, Registrar
from verifier.statements import DidKeyResolver


def _registrar() -> Registrar:
    return Registrar(DidKeyResolver(), AllPolicies([]))


def test_a_body_logged_as_it_came_is_handed_on_parsed() -> None:
    body = sign_statement(Ed25519PrivateKey.generate(), b"{}", subject="s", content_type="application/json")
    checked = _registrar().check(body)
    assert checked.logged == body
    assert checked.as_logged is checked.statement
    assert checked.as_logged == parse_statement(checked.logged)


def test_a_body_with_an_unprotected_header_is_not() -> None:
    """The unprotected header is not logged: the statement parsed from the body is not the logged one's."""
    plain = sign_statement(Ed25519PrivateKey.generate(), b"{}", subject="s", content_type="application/json")
    body = decode_sign1(plain).encode(unprotected={99: b"not logged"})
    checked = _registrar().check(body)
    assert checked.logged == plain != body
    assert checked.as_logged is None
