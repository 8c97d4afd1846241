"""The SDK's MCP client refuses what a malicious gateway or MCP server answers: an endless answer or a compression
bomb is refused at ``MAX_ANSWER_BYTES`` decoded (``answer-too-large``), an error with a code that is not an integer is
an internal error (not a bare ``ValueError``), a session id with a space is never sent back as a header
(``mcp-answer-malformed``) — against a real hostile server on 127.0.0.1."""

from __future__ import annotations

import json

import httpx
import pytest

from agent_sdk.mcp import INTERNAL_ERROR, McpAnswerMalformed, McpClient, McpError
from schemas.errors import AnswerTooLarge
from tests.hostile_server import hostile_server

OK = json.dumps({"jsonrpc": "2.0", "id": 1, "result": {"tools": []}}).encode()
BAD_CODE = json.dumps({"jsonrpc": "2.0", "id": 1, "error": {"code": "x", "message": "no"}}).encode()


@pytest.mark.parametrize("kind", ["endless", "bomb", "declared"])
def test_an_endless_or_inflating_answer_is_refused(kind: str) -> None:
    with hostile_server() as url, httpx.Client(timeout=10) as http, pytest.raises(AnswerTooLarge):
        McpClient(http, f"{url}/{kind}/mcp").list_tools()


def test_an_error_code_that_is_not_an_integer_is_an_internal_error() -> None:
    with hostile_server({"/code/mcp": (200, BAD_CODE)}) as url, httpx.Client(timeout=10) as http, \
            pytest.raises(McpError) as refused:
        McpClient(http, f"{url}/code/mcp").list_tools()
    assert refused.value.rpc_code == INTERNAL_ERROR


def test_a_session_id_that_is_not_visible_ascii_is_refused() -> None:
    with hostile_server({"/session/mcp": (200, OK)}) as url, httpx.Client(timeout=10) as http:
        client = McpClient(http, f"{url}/session/mcp")
        with pytest.raises(McpAnswerMalformed) as refused:
            client.list_tools()
    assert refused.value.code == "mcp-answer-malformed" and client.session_id is None


def test_a_plain_answer_is_taken() -> None:
    with hostile_server({"/ok/mcp": (200, OK)}) as url, httpx.Client(timeout=10) as http:
        assert McpClient(http, f"{url}/ok/mcp").list_tools() == []
