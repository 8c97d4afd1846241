"""MCP connections (``kind = "mcp"``, issue 4 item 5): JSON-RPC 2.0 to an MCP server, tools filtered by scope.

The upstream is an MCP server's Streamable HTTP endpoint (the connection's ``upstream`` URL, exactly). An agent
POSTs one JSON-RPC message to ``/proxy/{connection}``, signed as for any connection (RFC 9421, identity
headers, content digest); the gateway reads the message, decides with the ``Gatekeeper`` what it asks for,
and relays it upstream with the connection's credentials:

==========================================  ==========================================================
message                                     decided as (action, resource, authority)
==========================================  ==========================================================
``tools/call`` ``{"name": T}``              ``T``, ``tools/T``, ``authorise``: refused (JSON-RPC error,
                                            nothing sent upstream) unless a delegation chain and an
                                            approved claim cover action T on ``tools/T`` of the service
``tools/list``                              ``tools/list``, ``tools/list``, a usable passport; the
                                            answer's ``tools`` keep only those ``T`` that ``authorise``
                                            allows (``tool_permitted``), as of the latest verified state
``initialize``, ``ping``, ``notifications/*``  the method, the method, a usable passport; passed through
without ``id`` (a notification)
any other method M, and ``notifications/*``   ``M``, ``M``, ``authorise`` (deny unless delegated by name)
with an ``id`` (a request, whatever its name)
==========================================  ==========================================================

Refused: batches (a JSON array: MCP 2025-06-18 dropped them; send one message per POST), responses (the
gateway relays no server-initiated requests), duplicate object keys (the upstream might read another tool
name than the one decided on), tool names outside ``TOOL_NAME``, any HTTP method but POST (405: no server-sent
event stream by GET), and a path after the connection id.

Answers pass back as they come (streamed), except for ``tools/list``: the answer is read (at most
``MAX_LIST_BYTES``) and every JSON-RPC message in it whose ``result`` holds ``tools`` is filtered, whether it
came as ``application/json`` or as a ``text/event-stream`` of events; an answer that cannot be filtered (not
JSON, a batch) is refused (502 ``mcp-upstream-invalid``) rather than passed on.

Every refusal on an MCP connection is a JSON-RPC error response with the request's ``id``, the HTTP status of
the refusal, ``error.code`` -32700/-32600/-32602 (malformed), ``RPC_REFUSED`` (a 4xx refusal) or
``RPC_UNAVAILABLE`` (5xx), and the RFC 9457 problem details (``type``, ``title``, ``status``, ``detail``,
``instance``, ``reason_code``) in ``error.data``. The ``Gatekeeper`` writes it to the decision log as for
any connection, and the action record names the tool.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from schemas.errors import (
    AuthorityRefused,
    JsonTooDeep,
    McpMethodNotAllowed,
    McpRequestInvalid,
    McpUpstreamInvalid,
    TabellionError,
)
from transparency.problem_details import problem_document, problem_headers, problem_status
from transparency.request_bodies import check_json_depth
from verifier.authority import Authorisation, authorise
from verifier.identity_state import IdentityState
from verifier.passports import require_passport

from .config import Connection
from .decisions import Authority, Gatekeeper, StateSource
from .proxy import UpstreamProxy, response_headers
from .signatures import Request
from .upstream import UpstreamAnswer

JSONRPC: Final = "2.0"
TOOL_NAME: Final = re.compile(r"[A-Za-z0-9_.:/-]{1,128}", re.ASCII)
TOOLS_PREFIX: Final = "tools/"
SESSION_METHODS: Final = frozenset({"initialize", "ping", "tools/list"})
NOTIFICATIONS: Final = "notifications/"
MAX_LIST_BYTES: Final = 8 * 1024 * 1024
RPC_PARSE_ERROR: Final = -32700
RPC_INVALID_REQUEST: Final = -32600
RPC_INVALID_PARAMS: Final = -32602
RPC_REFUSED: Final = -32001  # the gateway refused the request (its 4xx problem is in error.data)
RPC_UNAVAILABLE: Final = -32002  # the gateway or the upstream cannot answer now (5xx)
JSON: Final = "application/json"
EVENT_STREAM: Final = "text/event-stream"
RequestId = str | int | None


# --- the message -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RpcMessage:
    """One JSON-RPC 2.0 request (``id`` set) or notification (``id`` None) from the agent."""

    method: str
    id: RequestId
    params: dict[str, Any] | list[Any] | None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        duplicate = next(k for k in keys if keys.count(k) > 1)
        raise McpRequestInvalid(f"the key {duplicate[:60]!r} appears twice in one object", RPC_INVALID_REQUEST)
    return dict(pairs)


def _json(body: bytes, what: str, error: Callable[[str], TabellionError]) -> Any:
    """Strict JSON: UTF-8, no duplicate keys."""
    try:
        text = body.decode("utf-8")
        check_json_depth(text)  # json.loads recurses: a deep body is refused before it runs
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except JsonTooDeep as exc:
        raise error(f"{what}: {exc.detail}") from exc
    except McpRequestInvalid as exc:
        raise error(f"{what}: {exc.detail}") from exc
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise error(f"{what} is not JSON: {exc}") from exc


def parse_message(body: bytes) -> RpcMessage:
    """The JSON-RPC request or notification in ``body``, or raise ``McpRequestInvalid``."""
    value = _json(body, "the body", lambda why: McpRequestInvalid(why, RPC_PARSE_ERROR))
    if isinstance(value, list):
        raise McpRequestInvalid("JSON-RPC batches are not relayed: send one message per request")
    if not isinstance(value, dict) or value.get("jsonrpc") != JSONRPC:
        raise McpRequestInvalid('the body is not a JSON-RPC 2.0 message (no "jsonrpc": "2.0")')
    method = value.get("method")
    if method is None and ("result" in value or "error" in value):
        raise McpRequestInvalid("JSON-RPC responses are not relayed: the gateway forwards no server requests")
    if not isinstance(method, str) or not method:
        raise McpRequestInvalid("the JSON-RPC message has no method")
    ident = value.get("id")
    if "id" in value and (not isinstance(ident, str | int) or isinstance(ident, bool)):
        raise McpRequestInvalid("a JSON-RPC id must be a string or an integer")
    params = value.get("params")
    if params is not None and not isinstance(params, dict | list):
        raise McpRequestInvalid("JSON-RPC params must be an object or an array", RPC_INVALID_PARAMS)
    return RpcMessage(method, ident, params)


# --- what is decided ------------------------------------------------------------------------------------


def passport_only(state: IdentityState, agent: str, service: str, action: str, resource: str,
                  now: int) -> Authorisation:
    """The authority of session methods: the agent holds a usable passport (``PassportRefused`` otherwise)."""
    status = require_passport(state, agent, now)
    return Authorisation(agent, service, action, resource, status.verdict, status.reason_code,
                         state.passports[agent].entry, (), "", "")


def tool_resource(name: str) -> str:
    return TOOLS_PREFIX + name


@dataclass(frozen=True)
class Ask:
    """What the gateway decides on for a message: ``authority(state, agent, service, action, resource, now)``;
    ``lists_tools`` when the answer is filtered."""

    action: str
    resource: str
    authority: Authority
    lists_tools: bool = False


def ask_of(message: RpcMessage) -> Ask:
    method = message.method
    if method == "tools/call":
        name = message.params.get("name") if isinstance(message.params, dict) else None
        if not isinstance(name, str) or not TOOL_NAME.fullmatch(name):
            raise McpRequestInvalid(
                "tools/call needs params.name: 1-128 letters, digits, '_', '.', ':', '/' or '-'", RPC_INVALID_PARAMS
            )
        return Ask(name, tool_resource(name), authorise)
    if method in SESSION_METHODS or (method.startswith(NOTIFICATIONS) and message.id is None):
        return Ask(method, method, passport_only, lists_tools=method == "tools/list")
    return Ask(method, method, authorise)


def tool_permitted(state: IdentityState, agent: str, service: str, name: object, now: int) -> bool:
    """Would ``tools/call`` of ``name`` be authorised now?"""
    if not isinstance(name, str) or not TOOL_NAME.fullmatch(name):
        return False
    try:
        authorise(state, agent, service, name, tool_resource(name), now)
    except AuthorityRefused:
        return False
    return True


# --- filtering tools/list answers ------------------------------------------------------------------------

Permitted = Callable[[object], bool]


def filter_message(message: object, permitted: Permitted) -> object:
    """A JSON-RPC message with its ``result.tools`` cut to the permitted tools (others unchanged)."""
    if isinstance(message, list):
        raise McpUpstreamInvalid("the upstream answered a JSON-RPC batch, which the gateway cannot filter")
    if not isinstance(message, dict):
        raise McpUpstreamInvalid("the upstream answered JSON that is not a JSON-RPC message")
    result = message.get("result")
    if not isinstance(result, dict) or "tools" not in result:
        return message
    tools = result["tools"]
    if not isinstance(tools, list):
        raise McpUpstreamInvalid("the upstream's result.tools is not an array")
    kept = [t for t in tools if isinstance(t, dict) and permitted(t.get("name"))]
    return {**message, "result": {**result, "tools": kept}}


def _upstream_json(data: bytes) -> object:
    return _json(data, "the upstream's answer", McpUpstreamInvalid)


def _dump(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def filter_json(body: bytes, permitted: Permitted) -> bytes:
    return _dump(filter_message(_upstream_json(body), permitted)).encode()


def filter_event_stream(body: bytes, permitted: Permitted) -> bytes:
    """Every event of a ``text/event-stream`` with its data (one JSON-RPC message) filtered; other lines kept."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise McpUpstreamInvalid("the upstream's event stream is not UTF-8") from exc
    events: list[list[str]] = [[]]
    for line in re.split(r"\r\n|\r|\n", text):
        if line:
            events[-1].append(line)
        elif events[-1]:
            events.append([])
    out = []
    for lines in filter(None, events):
        data = [line.partition(":")[2].removeprefix(" ") for line in lines if line.partition(":")[0] == "data"]
        if data:
            filtered = _dump(filter_message(_upstream_json("\n".join(data).encode()), permitted))
            first = next(i for i, line in enumerate(lines) if line.partition(":")[0] == "data")
            lines = [f"data: {filtered}" if i == first else line for i, line in enumerate(lines)
                     if i == first or line.partition(":")[0] != "data"]
        out.append("\n".join(lines) + "\n\n")
    return "".join(out).encode()


