"""Rego policies per connection (regopy): compiled at start-up, true allows, anything else denies, the policy's
id and version recorded with every decision; the input document built from the log-derived state."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.config import Connection, PolicyConfig, load_config
from gateway.decisions import Gatekeeper, resource_of, split_proxy_path
from gateway.policies import SAMPLE_INPUT, CompiledPolicy, compile_policies, policy_input
from gateway.replay import NonceStore
from gateway.secrets import Secret
from gateway.signatures import Request
from schemas.errors import GatewayConfigInvalid, PolicyDenied, ScopeRefused
from tests.gateway_world import CONNECTION, GATEWAY, FixedLog, Sink, World, build_world
from tests.problems import problem
from tests.unit.gateway.config_files import write_config
from tests.unit.gateway.mail_connection import CONNECTIONS, TOKEN, Upstream
from tests.upstream_server import UpstreamServer
from transparency.problem_details import problem_status
from verifier.authority import authorise

EU_AND_GET = """package tabellion

default allow := false

allow if {
    input.passport.jurisdiction == "EU"
    input.method == "GET"
}
"""


def compiled(source: str, query: str = "data.tabellion.allow", tmp: Path | None = None) -> CompiledPolicy:
    file = (tmp or Path("/nonexistent")) / "p.rego"
    return CompiledPolicy(PolicyConfig(file=file, source=source, query=query, id="p", version="7"), "mail-api")


def sample(**changes: Any) -> dict[str, Any]:
    return {**SAMPLE_INPUT, **changes}


@pytest.fixture(scope="module")
def world() -> World:
    return build_world()


# --- compiling and evaluating ----------------------------------------------------------------------------


def test_true_allows_false_and_undefined_deny_with_a_reason() -> None:
    policy = compiled(EU_AND_GET)
    policy.check(sample())
    with pytest.raises(PolicyDenied) as caught:
        policy.check(sample(method="POST"))
    assert caught.value.reason_code == "false" and (caught.value.policy_id, caught.value.policy_version) == ("p", "7")
    assert problem_status(caught.value) == 403 and caught.value.code == "policy-denied"
    assert "policy p version 7" in caught.value.detail and "is false" in caught.value.detail

    no_default = compiled('package tabellion\nallow if { input.method == "GET" }\n')
    no_default.check(sample())
    with pytest.raises(PolicyDenied) as caught:
        no_default.check(sample(method="DELETE"))
    assert caught.value.reason_code == "undefined"


def test_only_true_allows_not_a_truthy_value() -> None:
    for value in ('"yes"', "1", "[true]", '{"ok": true}'):
        with pytest.raises(PolicyDenied) as caught:
            compiled(f"package tabellion\nallow := {value}\n").check(sample())
        assert caught.value.reason_code == "not_true", value


def test_a_policy_reading_the_input_fields() -> None:
    policy = compiled("""package gate.mail
import rego.v1

allow if {
    input.passport.tier == "software"
    input.delegation.root_principal == "did:key:root"
    count(input.delegation.chain) <= 3
    startswith(input.resource, "inbox/")
    input.checkpoint.size >= 10
    input.time < input.passport.valid_until
    not input.agent in data.gate.mail.blocked
}

