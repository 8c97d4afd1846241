"""MCP through the gateway with real processes on 127.0.0.1: the transparency service, ``tabellion gateway``
in a subprocess, and an MCP server (Streamable HTTP, JSON and event-stream answers) that records every call.
The agent sees only the tools of its approved scope, calls one with the gateway's credential, and a call
outside its scope is refused without reaching the server."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx

from issuer.statements import revocation
from tests.e2e.test_gateway import TOKEN, GatewayProcess, send, serving, signed, write_gateway_config
from tests.server import free_port, running_server
from tests.unit.gateway.test_decisions import World
from tests.unit.gateway.test_mcp import IN_SCOPE, TOOLS, build_mcp_world

MCP_CONNECTIONS = """
[[connections]]
id = "crm-mcp"
upstream = "{upstream}/mcp"
service = "crm"
kind = "mcp"
credentials = {{ type = "bearer", secret_ref = "MAIL_TOKEN" }}

[[connections]]
id = "crm-sse"
upstream = "{upstream}/sse"
service = "crm"
kind = "mcp"
credentials = {{ type = "bearer", secret_ref = "MAIL_TOKEN" }}
"""


class McpServer(BaseHTTPRequestHandler):
    """An MCP server's endpoint: ``/mcp`` answers JSON, ``/sse`` an event stream; every message recorded."""

    calls: list[tuple[str, dict[str, Any], str | None]] = []  # (path, message, Authorization)

    def do_POST(self) -> None:  # noqa: N802 - the http.server hook
        message = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        self.calls.append((self.path, message, self.headers.get("Authorization")))
        if "id" not in message:
            self._answer(202, "application/json", b"")
            return
        method = message["method"]
        if method == "initialize":
            result: dict[str, Any] = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
                                      "serverInfo": {"name": "crm", "version": "1"}}
        elif method == "tools/list":
            result = {"tools": TOOLS}
        elif method == "tools/call":
            result = {"content": [{"type": "text", "text": f"ran {message['params']['name']}"}], "isError": False}
        else:
            result = {}
        answer = json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result})
        if self.path == "/sse":
            progress = json.dumps({"jsonrpc": "2.0", "method": "notifications/message",
                                   "params": {"level": "info", "data": "working"}})
            self._answer(200, "text/event-stream", f"data: {progress}\n\nid: 1\ndata: {answer}\n\n".encode())
        else:
            self._answer(200, "application/json", answer.encode())

    def _answer(self, status: int, ctype: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Mcp-Session-Id", "session-1")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


def register(log_url: str, world: World, *statements: bytes) -> None:
    with httpx.Client(base_url=log_url, timeout=30) as http:
        for statement in statements or tuple(world.statements):
            answer = http.post("/entries", content=statement, headers={"content-type": "application/cose"})
            assert answer.status_code == 201, answer.text


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
    with running_server(tmp_path / "log") as log_url, serving(McpServer) as upstream:
        world = build_mcp_world()
        register(log_url, world)
        port = free_port()
        config = write_gateway_config(tmp_path, log_url, upstream, port)
        config.write_text(config.read_text() + MCP_CONNECTIONS.format(upstream=upstream))
        gateway = GatewayProcess(config, port, tmp_path / "gateway.log").start()
        url = gateway.url
        try:
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
            for _ in range(100):
                answer = rpc(url, world, "crm-mcp", "tools/list")
                if answer.status_code != 200:
                    break
            assert answer.status_code == 403 and answer.json()["error"]["data"]["reason_code"] == "revoked"
        finally:
            gateway.stop()

        decisions = [d for d in gateway.decisions() if d["connection"] == "crm-mcp"]
        refused_tools = {d["action"] for d in decisions if d["outcome"] == "refuse" and d["code"] == "scope-refused"}
        assert refused_tools == {"delete_ticket", "admin/reset", "resources/read", "notifications/initialized",
                                 "notifications/cancelled"}
        assert any(d["action"] == "search" and d["resource"] == "tools/search" and d["outcome"] == "allow"
                   and d["chain"] == list(world.chain) for d in decisions)
        assert TOKEN not in gateway.log()
