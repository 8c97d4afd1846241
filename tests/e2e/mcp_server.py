"""An MCP server for end-to-end tests (Streamable HTTP: ``/mcp`` answers JSON, ``/sse`` an event stream), the two
gateway connections to it, and the MCP world (``tests.unit.gateway.mcp_world``) registered on a log."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx

from tests.gateway_world import World
from tests.unit.gateway.mcp_world import TOOLS, build_mcp_world

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


def register_mcp_world(log_url: str) -> World:
    """The MCP world, each statement straight to ``/entries``."""
    world = build_mcp_world()
    register(log_url, world)
    return world
