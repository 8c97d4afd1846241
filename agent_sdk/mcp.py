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

What the gateway (or the MCP server behind it) answers is not trusted: an answer is read, decoded, up to
``MAX_ANSWER_BYTES`` and refused past it (``answer-too-large``: an endless event stream or a compression bomb cannot
exhaust the agent's memory); an error whose ``code`` is not an integer is taken as an internal error (-32603); a
session id that is not visible ASCII is refused (``mcp-answer-malformed``) rather than sent back as a header.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
from dataclasses import dataclass
from typing import Any, Final

import httpx

from schemas.errors import AnswerTooLarge, TabellionError

PROTOCOL_VERSION: Final = "2025-06-18"
ACCEPT: Final = "application/json, text/event-stream"
MAX_ANSWER_BYTES: Final = 16 * 1024 * 1024
INTERNAL_ERROR: Final = -32603
_SESSION_ID: Final = re.compile(r"[\x21-\x7e]{1,1024}", re.ASCII)  # MCP: visible ASCII only


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


class McpAnswerMalformed(TabellionError):
    """The gateway or MCP server answered something an MCP client cannot take (a session id that is not visible
    ASCII)."""

    code = "mcp-answer-malformed"
    title = "Malformed MCP answer"


@dataclass(frozen=True)
class Answer:
    """An HTTP answer as read: its status, headers and (decoded) body."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    reason_phrase: str = ""

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


def _rpc_code(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else INTERNAL_ERROR


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
            raise McpError(str(error.get("message", "error"))[:1000], _rpc_code(error.get("code")), error.get("data"),
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
            raise McpError(str(error.get("message", answer.reason_phrase))[:1000], _rpc_code(error.get("code")),
                           error.get("data"), answer.status_code)

    def _post(self, message: dict[str, Any]) -> Answer:
        headers = {"Content-Type": "application/json", "Accept": ACCEPT, "MCP-Protocol-Version": PROTOCOL_VERSION}
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
        with self.http.stream("POST", self.url, content=json.dumps(message).encode(), headers=headers) as answer:
            body = bytearray()
            for chunk in answer.iter_bytes():
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    raise AnswerTooLarge(f"{self.url} answered more than {MAX_ANSWER_BYTES} bytes (decoded); the "
                                         "rest is not read")
        session = answer.headers.get("mcp-session-id")
        if session is not None:
            if not _SESSION_ID.fullmatch(session):
                raise McpAnswerMalformed(f"{self.url} gave a session id that is not 1-1024 visible ASCII characters")
            self.session_id = session
        return Answer(answer.status_code, answer.headers, bytes(body), answer.reason_phrase)

    def _response(self, answer: Answer, ident: int) -> dict[str, Any]:
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
