"""The ``POST /v1/tokens`` request recipe of docs/identity.md, followed by an independent client
(tests/token_request_recipe.py: only ``cryptography`` and ``rfc8785``): the documented worked example is recomputed
and must appear in the document, and a request built from the recipe mints a token that verifies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from issuer.tokens import sign_request
from schemas.errors import TokenRequestSignatureInvalid
from tests import token_request_recipe as recipe
from tests.unit.verifier.token_setup import NOW, Setup, make_setup
from verifier.did_key import did_key_from_public

DOCS = Path(__file__).resolve().parents[3] / "docs" / "identity.md"
RFC8032_TEST_1 = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
DOC_AGENT = "did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw"
DOC_SIGNING_INPUT = (
    '{"agent":"did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw","created":1750000000,'
    '"delegation":"5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e","nonce":"q7Lr2vX9-kT4_mZ8wN1p",'
    '"resource":"mail/inbox/*","service":"mail","task_id":"summarise-inbox","tools":["read","list"],"ttl":120}'
)
DOC_SIGNATURE = "Ok61snlBlZEeADQaR09TnC6df35K7R3Bi8RxJY-lTBJFzSZhQBOFqkF-IWuhghSBK5gSDpKl-U-4PvPPV6oGAg"


def test_the_documented_worked_example() -> None:
    """The example in docs/identity.md, recomputed by the independent client and by issuer.tokens."""
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(RFC8032_TEST_1))
    request = {"agent": DOC_AGENT, "task_id": "summarise-inbox", "tools": ["read", "list"], "service": "mail",
               "resource": "mail/inbox/*", "delegation": "5e" * 32, "ttl": 120, "created": 1750000000,
               "nonce": "q7Lr2vX9-kT4_mZ8wN1p"}
    assert did_key_from_public(key.public_key()) == DOC_AGENT
    assert recipe.signing_input(request).decode() == DOC_SIGNING_INPUT
    assert recipe.signed_request(key, request)["signature"] == DOC_SIGNATURE
    assert sign_request(key, request) == recipe.signed_request(key, request)
    docs = DOCS.read_text(encoding="utf-8")
    for text in (RFC8032_TEST_1, DOC_AGENT, DOC_SIGNING_INPUT, DOC_SIGNATURE):
        assert text in docs  # the document says what this test checks


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    """The token world of tests/unit/verifier/token_setup.py: op -> a -> b -> c, c asks."""
    return make_setup(tmp_path)


def test_a_request_built_from_the_documented_recipe_mints(setup: Setup) -> None:
    """An independent client's request, sent as a non-canonical JSON serialization and parsed as the route parses
    it, mints a token that verifies; a value changed after signing does not."""
    w = setup.world
    request = {"agent": w.did("c"), "task_id": "r\u00e9sum\u00e9 \u2709 of the inbox", "tools": ["list", "read"],
               "service": "mail", "resource": "mail/inbox/7", "delegation": setup.chain[2], "ttl": 60,
               "created": NOW - 30, "nonce": "recipe-nonce-0001"}
    body = json.loads(recipe.wire_body(recipe.signed_request(w.key("c"), request)))
    minted = setup.mint(body)
    assert minted.claims["task_id"] == "r\u00e9sum\u00e9 \u2709 of the inbox" and minted.claims["scope"] == "list read"
    assert setup.verify(minted.token).agent == w.did("c")
    with pytest.raises(TokenRequestSignatureInvalid):
        setup.mint({**json.loads(recipe.wire_body(recipe.signed_request(w.key("c"), request))), "ttl": 61,
                    "nonce": "recipe-nonce-0002"})
