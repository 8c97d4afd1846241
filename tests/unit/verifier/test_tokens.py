"""Task-bound tokens: minted by issuer.tokens on a folded state, verified offline by verifier.tokens; one test per
refusal, at minting and at verification, and a cross-check of the JWS with PyJWT (an independent implementation)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from issuer.tokens import sign_jws, sign_request
from schemas.base64url import b64url
from schemas.errors import (
    DelegationRefused,
    InvalidParameter,
    MalformedKey,
    PassportRefused,
    ScopeRefused,
    TokenAlgorithmRefused,
    TokenAudienceMismatch,
    TokenChainMismatch,
    TokenExpired,
    TokenIssuerMismatch,
    TokenKeyUnknown,
    TokenLifetimeTooLong,
    TokenMalformed,
    TokenNotYetValid,
    TokenRequestReplayed,
    TokenRequestSignatureInvalid,
    TokenRequestStale,
    TokenScopeRefused,
    TokenSignatureInvalid,
)
from tests.unit.verifier.identity_world import HOUR, T0
from tests.unit.verifier.token_setup import ISS, NOW, Setup, make_setup
from transparency.client import did_of
from verifier.fold import Fold
from verifier.tokens import (
    actor_claim,
    jwk_thumbprint,
    key_from_jwk,
    parse_jws,
    public_jwk,
    verify_token,
)


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return make_setup(tmp_path)


def _parts(token: str) -> list[str]:
    return token.split(".")


def _b64json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


# --- the positive path ----------------------------------------------------------------------------------------


def test_minted_token_verifies_offline_with_the_chain_and_act_nesting(setup: Setup) -> None:
    minted = setup.mint()
    header = json.loads(base64.urlsafe_b64decode(_parts(minted.token)[0] + "=="))
    assert header == {"alg": "EdDSA", "kid": setup.key.kid, "typ": "JWT"}
    w = setup.world
    claims = minted.claims
    assert (claims["iss"], claims["sub"], claims["aud"], claims["scope"]) == (ISS, w.did("op"), "mail", "read list")
    assert claims["exp"] - claims["iat"] == 120 and claims["nbf"] == claims["iat"] == NOW
    assert claims["delegation_chain"] == list(setup.chain)
    # RFC 8693 §4.1: sub is acted for (the root principal); the current actor c outermost, the least recent a deepest
    assert claims["act"] == {"sub": w.did("c"), "act": {"sub": w.did("b"), "act": {"sub": w.did("a")}}}
    assert minted.json()["expires_at"] == NOW + 120 and minted.json()["chain"] == list(setup.chain)

    verified = setup.verify(minted.token, tool="list")
    assert verified.agent == w.did("c") and verified.chain == setup.chain
    assert verified.principals == (w.did("op"), w.did("a"), w.did("b")) and verified.root_principal == w.did("op")
    assert verified.tools == ("read", "list") and verified.task_id == "task-42"
    # a plain mapping kid -> key works as well as the JWK Set; None skips a check
    assert verify_token(minted.token, setup.keys.public_keys(), setup.state, NOW, audience=None, tool=None,
                        resource=None).jti == claims["jti"]


def test_a_token_of_a_retired_registry_generation_still_verifies(setup: Setup) -> None:
    old = setup.mint()
    setup.keys.rotate()
    new = setup.mint()
    assert parse_jws(new.token).header["kid"] == setup.key.kid != parse_jws(old.token).header["kid"]
    assert setup.verify(old.token).kid == parse_jws(old.token).header["kid"]
    assert setup.verify(new.token).kid == setup.key.kid


def test_a_resource_pattern_covers_resources_under_it(setup: Setup) -> None:
    token = setup.mint(resource="mail/inbox/*").token
    assert setup.verify(token, resource="mail/inbox/9/attachments").resource == "mail/inbox/*"
    with pytest.raises(TokenScopeRefused):
        setup.verify(token, resource="mail/sent/1")


# --- JOSE known answers and an independent implementation ---------------------------------------------------


def test_jwk_thumbprint_rfc8037_a3() -> None:
    """RFC 8037 Appendix A.3: the RFC 7638 thumbprint of the Ed25519 key of A.2."""
    x = base64.urlsafe_b64decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
    key = Ed25519PublicKey.from_public_bytes(x)
    assert jwk_thumbprint(key) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    assert key_from_jwk({**public_jwk(key), "kid": "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"})[0] == jwk_thumbprint(
        key)


def test_jws_signature_rfc8037_a4() -> None:
    """RFC 8037 Appendix A.4: the Ed25519 JWS of "Example of Ed25519 signing" under {"alg":"EdDSA"}."""
    d = base64.urlsafe_b64decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=")
    signing_input = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
    expected = "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
    assert b64url(json.dumps({"alg": "EdDSA"}, separators=(",", ":")).encode()) == signing_input.split(".")[0]
    assert b64url(Ed25519PrivateKey.from_private_bytes(d).sign(signing_input.encode())) == expected


def test_pyjwt_verifies_our_token_with_our_jwk_set(setup: Setup) -> None:
    minted = setup.mint()
    jwks = jwt.PyJWKSet.from_dict(setup.keys.jwk_set())
    jwk = next(k for k in jwks.keys if k.key_id == setup.key.kid)
    decoded = jwt.decode(minted.token, jwk.key, algorithms=["EdDSA"], audience="mail", issuer=ISS,
                         options={"verify_exp": False, "verify_iat": False, "verify_nbf": False})
    assert decoded == minted.claims
    assert jwt.get_unverified_header(minted.token) == {"alg": "EdDSA", "kid": setup.key.kid, "typ": "JWT"}


def test_we_verify_a_token_pyjwt_signed(setup: Setup) -> None:
    claims = setup.mint().claims
    token = jwt.encode(claims, setup.key.private, algorithm="EdDSA", headers={"kid": setup.key.kid})
    assert setup.verify(token).claims == claims


# --- refusals at verification: the form, the signature, the key ---------------------------------------------


def test_alg_none_is_refused(setup: Setup) -> None:
    claims = setup.mint().claims
    token = f"{_b64json({'alg': 'none', 'kid': setup.key.kid, 'typ': 'JWT'})}.{_b64json(claims)}."
    with pytest.raises(TokenAlgorithmRefused, match="'none'"):
        setup.verify(token)


def test_alg_hs256_with_the_public_key_as_secret_is_refused(setup: Setup) -> None:
    """The classic key-confusion forgery: HMAC keyed with the (public) registry key bytes."""
    claims = setup.mint().claims
    signing_input = f"{_b64json({'alg': 'HS256', 'kid': setup.key.kid, 'typ': 'JWT'})}.{_b64json(claims)}"
    secret = json.dumps(setup.keys.jwk_set()["keys"][0]).encode()
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(TokenAlgorithmRefused, match="HS256"):
        setup.verify(f"{signing_input}.{b64url(mac)}")


def test_unknown_kid_is_refused(setup: Setup) -> None:
    other = Ed25519PrivateKey.generate()
    kid = jwk_thumbprint(other.public_key())
    token = sign_jws({"alg": "EdDSA", "kid": kid, "typ": "JWT"}, setup.mint().claims, other)
    with pytest.raises(TokenKeyUnknown):
        setup.verify(token)


def test_bad_signature_is_refused(setup: Setup) -> None:
    head, body, signature = _parts(setup.mint().token)
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[0] ^= 1
    with pytest.raises(TokenSignatureInvalid):
        setup.verify(f"{head}.{body}.{b64url(bytes(raw))}")


def test_signature_by_another_key_under_the_registry_kid_is_refused(setup: Setup) -> None:
    token = sign_jws({"alg": "EdDSA", "kid": setup.key.kid, "typ": "JWT"}, setup.mint().claims,
                     Ed25519PrivateKey.generate())
    with pytest.raises(TokenSignatureInvalid):
        setup.verify(token)


def test_tampered_claims_are_refused(setup: Setup) -> None:
    minted = setup.mint()
    head, _, signature = _parts(minted.token)
    wider = {**minted.claims, "scope": "read list write"}
    with pytest.raises(TokenSignatureInvalid):
        setup.verify(f"{head}.{_b64json(wider)}.{signature}", tool="write")


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t + ".",  # four parts
        lambda t: t.rsplit(".", 1)[0],  # two parts
        lambda t: t.replace(".", "=.", 1),  # padding
        lambda t: "+" + t[1:],  # not base64url
        lambda t: t + "é",  # not ASCII
        lambda t: "x" * 20000,  # too long
    ],
)
def test_malformed_compact_serializations_are_refused(setup: Setup, mangle: Any) -> None:
    with pytest.raises(TokenMalformed):
        setup.verify(mangle(setup.mint().token))


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "EdDSA", "kid": "K", "typ": "JWT", "jku": "https://evil.example/keys"},
        {"alg": "EdDSA", "kid": "K", "typ": "JWT", "crit": ["exp"]},
        {"alg": "EdDSA", "kid": "K"},  # no typ
        {"alg": "EdDSA", "kid": "K", "typ": "at+jwt"},
        {"alg": "EdDSA", "typ": "JWT"},  # no kid
    ],
)
def test_headers_outside_the_format_are_refused(setup: Setup, header: dict[str, Any]) -> None:
    header = {name: (setup.key.kid if value == "K" else value) for name, value in header.items()}
    with pytest.raises(TokenMalformed):
        setup.verify(setup.forge(setup.mint().claims, header))


@pytest.mark.parametrize("alg", ["ES256", "RS256", "HS512", "Ed25519", "eddsa", None])
def test_every_alg_but_eddsa_is_refused(setup: Setup, alg: str | None) -> None:
    head = {"alg": alg, "kid": setup.key.kid, "typ": "JWT"}
    token = f"{_b64json(head)}.{_b64json(setup.mint().claims)}.{b64url(bytes(64))}"
    with pytest.raises(TokenAlgorithmRefused):
        setup.verify(token)


def test_duplicate_json_members_are_refused(setup: Setup) -> None:
    minted = setup.mint()
    payload = json.dumps(minted.claims, separators=(",", ":"))[:-1] + ',"aud":"files"}'
    token = f"{_parts(minted.token)[0]}.{b64url(payload.encode())}.{b64url(bytes(64))}"
    with pytest.raises(TokenMalformed, match="repeats"):
        parse_jws(token)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"extra": 1}, TokenMalformed),
        ({"exp": NOW + 30.5}, TokenMalformed),
        ({"iat": True}, TokenMalformed),
        ({"scope": "read  list"}, TokenMalformed),
        ({"delegation_chain": []}, TokenMalformed),
        ({"nbf": NOW + 200, "exp": NOW + 100}, TokenMalformed),
        ({"iss": "did:web:other.example"}, TokenIssuerMismatch),
        ({"nbf": NOW + 60}, TokenNotYetValid),
    ],
)
def test_claims_outside_the_format_are_refused(setup: Setup, change: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        setup.verify(setup.forge({**setup.mint().claims, **change}))


def test_jwk_sets_are_read_strictly(setup: Setup) -> None:
    jwk = setup.keys.jwk_set()["keys"][0]
    with pytest.raises(MalformedKey, match="thumbprint"):
        key_from_jwk({**jwk, "kid": "not-the-thumbprint"})
    with pytest.raises(MalformedKey, match="private"):
        key_from_jwk({**jwk, "d": "AAAA"})
    with pytest.raises(MalformedKey):
        key_from_jwk({**jwk, "crv": "X25519"})
    with pytest.raises(MalformedKey):
        verify_token(setup.mint().token, {"keys": "nope"}, setup.state, NOW, audience=None, tool=None, resource=None)


# --- refusals at verification: time, audience, scope ----------------------------------------------------------


def test_expired_token_is_refused(setup: Setup) -> None:
    token = setup.mint().token
    assert setup.verify(token, now=NOW + 120 + 4).agent  # within the default leeway of 5 s
    with pytest.raises(TokenExpired):
        setup.verify(token, now=NOW + 120 + 5)
    with pytest.raises(TokenExpired):
        verify_token(token, setup.keys.jwk_set(), setup.state, NOW + 121, audience=None, tool=None, resource=None,
                     leeway=0)


def test_ttl_over_300_is_refused_at_minting(setup: Setup) -> None:
    with pytest.raises(InvalidParameter, match="ttl 301"):
        setup.mint(ttl=301)
    assert setup.mint(ttl=300).claims["exp"] == NOW + 300


def test_lifetime_over_300_is_refused_at_verification(setup: Setup) -> None:
    claims = setup.mint().claims
    with pytest.raises(TokenLifetimeTooLong):
        setup.verify(setup.forge({**claims, "exp": claims["iat"] + 301}))


def test_wrong_audience_is_refused(setup: Setup) -> None:
    with pytest.raises(TokenAudienceMismatch):
        setup.verify(setup.mint().token, audience="files")


def test_tool_out_of_scope_is_refused(setup: Setup) -> None:
    with pytest.raises(TokenScopeRefused, match="'list'"):
        setup.verify(setup.mint(tools=["read"]).token, tool="list")


def test_resource_out_of_scope_is_refused(setup: Setup) -> None:
    with pytest.raises(TokenScopeRefused):
        setup.verify(setup.mint().token, resource="mail/inbox/8")


def test_token_scope_wider_than_the_delegation_is_refused_against_the_log(setup: Setup) -> None:
    claims = setup.mint().claims
    with pytest.raises(ScopeRefused) as refused:
        setup.verify(setup.forge({**claims, "scope": "read write"}), tool="write")
    assert refused.value.reason_code == "action_out_of_scope"


# --- refusals at verification: the log state ------------------------------------------------------------------


def test_revoked_delegation_in_the_chain_is_refused(setup: Setup) -> None:
    token = setup.mint().token
    setup.world.revoke("a", setup.chain[1])  # a revokes a -> b: b -> c falls with it
    with pytest.raises(DelegationRefused) as refused:
        setup.verify(token)
    assert refused.value.reason_code == "delegation_revoked"


def test_expired_delegation_in_the_chain_is_refused(setup: Setup) -> None:
    end = T0 + 2 * HOUR  # b -> c's not_after
    token = setup.mint(now=end - 10, created=end - 10).token
    assert setup.verify(token, now=end - 1).agent
    with pytest.raises(DelegationRefused) as refused:
        setup.verify(token, now=end)
    assert refused.value.reason_code == "delegation_expired"


def test_chain_not_ending_at_the_current_actor_is_refused(setup: Setup) -> None:
    claims = setup.mint().claims
    w = setup.world
    act = actor_claim([w.did("a"), w.did("b"), w.did("x")])  # x has a passport, but the chain is to c
    with pytest.raises(TokenChainMismatch, match="ends at"):
        setup.verify(setup.forge({**claims, "act": act}))


def test_chain_not_granted_by_sub_is_refused(setup: Setup) -> None:
    claims = setup.mint().claims
    for sub in (setup.world.did("a"), setup.world.did("x")):
        with pytest.raises(TokenChainMismatch, match="granted by"):
            setup.verify(setup.forge({**claims, "sub": sub}))


def test_chain_with_a_gap_or_out_of_order_is_refused(setup: Setup) -> None:
    claims = setup.mint().claims
    root, ab, bc = setup.chain
    for listed in ([root, bc], [ab, bc], [bc, ab, root], [root, ab, bc, bc]):
        with pytest.raises(TokenChainMismatch):
            setup.verify(setup.forge({**claims, "delegation_chain": listed}))
    with pytest.raises(TokenChainMismatch, match="not an accepted delegation"):
        setup.verify(setup.forge({**claims, "delegation_chain": [root, ab, "ab" * 32]}))


def test_inverted_act_nesting_is_refused(setup: Setup) -> None:
    """The encoding before RFC 8693 §4.1 was read right: sub the agent, act its principals (the leaf's principal
    outermost, the root deepest). Correctly signed, such a token is refused."""
    claims = setup.mint().claims
    w = setup.world
    inverted = {**claims, "sub": w.did("c"),
                "act": {"sub": w.did("b"), "act": {"sub": w.did("a"), "act": {"sub": w.did("op")}}}}
    with pytest.raises(TokenChainMismatch, match="current actor"):
        setup.verify(setup.forge(inverted))


def test_act_nesting_not_matching_the_chain_is_refused(setup: Setup) -> None:
    claims = setup.mint().claims
    w = setup.world
    reversed_act = actor_claim([w.did("c"), w.did("b"), w.did("a")])  # the least recent outermost
    flat = {"sub": w.did("c")}
    with_root = actor_claim([w.did("op"), w.did("a"), w.did("b"), w.did("c")])  # the root principal is no actor
    for act in (reversed_act, flat, with_root, actor_claim([w.did("a"), w.did("x"), w.did("c")])):
        with pytest.raises(TokenChainMismatch, match="act"):
            setup.verify(setup.forge({**claims, "act": act}))


def test_revoked_agent_is_refused(setup: Setup) -> None:
    """Revocation at machine speed: a token minted before the agent's revocation fails on the state folded just
    after the revocation entry, with no other change."""
    token = setup.mint().token
    before = setup.state
    setup.world.revoke("op", setup.world.did("c"))
    after = setup.state
    assert after.outcomes[-1].accepted and after.size == before.size + 1
    assert setup.verify(token, state=before).agent
    with pytest.raises(PassportRefused) as refused:
        setup.verify(token, state=after)
    assert refused.value.reason_code == "revoked"


def test_state_behind_the_token_checkpoint_is_named(setup: Setup) -> None:
    token = setup.mint().token
    behind = Fold().apply_all(setup.world.entries[:-1])  # without b -> c
    with pytest.raises(TokenChainMismatch, match="checkpoint"):
        setup.verify(token, state=behind)


# --- refusals at minting ----------------------------------------------------------------------------------------


def test_bad_agent_request_signature_is_refused(setup: Setup) -> None:
    with pytest.raises(TokenRequestSignatureInvalid):
        setup.mint(setup.request(signer="b"))
    body = setup.request()
    with pytest.raises(TokenRequestSignatureInvalid):
        setup.mint({**body, "tools": ["read"]})  # changed after signing


def test_stale_or_future_created_is_refused(setup: Setup) -> None:
    with pytest.raises(TokenRequestStale):
        setup.mint(created=NOW - 61)
    with pytest.raises(TokenRequestStale):
        setup.mint(created=NOW + 61)
    assert setup.mint(created=NOW - 60).claims["iat"] == NOW


def test_replayed_nonce_is_refused(setup: Setup) -> None:
    body = setup.request()
    setup.mint(body)
    with pytest.raises(TokenRequestReplayed):
        setup.mint(body, now=NOW + 30)
    later = setup.request(created=NOW + 301, nonce=body["nonce"])
    assert setup.mint(later, now=NOW + 301).claims["act"]["sub"] == setup.world.did("c")  # out of the window


@pytest.mark.parametrize(
    "change",
    [{"tools": []}, {"tools": ["read", "read"]}, {"tools": ["read write"]}, {"ttl": 0}, {"nonce": "short"},
     {"delegation": "xyz"}, {"agent": "c"}, {"extra": 1}, {"created": "now"}, {"signature": "a="}],
)
def test_malformed_requests_are_refused(setup: Setup, change: dict[str, Any]) -> None:
    with pytest.raises(InvalidParameter):
        setup.mint({**setup.request(), **change})


def test_minting_needs_a_usable_passport(setup: Setup) -> None:
    setup.world.revoke("op", setup.world.did("c"))
    with pytest.raises(PassportRefused):
        setup.mint()


def test_a_request_refused_for_its_signature_or_passport_stores_no_nonce(setup: Setup) -> None:
    """A did:key resolves to its own key, so anyone can sign a request: it must not use up replay capacity."""
    stranger = Ed25519PrivateKey.generate()
    body = sign_request(stranger, {**setup.request(), "agent": did_of(stranger)})
    for _ in range(2):  # the same nonce twice: refused for the passport both times, never as a replay
        with pytest.raises(PassportRefused):
            setup.mint(body)
    with pytest.raises(TokenRequestSignatureInvalid):
        setup.mint(setup.request(signer="b"))
    assert len(setup.nonces) == 0
    setup.mint()
    assert len(setup.nonces) == 1


def test_minting_needs_the_delegation_to_the_agent(setup: Setup) -> None:
    with pytest.raises(DelegationRefused) as refused:
        setup.mint(setup.request("b"))  # b asks with the delegation b -> c
    assert refused.value.reason_code == "delegation_not_for_agent"
    with pytest.raises(DelegationRefused) as refused:
        setup.mint(delegation="ab" * 32)
    assert refused.value.reason_code == "no_delegation"
    setup.world.revoke("op", setup.chain[0])
    with pytest.raises(DelegationRefused) as refused:
        setup.mint()
    assert refused.value.reason_code == "delegation_revoked"


@pytest.mark.parametrize(
    ("change", "reason"),
    [({"tools": ["read", "write"]}, "action_out_of_scope"), ({"service": "files"}, "service_out_of_scope"),
     ({"resource": "mail/sent/1"}, "resource_out_of_scope"), ({"resource": "mail/*"}, "resource_out_of_scope")],
)
def test_minting_refuses_what_the_leaf_does_not_cover(setup: Setup, change: dict[str, Any], reason: str) -> None:
    with pytest.raises(ScopeRefused) as refused:
        setup.mint(**change)
    assert refused.value.reason_code == reason
