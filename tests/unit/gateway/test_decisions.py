"""Decisions from a folded identity state: the request as received, its signature, identity headers,
replay, and the authority of the operator -> A -> B -> C chain."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.decisions import (
    Decision,
    Gatekeeper,
    agent_key_resolver,
    check_identity_headers,
    forwarded_path,
    redact_headers,
    request_digest,
    resource_of,
    split_proxy_path,
    target_uri,
)
from gateway.errors import HopByHopFieldSigned, MethodOverrideRefused
from gateway.replay import NonceStore
from gateway.signatures import AGENT_IDENTITY_HEADERS, Request
from issuer.statements import (
    Signer,
    multikey_of,
    revocation,
)
from schemas.errors import (
    AgentIdentityMismatch,
    ClaimRefused,
    ComponentNotCovered,
    LogUntrusted,
    PassportRefused,
    ReplayDetected,
    RequestSignatureInvalid,
    ResourceInvalid,
    ScopeRefused,
    SignatureKeyUnknown,
    TabellionError,
)
from tests.gateway_world import (
    CONNECTION,
    GATEWAY,
    SERVICE,
    FixedLog,
    Sink,
    World,
    build_world,
)
from verifier.fold import IdentityState


@pytest.fixture(scope="module")
def world() -> World:
    return build_world()


@pytest.fixture
def nonces(tmp_path: Path) -> Iterator[NonceStore]:
    with NonceStore(tmp_path / "nonces.sqlite") as store:
        yield store


def gatekeeper(state: IdentityState, nonces: NonceStore, sink: Sink | None = None, **kw: Any) -> Gatekeeper:
    return Gatekeeper(FixedLog(state), nonces, sink=sink, **kw)


def decide(keeper: Gatekeeper, request: Request) -> Decision:
    connection_id, rest = split_proxy_path(request.target_uri.removeprefix(GATEWAY).partition("?")[0])
    assert connection_id == CONNECTION.id
    return keeper.decide(CONNECTION, request, resource_of(rest))


# --- building the request ----------------------------------------------------------------------------


def test_target_uri_is_what_the_client_addressed() -> None:
    assert target_uri("http", "gw.test:8700", "/proxy/m/a%20b", "x=1&y") == "http://gw.test:8700/proxy/m/a%20b?x=1&y"
    assert target_uri("http", "ignored", "/proxy/m/a", "", "https://gw.example/prefix/") == (
        "https://gw.example/prefix/proxy/m/a")
    with pytest.raises(TabellionError, match="no Host"):
        target_uri("http", None, "/proxy/m/a", "")


def test_resource_is_the_decoded_path_after_the_connection() -> None:
    assert split_proxy_path("/proxy/mail-api/inbox/1") == ("mail-api", "inbox/1")
    assert split_proxy_path("/proxy/mail-api") == ("mail-api", "")
    assert resource_of("inbox/a%20b/c") == "inbox/a b/c"
    for sneaky in ("inbox/../secret", "inbox/%2e%2E/secret", "inbox/.", "inbox/a%2Fb", "inbox\\x", "inbox/%00",
                   "inbox/%ff", "inbox/é",
                   # path parameters, raw or encoded: "inbox/..;/outbox/1" is outbox/1 to Tomcat
                   "inbox/..;/outbox/1", "inbox;x/1", "inbox/%3b/1", "inbox/a%3Bb",
                   # encoded dots, double encoding, IIS %u escapes, stray percents
                   "inbox/%2e", "inbox/a%2Ejson", "inbox/%252e%252e/outbox", "inbox/%25", "inbox/%u002e%u002e/outbox",
                   "inbox/%", "inbox/%4", "inbox/%zz",
                   # empty segments (merged by some upstreams), control characters
                   "inbox//1", "/inbox/1", "inbox/%0a", "inbox/%7f", "inbox/%c2%85"):
        with pytest.raises(ResourceInvalid):
            resource_of(sneaky)
    assert resource_of("inbox/") == "inbox/" and resource_of("") == ""


def test_what_goes_upstream_is_what_was_decided() -> None:
    # the agent's own escapes do not go up: the decided resource is encoded one way
    for raw, resource, path in (("inbox/%41bc", "inbox/Abc", "inbox/Abc"), ("inbox/a%20b", "inbox/a b", "inbox/a%20b"),
                                ("inbox/caf%C3%A9", "inbox/café", "inbox/caf%C3%A9"), ("inbox/a+b:c@d", "inbox/a+b:c@d",
                                                                                       "inbox/a+b:c@d"),
                                ("inbox/%3F%23", "inbox/?#", "inbox/%3F%23"), ("inbox/", "inbox/", "inbox/")):
        assert resource_of(raw) == resource
        assert forwarded_path(resource) == path
        assert resource_of(path) == resource  # the upstream decodes exactly the resource decided on


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")), min_size=1, max_size=8),
                min_size=1, max_size=4))
def test_forwarded_paths_decode_to_the_decided_resource(segments: list[str]) -> None:
    raw = "/".join(quote(segment, safe="") for segment in segments)
    ambiguous = any(seg in (".", "..") or set(seg) & set("/\\;%") or not seg.isprintable() for seg in segments)
    try:
        resource = resource_of(raw)
    except ResourceInvalid:
        assert ambiguous
        return
    assert not ambiguous
    assert resource == "/".join(segments)
    assert unquote(forwarded_path(resource), errors="strict") == resource
    assert resource_of(forwarded_path(resource)) == resource


def test_request_digest_and_redaction(world: World) -> None:
    request = world.request(method="POST", body=b'{"a":1}')
    assert request_digest(request).startswith("sha-256:") and request_digest(request) != request_digest(
        Request(request.method, request.target_uri, request.headers, b'{"a":2}'))
    shown = dict(redact_headers((*request.headers, ("Authorization", "Bearer t"), ("X-Key", "k")), ("x-key",)))
    assert shown["Signature"] == shown["Authorization"] == shown["X-Key"] == "***"
    assert shown["Signature-Input"] != "***" and shown["Tabellion-Subject"] == world.c.identity


# --- keys and identity headers -----------------------------------------------------------------------


def test_only_the_current_key_of_an_agent_with_a_passport_resolves(world: World) -> None:
    state = world.state()
    resolve = agent_key_resolver(state)
    multikey = multikey_of(world.c.key)
    for keyid in (world.c.identity, f"{world.c.identity}#{multikey}"):
        key = resolve(keyid)
        assert isinstance(key, Ed25519PublicKey) and key.public_bytes_raw() == world.c.ed25519.public_key(
        ).public_bytes_raw()
    assert resolve(f"{world.c.identity}#z6MkOther") is None
    assert resolve(Signer(Ed25519PrivateKey.generate()).identity) is None  # no passport on the log


@pytest.mark.parametrize("header", ["Tabellion-Namespace", "Tabellion-Subject", "Tabellion-Agent-Key",
                                    "Tabellion-Agent-Passport"])
def test_identity_headers_must_say_what_the_log_says(world: World, header: str) -> None:
    state = world.state()
    good = world.request()
    check_identity_headers(good, state, world.c.identity)
    for form in (world.c.identity, multikey_of(world.c.key)):  # every way of naming the key
        check_identity_headers(world.request(headers=world.headers({"Tabellion-Agent-Key": form})), state,
                               world.c.identity)
    wrong = {"Tabellion-Namespace": "other", "Tabellion-Subject": world.b.identity,
             "Tabellion-Agent-Key": world.b.identity, "Tabellion-Agent-Passport": world.passports[world.b.identity]}
    with pytest.raises(AgentIdentityMismatch, match=header.lower()):
        check_identity_headers(world.request(headers=world.headers({header: wrong[header]})), state,
                               world.c.identity)


# --- deciding ----------------------------------------------------------------------------------------


def test_an_agent_at_the_end_of_the_chain_is_allowed(world: World, nonces: NonceStore,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    sink = Sink()
    keeper = gatekeeper(world.state(), nonces, sink)
    with caplog.at_level(logging.INFO, logger="gateway.decisions"):
        decision = decide(keeper, world.request())
    assert decision.allowed and decision.outcome == "allow" and decision.code == "ok"
    assert (decision.agent, decision.action, decision.resource, decision.service) == (
        world.c.identity, "read", "inbox/1", SERVICE)
    assert decision.chain == world.chain and decision.claim == world.claim
    assert decision.root_principal == world.operator.identity and decision.log_size == len(world.statements)
    assert decision.passport == world.passports[world.c.identity]
    assert sink.decisions == [decision]
    line = json.loads(caplog.records[-1].getMessage())
    assert line["outcome"] == "allow" and line["chain"] == list(world.chain) and "headers" not in line
    posted = decide(keeper, world.request(method="POST", body=b'{"to":"x"}'))
    assert posted.action == "write" and posted.allowed


def test_refusals_are_raised_recorded_and_named(world: World, nonces: NonceStore) -> None:
    sink = Sink()
    keeper = gatekeeper(world.state(), nonces, sink, log_headers=True)
    stranger = Signer(Ed25519PrivateKey.generate())
    cases: list[tuple[Request, type[TabellionError], str]] = [
        (world.request(key=Ed25519PrivateKey.generate()), RequestSignatureInvalid, "request-signature-invalid"),
        (world.request(agent=stranger), SignatureKeyUnknown, "signature-key-unknown"),
        (world.request("/proxy/mail-api/outbox/1"), ScopeRefused, "resource_out_of_scope"),
        (world.request(method="DELETE"), ScopeRefused, "action_out_of_scope"),
        (world.request(method="POST", body=b"x", components=["@method", "@target-uri"]), ComponentNotCovered,
         "signature-component-not-covered"),
        (world.request(headers=world.headers({"Tabellion-Namespace": "other"})), AgentIdentityMismatch,
         "agent-identity-mismatch"),
    ]
    for request, error, reason in cases:
        with pytest.raises(error):
            decide(keeper, request)
        recorded = sink.decisions[-1]
        assert recorded.outcome == "refuse" and reason in (recorded.code, recorded.reason_code)
        if error in (ScopeRefused, AgentIdentityMismatch):  # the signature verified: the agent is known
            assert recorded.agent == world.c.identity and recorded.log_size == len(world.statements)
        assert recorded.status in (400, 401, 403)
        assert recorded.headers is not None and dict(recorded.headers)["Signature"] == "***"


def test_a_nonce_is_accepted_once_even_when_refused_and_across_restarts(world: World, tmp_path: Path) -> None:
    state = world.state()
    request = world.request()
    with NonceStore(tmp_path / "n.sqlite") as store:
        decide(gatekeeper(state, store), request)
        with pytest.raises(ReplayDetected):
            decide(gatekeeper(state, store), request)
        outside = world.request("/proxy/mail-api/outbox/1")
        with pytest.raises(ScopeRefused):
            decide(gatekeeper(state, store), outside)
        with pytest.raises(ReplayDetected):  # the replay is named first, whatever else is wrong
            decide(gatekeeper(state, store), outside)
    with NonceStore(tmp_path / "n.sqlite") as reopened, pytest.raises(ReplayDetected):
        decide(gatekeeper(state, reopened), request)


def test_revocation_and_unapproved_claims_refuse(world: World, nonces: NonceStore) -> None:
    revoked = world.state(revocation(world.operator, world.c.identity, "privilegeWithdrawn"))
    with pytest.raises(PassportRefused) as caught:
        decide(gatekeeper(revoked, nonces), world.request())
    assert caught.value.reason_code == "revoked"
    unapproved = World(world.operator, world.a, world.b, world.c, world.statements[:-1], world.passports)
    with pytest.raises(ClaimRefused):
        decide(gatekeeper(unapproved.state(), nonces), world.request())


def test_an_untrusted_log_refuses_before_anything_else(world: World, nonces: NonceStore) -> None:
    sink = Sink()
    keeper = Gatekeeper(FixedLog(world.state(), LogUntrusted("split view")), nonces, sink=sink)
    with pytest.raises(LogUntrusted):
        decide(keeper, world.request())
    assert sink.decisions[-1].code == "log-untrusted" and sink.decisions[-1].status == 503
    assert nonces.count() == 0


# --- what the signature covers and what goes upstream (gateway.proxy) --------------------------------------

SIGNED = ["@method", "@target-uri", *AGENT_IDENTITY_HEADERS]


def with_fields(world: World, *extra: tuple[str, str], signed: tuple[str, ...] = (), method: str = "GET") -> Request:
    return world.request(method=method, headers=(*world.headers(), *extra), components=[*SIGNED, *signed])


def test_a_signed_method_override_decides_the_action_an_unsigned_one_nothing(world: World,
                                                                              nonces: NonceStore) -> None:
    keeper = gatekeeper(world.state(), nonces)
    unsigned = decide(keeper, with_fields(world, ("X-HTTP-Method-Override", "DELETE")))
    assert unsigned.action == "read" and "x-http-method-override" not in unsigned.covered  # dropped on the way up
    signed_write = decide(keeper, with_fields(world, ("X-HTTP-Method-Override", "post"),
                                              signed=("x-http-method-override",)))
    assert signed_write.action == "write" and "x-http-method-override" in signed_write.covered
    with pytest.raises(ScopeRefused) as caught:  # DELETE is outside C's scope, whatever the request line says
        decide(keeper, with_fields(world, ("X-HTTP-Method", "DELETE"), signed=("x-http-method",)))
    assert caught.value.reason_code == "action_out_of_scope"
    for extra, signed in (((("X-Original-URL", "/outbox/1"),), ("x-original-url",)),
                          ((("X-Rewrite-URL", "/outbox/1"),), ("x-rewrite-url",)),
                          ((("X-HTTP-Method-Override", "DELETE"), ("X-Method-Override", "GET")),
                           ("x-http-method-override", "x-method-override")),
                          ((("X-HTTP-Method-Override", "GET /x"),), ("x-http-method-override",))):
        with pytest.raises(MethodOverrideRefused):
            decide(keeper, with_fields(world, *extra, signed=signed))
    mcp = dataclasses.replace(CONNECTION, kind="mcp")
    request = with_fields(world, ("X-HTTP-Method-Override", "POST"), signed=("x-http-method-override",))
    with pytest.raises(MethodOverrideRefused, match="MCP"):
        keeper.decide(mcp, request, "ping", action="ping")


def test_a_signature_over_a_field_removed_at_this_hop_is_refused(world: World, nonces: NonceStore) -> None:
    keeper = gatekeeper(world.state(), nonces)
    for extra, signed in (((("X-Tenant", "acme"), ("Connection", "keep-alive, X-Tenant")), ("x-tenant",)),
                          ((("Keep-Alive", "timeout=5"),), ("keep-alive",)),
                          ((("TE", "trailers"),), ("te",))):
        with pytest.raises(HopByHopFieldSigned):
            decide(keeper, with_fields(world, *extra, signed=signed))
    # a Connection header naming fields that are not signed is fine: they are dropped, nothing signed is lost
    assert decide(keeper, with_fields(world, ("X-Tenant", "acme"), ("Connection", "X-Tenant"))).outcome == "allow"


def test_the_decision_line_holds_every_field_but_the_covered_components() -> None:
    """``to_json`` against ``dataclasses.asdict`` (the reference): the same members, headers only when logged."""
    decision = Decision(at=1, connection="c", service="s", method="GET", action="read", resource="r",
                        outcome="allow", status=200, code="ok", reason_code="ok", request_digest="sha-256:00",
                        chain=("a", "b"), covered=("@method",))
    reference = asdict(decision)
    del reference["covered"], reference["headers"]
    reference["chain"] = ["a", "b"]
    assert decision.to_json() == reference
    logged = replace(decision, headers=(("Accept", "*/*"),)).to_json()
    assert logged == {**reference, "headers": [["Accept", "*/*"]]}
