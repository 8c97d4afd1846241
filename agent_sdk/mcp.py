"""An MCP client transport through a Tabellion gateway: JSON-RPC 2.0 over MCP's Streamable HTTP, one POST per
message, the answer read as ``application/json`` or as a ``text/event-stream`` (the response is the event that
carries the request's ``id``; notifications and other events before it are kept in ``McpClient.events``).

    with httpx.Client(auth=GatewayAuth(key, identity)) as http:
        mcp = McpClient(http, "https://gw.example/proxy/crm-mcp")
        mcp.initialize()
        tools = mcp.list_tools()            # only the tools the agent's scope allows
        result = mcp.call_tool("search", {"q": "acme"})

Every request is signed by the client's ``GatewayAuth``. A JSON-RPC error (the gateway's refusals come as one,
with the problem details in ``error.data``) raises ``McpError``. The session id the server gives
(``Mcp-Session-Id``) is sent back on every later message.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from typing import Any, Final

import httpx

from schemas.errors import TabellionError

PROTOCOL_VERSION: Final = "2025-06-18"
ACCEPT: Final = "application/json, text/event-stream"


class McpError(TabellionError):
    """A JSON-RPC error answer: ``rpc_code``, and the gateway's problem details in ``data`` when it refused."""

    code = "mcp-error"
    title = "MCP error"

    def __init__(self, detail: str, rpc_code: int, data: Any = None, http_status: int = 0) -> None:
        super().__init__(detail)
        self.rpc_code, self.data, self.http_status = rpc_code, data, http_status

    @property
    def problem_type(self) -> str | None:
        return self.data.get("type") if isinstance(self.data, dict) else None


class McpClient:
    def __init__(self, http: httpx.Client, url: str) -> None:
        self.http, self.url = http, url
        self.session_id: str | None = None
        self.events: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    def initialize(self, client_name: str = "tabellion-agent", version: str = "1") -> dict[str, Any]:
        result = self.request("initialize", {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                                             "clientInfo": {"name": client_name, "version": version}})
        self.notify("notifications/initialized")
        return result

    def list_tools(self) -> list[dict[str, Any]]:
        tools = self.request("tools/list", {}).get("tools", [])
        return tools if isinstance(tools, list) else []

    def call_tool(self, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.request("tools/call", {"name": name, "arguments": arguments or {}})

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        ident = next(self._ids)
        answer = self._post({"jsonrpc": "2.0", "id": ident, "method": method, "params": params or {}})
        message = self._response(answer, ident)
        if "error" in message:
            error = message["error"] if isinstance(message["error"], dict) else {}
            raise McpError(str(error.get("message", "error")), int(error.get("code", 0)), error.get("data"),
                           answer.status_code)
        result = message.get("result")
        return result if isinstance(result, dict) else {}

    def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        answer = self._post(message)
        if answer.status_code >= 400:
            body = self._json(answer.content)
            error = body.get("error", {}) if isinstance(body, dict) else {}
            raise McpError(str(error.get("message", answer.reason_phrase)), int(error.get("code", 0)),
                           error.get("data"), answer.status_code)

    def _post(self, message: dict[str, Any]) -> httpx.Response:
        headers = {"Content-Type": "application/json", "Accept": ACCEPT, "MCP-Protocol-Version": PROTOCOL_VERSION}
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
        answer = self.http.post(self.url, content=json.dumps(message).encode(), headers=headers)
        self.session_id = answer.headers.get("mcp-session-id", self.session_id)
        return answer

    def _response(self, answer: httpx.Response, ident: int) -> dict[str, Any]:
        ctype = answer.headers.get("content-type", "").partition(";")[0].strip().lower()
        if ctype == "text/event-stream":
            for event in _events(answer.text):
                if isinstance(event, dict) and event.get("id") == ident:
                    return event
                if isinstance(event, dict):
                    self.events.append(event)
            raise McpError(f"the event stream carried no answer to request {ident}", -32603, None,
                           answer.status_code)
        message = self._json(answer.content)
        if not isinstance(message, dict):
            raise McpError(f"the answer ({answer.status_code}) is not a JSON-RPC message", -32603, None,
                           answer.status_code)
        return message

    @staticmethod
    def _json(content: bytes) -> Any:
        try:
            return json.loads(content)
        except ValueError:
            return None


def _events(text: str) -> list[Any]:
    found: list[Any] = []
    data: list[str] = []
    for line in [*text.splitlines(), ""]:
        if not line:
            if data:
                with contextlib.suppress(ValueError):
                    found.append(json.loads("\n".join(data)))
            data = []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    return found