# --- answers ---------------------------------------------------------------------------------------------


def rpc_error(error: TabellionError, ident: RequestId, instance: str) -> Response:
    """The JSON-RPC error response for a refusal, with the problem details in ``error.data`` (status, headers and
    document from the one mapper, ``transparency.problem_details``)."""
    status = problem_status(error)
    unavailable_or_refused = RPC_UNAVAILABLE if status >= 500 else RPC_REFUSED
    code = error.rpc_code if isinstance(error, McpRequestInvalid) else unavailable_or_refused
    headers = problem_headers(error)
    if isinstance(error, McpMethodNotAllowed):
        headers["Allow"] = "POST"
    body = {"jsonrpc": JSONRPC, "id": ident,
            "error": {"code": code, "message": error.title, "data": problem_document(error, instance)}}
    return Response(_dump(body), status, headers, JSON)


class McpRelay:
    """Decides and relays one JSON-RPC message on an MCP connection (see the module docstring)."""

    def __init__(self, gatekeeper: Gatekeeper, proxy: UpstreamProxy, log: StateSource) -> None:
        self.gatekeeper = gatekeeper
        self.proxy = proxy
        self.log = log

    async def answer(self, connection: Connection, request: Request, rest: str, query: str, instance: str) -> Response:
        ident: RequestId = None
        try:
            if request.method != "POST":
                raise McpMethodNotAllowed(f"{request.method} is not taken: POST one JSON-RPC message")
            if rest:
                raise McpRequestInvalid(f"an MCP connection has one endpoint, /proxy/{connection.id}")
            message = parse_message(request.body)
            ident = message.id
            ask = ask_of(message)
            decision = self.gatekeeper.decide(connection, request, ask.resource, action=ask.action,
                                              authority=ask.authority)
            upstream = await self._send(connection, request, query, decision.covered, decode=ask.lists_tools)
            if not ask.lists_tools:
                return await self.proxy.answer(connection, upstream)
            return await self._filtered(connection, upstream, decision.agent or "")  # no agent: no tool
        except TabellionError as exc:
            return rpc_error(exc, ident, instance)

    async def _send(self, connection: Connection, request: Request, query: str,
                    covered: tuple[str, ...], *, decode: bool) -> UpstreamAnswer:
        url = connection.upstream + (f"?{query}" if query else "")
        return await self.proxy.send(connection, "POST", url, request.headers, request.body, covered, decode=decode)

    async def _filtered(self, connection: Connection, upstream: UpstreamAnswer, agent: str) -> Response:
        try:
            body = await upstream.read(MAX_LIST_BYTES)  # decoded: the filtered answer goes back uncompressed
        finally:
            await upstream.aclose()
        if body is None:
            raise McpUpstreamInvalid(f"the upstream's tools/list answer is over {MAX_LIST_BYTES} bytes")
        ctype = upstream.header("content-type").partition(";")[0].strip().lower()
        if ctype in (JSON, EVENT_STREAM):  # off the event loop: the snapshot waits while the follower folds
            body = await run_in_threadpool(self._filter, connection, agent, ctype, body)
        elif body and upstream.is_success:
            raise McpUpstreamInvalid(f"the upstream answered tools/list with {ctype or 'no content type'}")
        scrubber = self.proxy.scrubber(connection)  # gateway.scrub: the credentials never reach the agent
        body = scrubber.mask(body)
        headers = [(k, v) for k, v in scrubber.headers(response_headers(upstream.headers))
                   if k.lower() not in ("content-length", "content-encoding")]
        response = Response(body, upstream.status)
        response.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        response.raw_headers.append((b"content-length", str(len(body)).encode()))
        return response

    def _filter(self, connection: Connection, agent: str, ctype: str, body: bytes) -> bytes:
        """The answer with only the tools ``agent`` may call, as of the latest verified state."""
        now = int(self.gatekeeper.clock())
        with self.log.snapshot() as view:

            def permitted(name: object) -> bool:
                return tool_permitted(view.state, agent, connection.service, name, now)

            return filter_json(body, permitted) if ctype == JSON else filter_event_stream(body, permitted)
