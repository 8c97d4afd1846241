"""MCP connections: JSON-RPC messages read strictly, tools decided by the agent's scope, tools/list answers
filtered (JSON and event streams), refusals as JSON-RPC errors that never reach the upstream."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.config import load_config
from gateway.mcp import (
    RPC_INVALID_PARAMS,
    RPC_INVALID_REQUEST,
    RPC_PARSE_ERROR,
    RPC_REFUSED,
    RpcMessage,
    ask_of,
    filter_event_stream,
    filter_json,
    parse_message,
    passport_only,
    tool_permitted,
)
from gateway.secrets import Secret
from issuer.statements import (
    Signer,
    revocation,
)
from schemas.errors import GatewayConfigInvalid, LogStale, McpRequestInvalid, McpUpstreamInvalid, PassportRefused
from tests.gateway_world import GATEWAY, FixedLog, Sink, World
from tests.unit.gateway.config_files import write_config
from tests.unit.gateway.mcp_world import IN_SCOPE, SERVICE, TOOLS, build_mcp_world
from tests.upstream_server import UpstreamServer
from transparency.problem_details import problem_status
from verifier.authority import authorise

TOKEN = "crm-token-0b7e"
CONNECTIONS = (
    '[[connections]]\nid = "crm-mcp"\nupstream = "http://mcp.test/mcp"\nservice = "crm"\nkind = "mcp"\n'
    'credentials = { type = "bearer", secret_ref = "CRM_TOKEN" }\n'
)


def rpc(method: str, params: dict[str, Any] | None = None, ident_: int | None = 1) -> bytes:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if ident_ is not None:
        message["id"] = ident_
    if params is not None:
        message["params"] = params
    return json.dumps(message).encode()


def call(tool: str, ident_: int = 7) -> bytes:
    return rpc("tools/call", {"name": tool, "arguments": {"q": "x"}}, ident_)


@pytest.fixture(scope="module")
def world() -> World:
    return build_mcp_world()


# --- messages --------------------------------------------------------------------------------------------


def test_a_request_and_a_notification_are_read() -> None:
    assert parse_message(call("search")) == RpcMessage("tools/call", 7, {"name": "search", "arguments": {"q": "x"}})
    assert parse_message(rpc("notifications/initialized", ident_=None)) == RpcMessage(
        "notifications/initialized", None, None)
    assert parse_message(b'{"jsonrpc":"2.0","id":"a-1","method":"ping"}').id == "a-1"


@pytest.mark.parametrize(("body", "rpc_code", "why"), [
    (b"not json", RPC_PARSE_ERROR, "not JSON"),
    (b"\xef\xbb\xbf" + rpc("ping"), RPC_PARSE_ERROR, "not JSON"),
    ('{"jsonrpc":"2.0","method":"ping"}'.encode("utf-16"), RPC_PARSE_ERROR, "not JSON"),
    (b"[" + rpc("ping") + b"]", RPC_INVALID_REQUEST, "batches"),
    (b'{"jsonrpc":"2.0","id":1,"result":{}}', RPC_INVALID_REQUEST, "responses"),
    (b'{"jsonrpc":"1.0","id":1,"method":"ping"}', RPC_INVALID_REQUEST, "2.0"),
    (b'{"jsonrpc":"2.0","id":1}', RPC_INVALID_REQUEST, "no method"),
    (b'{"jsonrpc":"2.0","id":null,"method":"ping"}', RPC_INVALID_REQUEST, "id"),
    (b'{"jsonrpc":"2.0","id":true,"method":"ping"}', RPC_INVALID_REQUEST, "id"),
    (b'{"jsonrpc":"2.0","id":1.5,"method":"ping"}', RPC_INVALID_REQUEST, "id"),
    (b'{"jsonrpc":"2.0","id":1,"method":"ping","params":3}', RPC_INVALID_PARAMS, "params"),
    # nesting is bounded before json.loads recurses (transparency.request_bodies.check_json_depth)
    (b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":' + b"[" * 40 + b"]" * 40
     + b"}}", RPC_PARSE_ERROR, "deep"),
    # the gateway would decide on the last name, an upstream might call the first
    (b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_ticket","name":"search"}}',
     RPC_PARSE_ERROR, "twice"),
])
def test_malformed_messages_are_refused(body: bytes, rpc_code: int, why: str) -> None:
    with pytest.raises(McpRequestInvalid, match=why) as caught:
        parse_message(body)
    assert caught.value.rpc_code == rpc_code and problem_status(caught.value) == 400


def test_what_each_method_is_decided_as() -> None:
    called = ask_of(parse_message(call("read_ticket")))
    assert (called.action, called.resource, called.authority, called.lists_tools) == (
        "read_ticket", "tools/read_ticket", authorise, False)
    listed = ask_of(parse_message(rpc("tools/list")))
    assert (listed.action, listed.authority, listed.lists_tools) == ("tools/list", passport_only, True)
    for method in ("initialize", "ping"):
        session = ask_of(parse_message(rpc(method)))
        assert (session.action, session.resource, session.authority) == (method, method, passport_only)
    for method in ("notifications/initialized", "notifications/cancelled"):
        notification = ask_of(parse_message(rpc(method, ident_=None)))
        assert (notification.action, notification.resource, notification.authority) == (method, method, passport_only)
        # with an id it is a request, whatever its name: decided by name, as any other method
        request = ask_of(parse_message(rpc(method)))
        assert (request.action, request.resource, request.authority) == (method, method, authorise)
    other = ask_of(parse_message(rpc("resources/read", {"uri": "file:///etc/passwd"})))
    assert (other.action, other.resource, other.authority) == ("resources/read", "resources/read", authorise)
    for params in ({}, {"name": ""}, {"name": 3}, {"name": "a b"}, {"name": "x" * 129}):
        with pytest.raises(McpRequestInvalid, match="params.name") as caught:
            ask_of(parse_message(rpc("tools/call", params)))
        assert caught.value.rpc_code == RPC_INVALID_PARAMS


# --- scope -----------------------------------------------------------------------------------------------


def test_a_tool_is_permitted_only_inside_the_scope(world: World) -> None:
    state, agent, now = world.state(), world.c.identity, int(time.time())
    assert [t["name"] for t in TOOLS if tool_permitted(state, agent, SERVICE, t["name"], now)] == list(IN_SCOPE)
    assert not tool_permitted(state, agent, "mail", "search", now)  # another service
    assert not tool_permitted(state, agent, SERVICE, 42, now) and not tool_permitted(state, agent, SERVICE, "a b", now)
    assert not tool_permitted(state, world.a.identity, SERVICE, "search", now)  # A holds no approved claim
    revoked = world.state(revocation(world.operator, world.c.identity, "privilegeWithdrawn"))
    assert not tool_permitted(revoked, agent, SERVICE, "search", now)
    with pytest.raises(PassportRefused):
        passport_only(revoked, agent, SERVICE, "tools/list", "tools/list", now)
    assert passport_only(state, agent, SERVICE, "ping", "ping", now).chain == ()


# --- filtering answers -----------------------------------------------------------------------------------

ALLOWED: Callable[[object], bool] = lambda name: name in IN_SCOPE  # noqa: E731


def test_a_json_tools_list_answer_keeps_only_permitted_tools() -> None:
    answer = {"jsonrpc": "2.0", "id": 1, "result": {"tools": [*TOOLS, "junk", {"no": "name"}], "nextCursor": "c2"}}
    filtered = json.loads(filter_json(json.dumps(answer).encode(), ALLOWED))
    assert [t["name"] for t in filtered["result"]["tools"]] == list(IN_SCOPE)
    assert filtered["result"]["nextCursor"] == "c2" and filtered["id"] == 1
    assert filtered["result"]["tools"][0] == TOOLS[0]  # a kept tool is unchanged
    error = {"jsonrpc": "2.0", "id": 1, "error": {"code": -32603, "message": "boom"}}
    assert json.loads(filter_json(json.dumps(error).encode(), ALLOWED)) == error


@pytest.mark.parametrize("body", [
    b"<html>", b"[]", b'"text"', b'{"jsonrpc":"2.0","id":1,"result":{"tools":{"name":"x"}}}',
    b'{"jsonrpc":"2.0","id":1,"result":{"tools":[],"tools":[{"name":"delete_ticket"}]}}',
])
def test_an_answer_that_cannot_be_filtered_is_refused(body: bytes) -> None:
    with pytest.raises(McpUpstreamInvalid):
        filter_json(body, ALLOWED)


def test_an_event_stream_is_filtered_event_by_event() -> None:
    listed = json.dumps({"jsonrpc": "2.0", "id": 1, "result": {"tools": TOOLS}}, indent=1)  # data over lines
    progress = json.dumps({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}})
    stream = (": keep-alive\r\n\r\nid: 4\r\nevent: message\r\ndata: " + progress + "\r\n\r\n"
              + "id: 5\nevent: message\n" + "".join(f"data: {line}\n" for line in listed.split("\n")) + "\n")
    out = filter_event_stream(stream.encode(), ALLOWED).decode()
    events = [e for e in out.split("\n\n") if e]
    assert events[0] == ": keep-alive"
    assert events[1].split("\n")[:2] == ["id: 4", "event: message"] and json.loads(
        events[1].split("\n")[2].removeprefix("data: ")) == json.loads(progress)
    lines = events[2].split("\n")
    assert lines[:2] == ["id: 5", "event: message"] and len(lines) == 3
    assert [t["name"] for t in json.loads(lines[2].removeprefix("data: "))["result"]["tools"]] == list(IN_SCOPE)
    assert "delete_ticket" not in out
    with pytest.raises(McpUpstreamInvalid):
        filter_event_stream(b"data: not json\n\n", ALLOWED)
    with pytest.raises(McpUpstreamInvalid):
        filter_event_stream(b"data: [1]\n\n", ALLOWED)


# --- the app in process ----------------------------------------------------------------------------------


class McpUpstream:
    """An MCP server: answers tools/list (as JSON, or as an event stream), tools/call and the rest."""

    def __init__(self) -> None:
        self.seen: list[httpx.Request] = []
        self.stream = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        message = json.loads(request.content)
        if "id" not in message:
            return httpx.Response(202, stream=httpx.ByteStream(b""))
        if message["method"] == "tools/list":
            result: dict[str, Any] = {"tools": TOOLS}
        elif message["method"] == "tools/call":
            result = {"content": [{"type": "text", "text": f"called {message['params']['name']}"}]}
        else:
            result = {}
        answer = json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result})
        if self.stream:
            return httpx.Response(200, headers={"Content-Type": "text/event-stream", "Mcp-Session-Id": "s-1"},
                                  stream=httpx.ByteStream(f"event: message\ndata: {answer}\n\n".encode()))
        return httpx.Response(200, headers={"Content-Type": "application/json", "Mcp-Session-Id": "s-1"},
                              stream=httpx.ByteStream(answer.encode()))


class Harness:
    def __init__(self, world: World, tmp_path: Path) -> None:
        self.world = world
        self.config = load_config(write_config(tmp_path, f'public_url = "{GATEWAY}"\n', connections=CONNECTIONS))
        self.upstream = McpUpstream()
        self.sink = Sink()
        self.log = FixedLog(world.state())

    def run(self, scenario: Callable[[httpx.AsyncClient], Awaitable[None]]) -> None:
        async def go() -> None:
            server = UpstreamServer(self.upstream)
            app = create_app(self.config, {"CRM_TOKEN": Secret(TOKEN)}, followed_log=self.log, sink=self.sink,
                             resolver=server.resolver)
            async with server, app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=GATEWAY
            ) as client:
                await scenario(client)

        asyncio.run(go())

    async def send(self, client: httpx.AsyncClient, body: bytes, *, method: str = "POST",
                   path: str = "/proxy/crm-mcp", agent: Signer | None = None) -> httpx.Response:
        request = self.world.request(path, method, body, agent=agent)
        headers = [*request.headers, ("Content-Type", "application/json"),
                   ("Accept", "application/json, text/event-stream")]
        return await client.request(request.method, request.target_uri, headers=headers, content=request.body)


def rpc_refusal(answer: httpx.Response, status: int, code: str, rpc_code: int = RPC_REFUSED) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    body: dict[str, Any] = answer.json()
    assert body["jsonrpc"] == "2.0" and body["error"]["code"] == rpc_code
    assert body["error"]["data"]["type"] == f"urn:tabellion:error:{code}" and body["error"]["data"]["status"] == status
    return body


@pytest.fixture
def harness(world: World, tmp_path: Path) -> Harness:
    return Harness(world, tmp_path)


@pytest.mark.parametrize("stream", [False, True])
def test_tools_list_shows_only_the_tools_in_scope(harness: Harness, stream: bool) -> None:
    harness.upstream.stream = stream

    async def scenario(client: httpx.AsyncClient) -> None:
        answer = await harness.send(client, rpc("tools/list"))
        assert answer.status_code == 200, answer.text
        assert answer.headers["mcp-session-id"] == "s-1"
        text = answer.text
        message = json.loads(text.split("data: ", 1)[1] if stream else text)
        assert [t["name"] for t in message["result"]["tools"]] == list(IN_SCOPE)
        assert "delete_ticket" not in text and int(answer.headers["content-length"]) == len(answer.content)
        (seen,) = harness.upstream.seen
        assert str(seen.url) == "http://mcp.test/mcp" and seen.headers["authorization"] == f"Bearer {TOKEN}"
        assert not [n for n in seen.headers if n.startswith(("tabellion-", "signature"))]
        decision = harness.sink.decisions[-1]
        assert (decision.action, decision.resource, decision.outcome) == ("tools/list", "tools/list", "allow")

    harness.run(scenario)


def test_a_tool_in_scope_is_called_and_one_outside_is_refused_before_the_upstream(harness: Harness) -> None:
    world = harness.world

    async def scenario(client: httpx.AsyncClient) -> None:
        answer = await harness.send(client, call("search"))
        assert answer.status_code == 200 and answer.json()["result"]["content"][0]["text"] == "called search"
        assert json.loads(harness.upstream.seen[-1].content)["params"]["name"] == "search"
        allowed = harness.sink.decisions[-1]
        assert (allowed.action, allowed.resource, allowed.chain) == ("search", "tools/search", world.chain)
        forwarded = len(harness.upstream.seen)

        body = rpc_refusal(await harness.send(client, call("delete_ticket", 9)), 403, "scope-refused")
        assert body["id"] == 9 and body["error"]["data"]["reason_code"] == "action_out_of_scope"
        assert body["error"]["data"]["instance"] == "/proxy/crm-mcp"
        refused = harness.sink.decisions[-1]
        assert (refused.outcome, refused.action, refused.code) == ("refuse", "delete_ticket", "scope-refused")
        rpc_refusal(await harness.send(client, call("admin/reset")), 403, "scope-refused")
        rpc_refusal(await harness.send(client, rpc("resources/read", {"uri": "x"})), 403, "scope-refused")
        rpc_refusal(await harness.send(client, call("search"), agent=world.a), 403, "claim-refused")
        rpc_refusal(await harness.send(client, b"[1]"), 400, "mcp-request-invalid", RPC_INVALID_REQUEST)
        rpc_refusal(await harness.send(client, b"{"), 400, "mcp-request-invalid", RPC_PARSE_ERROR)
        get = await harness.send(client, rpc("ping"), method="GET")
        rpc_refusal(get, 405, "mcp-http-method-not-allowed", RPC_INVALID_REQUEST)
        assert get.headers["allow"] == "POST"
        rpc_refusal(await harness.send(client, rpc("ping"), path="/proxy/crm-mcp/x"), 400, "mcp-request-invalid",
                    RPC_INVALID_REQUEST)
        unsigned = await client.post("/proxy/crm-mcp", content=call("search"))
        assert rpc_refusal(unsigned, 401, "request-signature-missing")["id"] == 7
        assert len(harness.upstream.seen) == forwarded  # no refusal reached the upstream

        passed = await harness.send(client, rpc("notifications/initialized", ident_=None))
        assert passed.status_code == 202 and len(harness.upstream.seen) == forwarded + 1
        assert (await harness.send(client, rpc("initialize", {"protocolVersion": "2025-06-18"}))).status_code == 200

    harness.run(scenario)


def test_an_unusable_log_or_a_revoked_agent_is_a_json_rpc_error(harness: Harness) -> None:
    world = harness.world

    async def scenario(client: httpx.AsyncClient) -> None:
        harness.log.state = world.state(revocation(world.operator, world.c.identity, "keyCompromise"))
        body = rpc_refusal(await harness.send(client, rpc("tools/list")), 403, "passport-refused")
        assert body["error"]["data"]["reason_code"] == "revoked"
        harness.log.refusal = LogStale("61 s")
        answer = await harness.send(client, call("search"))
        rpc_refusal(answer, 503, "log-stale", -32002)
        assert answer.headers["retry-after"] == "1" and harness.upstream.seen == []

    harness.run(scenario)


def test_mcp_connections_take_no_method_mapping(tmp_path: Path) -> None:
    with pytest.raises(GatewayConfigInvalid, match="tool names"):
        load_config(write_config(tmp_path, connections=CONNECTIONS + 'actions = { POST = "write" }\n'))
    assert load_config(write_config(tmp_path, connections=CONNECTIONS)).connections[0].kind == "mcp"