blocked := {"did:key:blocked"}
""", "data.gate.mail.allow")
    good = sample(resource="inbox/1", checkpoint={"origin": "o", "size": 10},
                  delegation={"chain": [], "root_principal": "did:key:root"})
    policy.check(good)
    for bad in (sample(resource="outbox/1"), {**good, "agent": "did:key:blocked"},
                {**good, "checkpoint": {"origin": "o", "size": 9}}, {**good, "time": 1_900_000_000},
                {**good, "delegation": {"chain": [], "root_principal": "did:key:other"}},
                {**good, "passport": {**good["passport"], "tier": "tee"}}):
        with pytest.raises(PolicyDenied):
            policy.check(bad)


@pytest.mark.parametrize(("source", "query", "expected"), [
    ("package tabellion\nallow if { input.method = }\n", "data.tabellion.allow",
     r"p\.rego: line 2, column \d+: Invalid assignment operator"),
    ("pakage tabellion\n", "data.tabellion.allow", r"p\.rego: line 1, column 1: Invalid literal"),
    (EU_AND_GET, "data.other.allow", r"outside the module's package tabellion"),
    (EU_AND_GET, "data.tabellion.alow", r"names no rule 'alow' of package tabellion"),
    ("package tabellion\nallow if { no_such_function(input.method) }\n", "data.tabellion.allow",
     r"failed: Function not found: no_such_function"),
])
def test_a_policy_that_cannot_work_is_refused_at_start_up_in_one_line(source: str, query: str,
                                                                      expected: str) -> None:
    with pytest.raises(GatewayConfigInvalid, match=expected) as caught:
        compiled(source, query)
    assert "\n" not in str(caught.value)


# --- configuration ----------------------------------------------------------------------------------------


def policy_connection(body: str) -> str:
    return CONNECTIONS + body + "\n"


def test_the_policy_table_of_a_connection(tmp_path: Path) -> None:
    (tmp_path / "mail.rego").write_text(EU_AND_GET)
    config = load_config(write_config(tmp_path, connections=policy_connection(
        'policy = { file = "mail.rego", id = "mail-eu", version = "2026-11-01" }')))
    policy = config.connection("mail-api").policy
    assert policy is not None and (policy.id, policy.version, policy.query) == (
        "mail-eu", "2026-11-01", "data.tabellion.allow")
    assert policy.source == EU_AND_GET and "source" not in repr(policy)
    defaults = load_config(write_config(tmp_path, connections=policy_connection('policy = { file = "mail.rego" }')))
    policy = defaults.connection("mail-api").policy
    assert policy is not None and policy.id == "mail" and policy.version.startswith("sha256:")
    assert len(compile_policies(defaults.connections)) == 1


@pytest.mark.parametrize(("body", "expected"), [
    ('policy = "mail.rego"', "connections[0].policy: must be an inline table"),
    ('policy = { query = "data.tabellion.allow" }', "connections[0].policy.file: is required"),
    ('policy = { file = "missing.rego" }', "connections[0].policy.file: cannot read"),
    ('policy = { file = "mail.rego", query = "allow" }', "connections[0].policy.query: must name a rule"),
    ('policy = { file = "mail.rego", query = "data.tabellion.allow; true" }', "policy.query: must name a rule"),
    ('policy = { file = "mail.rego", strict = true }', "connections[0].policy.strict: unknown key"),
])
def test_policy_configuration_mistakes(tmp_path: Path, body: str, expected: str) -> None:
    (tmp_path / "mail.rego").write_text(EU_AND_GET)
    with pytest.raises(GatewayConfigInvalid, match=expected.replace("[", r"\[").replace("]", r"\]")):
        load_config(write_config(tmp_path, connections=policy_connection(body)))


def test_create_app_refuses_a_policy_that_does_not_compile(tmp_path: Path) -> None:
    (tmp_path / "mail.rego").write_text("package tabellion\nallow if {\n")
    config = load_config(write_config(tmp_path, connections=policy_connection('policy = { file = "mail.rego" }')))
    with pytest.raises(GatewayConfigInvalid, match=r"mail\.rego: line \d+, column \d+"):
        create_app(config, {"MAIL_TOKEN": Secret(TOKEN)})


# --- deciding with a policy -----------------------------------------------------------------------------


def with_policy(source: str, **kw: Any) -> tuple[Connection, dict[str, CompiledPolicy]]:
    config = PolicyConfig(file=Path("mail.rego"), source=source, query="data.tabellion.allow", id="mail-eu",
                          version="3")
    connection = replace(CONNECTION, policy=config)
    return connection, compile_policies([connection])


def decide(keeper: Gatekeeper, connection: Connection, request: Request) -> Any:
    _, rest = split_proxy_path(request.target_uri.removeprefix(GATEWAY).partition("?")[0])
    return keeper.decide(connection, request, resource_of(rest))


def test_the_policy_decides_after_the_log_allows_and_every_decision_names_it(world: World, tmp_path: Path) -> None:
    connection, policies = with_policy(EU_AND_GET)
    sink = Sink()
    with NonceStore(tmp_path / "n.sqlite") as nonces:
        keeper = Gatekeeper(FixedLog(world.state()), nonces, sink=sink, policies=policies)
        allowed = decide(keeper, connection, world.request())
        assert allowed.allowed and (allowed.policy_id, allowed.policy_version) == ("mail-eu", "3")
        with pytest.raises(PolicyDenied) as caught:  # the log allows a POST (write); the policy does not
            decide(keeper, connection, world.request(method="POST", body=b"{}"))
        assert caught.value.reason_code == "false"
        denied = sink.decisions[-1]
        assert (denied.outcome, denied.status, denied.code, denied.reason_code) == ("refuse", 403, "policy-denied",
                                                                                   "false")
        assert (denied.policy_id, denied.policy_version) == ("mail-eu", "3")
        assert denied.chain == world.chain and denied.claim == world.claim and denied.agent == world.c.identity
        with pytest.raises(ScopeRefused):  # the log refuses first: the policy never overrides it
            decide(keeper, connection, world.request("/proxy/mail-api/outbox/1"))
        assert sink.decisions[-1].policy_id == "mail-eu"  # recorded with every decision of the connection
        line = json.dumps(sink.decisions[-1].to_json())
        assert '"policy_version": "3"' in line


def test_the_input_document_from_the_log(world: World) -> None:
    state = world.state()
    now = int(time.time())
    authorisation = authorise(state, world.c.identity, "mail", "read", "inbox/1", now)
    log = FixedLog(state)
    document = policy_input(now=now, connection=CONNECTION, method="GET", path="/proxy/mail-api/inbox/1",
                            query="x=1", authorisation=authorisation, keyid=world.c.identity, state=state,
                            position=log.position())
    assert document["time"] == now and document["agent"] == world.c.identity
    assert (document["service"], document["action"], document["resource"]) == ("mail", "read", "inbox/1")
    assert (document["method"], document["path"], document["query"]) == ("GET", "/proxy/mail-api/inbox/1", "x=1")
    assert document["passport"]["jurisdiction"] == "EU" and document["passport"]["tier"] == "software"
    assert document["passport"]["entry"] == world.passports[world.c.identity]
    assert [link["entry"] for link in document["delegation"]["chain"]] == list(world.chain)
    assert [link["depth"] for link in document["delegation"]["chain"]] == [0, 1, 2]
    assert document["delegation"]["root_principal"] == world.operator.identity
    assert document["delegation"]["chain"][-1]["agent"] == world.c.identity
    assert document["claim"] == {"entry": world.claim, "service": "mail", "namespace": "acme"}
    assert document["checkpoint"] == {"origin": "gateway.test/log", "size": len(world.statements)}
    assert document["verdict"] == "allow"
    assert set(document) == set(SAMPLE_INPUT)  # the start-up probe has the same shape
    json.dumps(document)


def test_a_denial_is_a_403_problem_naming_the_policy(world: World, tmp_path: Path) -> None:
    (tmp_path / "mail.rego").write_text(EU_AND_GET)
    config = load_config(write_config(tmp_path, f'public_url = "{GATEWAY}"\n', connections=policy_connection(
        'policy = { file = "mail.rego", id = "mail-eu", version = "3" }')))
    upstream = Upstream()
    server = UpstreamServer(upstream)
    app = create_app(config, {"MAIL_TOKEN": Secret(TOKEN)}, followed_log=FixedLog(world.state()),
                     resolver=server.resolver)

    async def scenario() -> None:
        async with server, app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=GATEWAY
        ) as client:
            get = world.request()
            assert (await client.get(get.target_uri, headers=list(get.headers))).status_code == 200
            post = world.request("/proxy/mail-api/inbox/2", "POST", b"{}")
            answer = await client.post(post.target_uri, headers=list(post.headers), content=post.body)
            body = problem(answer, 403, "policy-denied")
            assert (body["policy_id"], body["policy_version"], body["reason_code"]) == ("mail-eu", "3", "false")
            assert len(upstream.seen) == 1

    asyncio.run(scenario())
