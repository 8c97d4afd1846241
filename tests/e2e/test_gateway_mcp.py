"""MCP through the gateway with real processes on 127.0.0.1: the transparency service, ``tabellion gateway``
in a subprocess, and an MCP server (Streamable HTTP, JSON and event-stream answers) that records every call.
The agent sees only the tools of its approved scope, calls one with the gateway's credential, and a call
outside its scope is refused without reaching the server."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from issuer.statements import revocation
from tests.e2e.gateway_deployment import PATIENCE_S, TOKEN, gateway_deployment, send, signed
from tests.e2e.mcp_server import MCP_CONNECTIONS, McpServer, register, register_mcp_world
from tests.gateway_world import World
from tests.unit.gateway.mcp_world import IN_SCOPE, TOOLS


def rpc(gateway: str, world: World, connection: str, method: str, params: dict[str, Any] | None = None,
        ident: int | None = 1) -> httpx.Response:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method} | ({"id": ident} if ident is not None else {})
    if params is not None:
        message["params"] = params
    return send(signed(world, gateway, f"/proxy/{connection}", "POST", json.dumps(message).encode()))


def tools_of(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    if answer.headers["content-type"].startswith("text/event-stream"):
        messages = [json.loads(line[6:]) for line in answer.text.splitlines() if line.startswith("data: ")]
        (listed,) = [m for m in messages if "result" in m]
        assert [m["method"] for m in messages if "method" in m] == ["notifications/message"]
    else:
        listed = answer.json()
    return [tool["name"] for tool in listed["result"]["tools"]]


def test_mcp_tools_are_listed_and_called_only_inside_the_scope(tmp_path: Path) -> None:
    McpServer.calls = []
    with gateway_deployment(tmp_path, upstream=McpServer, world=register_mcp_world,
                            tables=MCP_CONNECTIONS) as deployment:
        world, url, gateway, log_url = deployment.world, deployment.url, deployment.gateway, deployment.log
        init = rpc(url, world, "crm-mcp", "initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                                         "clientInfo": {"name": "agent", "version": "1"}})
        assert init.status_code == 200 and init.json()["result"]["serverInfo"]["name"] == "crm"
        assert init.headers["mcp-session-id"] == "session-1"
        assert rpc(url, world, "crm-mcp", "notifications/initialized", ident=None).status_code == 202

        # the list holds only the tools of C's approved scope, as JSON and as an event stream
        assert tools_of(rpc(url, world, "crm-mcp", "tools/list")) == list(IN_SCOPE)
        assert tools_of(rpc(url, world, "crm-sse", "tools/list")) == list(IN_SCOPE)
        assert [t["name"] for t in TOOLS] != list(IN_SCOPE)  # the server listed more

        # a tool in scope reaches the server with the gateway's credential, without the agent's signature
        called = rpc(url, world, "crm-mcp", "tools/call", {"name": "search", "arguments": {"q": "acme"}}, 5)
        assert called.status_code == 200 and called.json() == {
            "jsonrpc": "2.0", "id": 5, "result": {"content": [{"type": "text", "text": "ran search"}],
                                                  "isError": False}}
        path, message, authorization = McpServer.calls[-1]
        assert (path, message["params"]["name"], authorization) == ("/mcp", "search", f"Bearer {TOKEN}")
        through_sse = rpc(url, world, "crm-sse", "tools/call", {"name": "read_ticket", "arguments": {}}, 6)
        assert through_sse.status_code == 200 and '"ran read_ticket"' in through_sse.text
        seen = len(McpServer.calls)

        # a tool outside the scope is refused with a JSON-RPC error and never reaches the server
        for tool in ("delete_ticket", "admin/reset"):
            refused = rpc(url, world, "crm-mcp", "tools/call", {"name": tool, "arguments": {}}, 9)
            assert refused.status_code == 403 and refused.headers["content-type"] == "application/json"
            error = refused.json()
            assert error["id"] == 9 and error["error"]["code"] == -32001
            assert error["error"]["data"]["type"] == "urn:tabellion:error:scope-refused"
            assert error["error"]["data"]["reason_code"] == "action_out_of_scope"
        outsider = rpc(url, world, "crm-mcp", "resources/read", {"uri": "crm://accounts"}, 10)
        assert outsider.status_code == 403
        # a "notification" with an id is a request: the server would answer it, so it is decided by name
        for method in ("notifications/initialized", "notifications/cancelled"):
            disguised = rpc(url, world, "crm-mcp", method, {"requestId": 5}, 11)
            assert disguised.status_code == 403 and disguised.json()["id"] == 11
            assert disguised.json()["error"]["data"]["type"] == "urn:tabellion:error:scope-refused"
        assert len(McpServer.calls) == seen
        assert not [m for _, m, _ in McpServer.calls if m.get("params", {}).get("name") in ("delete_ticket",
                                                                                              "admin/reset")]

        # revoked: nothing is listed or called any more
        register(log_url, world, revocation(world.operator, world.c.identity, "privilegeWithdrawn"))
        deadline = time.monotonic() + PATIENCE_S
        while (answer := rpc(url, world, "crm-mcp", "tools/list")).status_code == 200:
            assert time.monotonic() < deadline, "the revocation never reached the gateway"
            time.sleep(0.01)
        assert answer.status_code == 403 and answer.json()["error"]["data"]["reason_code"] == "revoked"

    decisions = [d for d in gateway.decisions() if d["connection"] == "crm-mcp"]
    refused_tools = {d["action"] for d in decisions if d["outcome"] == "refuse" and d["code"] == "scope-refused"}
    assert refused_tools == {"delete_ticket", "admin/reset", "resources/read", "notifications/initialized",
                             "notifications/cancelled"}
    assert any(d["action"] == "search" and d["resource"] == "tools/search" and d["outcome"] == "allow"
               and d["chain"] == list(world.chain) for d in decisions)
    assert TOKEN not in gateway.log()
