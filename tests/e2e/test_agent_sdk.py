"""The Python agent SDK (``agent_sdk``) against real processes on 127.0.0.1: the transparency service with the
issuer, ``tabellion gateway`` in a subprocess, a recording upstream and an MCP server. The gateway's end-to-end
cases through the SDK: an allowed call, a replay refused, an out-of-scope call refused; MCP through
``McpClient``; a task-bound token from the registry."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from agent_sdk import AgentIdentity, FileKey, GatewayAuth
from agent_sdk.mcp import McpClient, McpError
from agent_sdk.tokens import request_task_token
from agent_sdk.tpm import TpmKeyUnavailable, load_tpm_key
from schemas.errors import LogRequestRefused
from tests.e2e.gateway_deployment import TOKEN, Recorder, gateway_deployment, refused
from tests.e2e.mcp_server import MCP_CONNECTIONS, McpServer, register_mcp_world
from tests.gateway_world import World
from tests.unit.gateway.mcp_world import IN_SCOPE


def identity_of(world: World) -> tuple[FileKey, AgentIdentity]:
    key = FileKey(world.c.ed25519)
    return key, AgentIdentity("acme", world.c.identity, world.passports[world.c.identity])


def test_calls_through_the_gateway_with_the_sdk(tmp_path: Path) -> None:
    with gateway_deployment(tmp_path) as deployment:
        world, gateway, log_url = deployment.world, deployment.gateway, deployment.log
        key, identity = identity_of(world)
        sent: list[httpx.Request] = []
        with httpx.Client(auth=GatewayAuth(key, identity), event_hooks={"request": [sent.append]},
                          timeout=10) as http:
            # allowed, with and without a body
            answer = http.get(f"{gateway.url}/proxy/mail-api/inbox/1", params={"x": "1"})
            assert answer.status_code == 200, answer.text
            assert Recorder.seen[-1].header("Authorization") == f"Bearer {TOKEN}"
            posted = http.post(f"{gateway.url}/proxy/mail-api/inbox/drafts", json={"to": "b@example"})
            assert posted.status_code == 200, posted.text
            assert Recorder.seen[-1].body == b'{"to":"b@example"}'
            # out of scope
            problem = refused(http.get(f"{gateway.url}/proxy/mail-api/outbox/1"), 403, "scope-refused")
            assert problem["reason_code"] == "resource_out_of_scope"
        # a replay: the first request exactly as the SDK signed it, sent again
        first = sent[0]
        again = httpx.request(first.method, first.url, headers=first.headers, content=first.content, timeout=10)
        refused(again, 401, "replay-detected")
        assert len(Recorder.seen) == 2

        # a task-bound token for C's delegation, from the registry hosted with the log
        with httpx.Client(timeout=10) as http:
            token = request_task_token(http, log_url, key, agent=world.c.identity, task_id="summarise-inbox",
                                       tools=["read"], service="mail", resource="inbox/*",
                                       delegation=world.chain[-1], ttl=60)
            assert token.token.count(".") == 2 and token.chain == world.chain
            assert token.authorization.startswith("Bearer ")
            with pytest.raises(LogRequestRefused) as caught:
                request_task_token(http, log_url, key, agent=world.c.identity, task_id="t", tools=["delete"],
                                   service="mail", resource="inbox/*", delegation=world.chain[-1])
            assert caught.value.problem_type == "urn:tabellion:error:scope-refused"
    with pytest.raises(TpmKeyUnavailable):
        load_tpm_key("0x81000001")  # the TPM hook refuses until a loader is registered (issue 13)


def test_mcp_through_the_gateway_with_the_sdk(tmp_path: Path) -> None:
    McpServer.calls = []
    with gateway_deployment(tmp_path, upstream=McpServer, world=register_mcp_world,
                            tables=MCP_CONNECTIONS) as deployment:
        world, gateway = deployment.world, deployment.gateway
        key, identity = identity_of(world)
        with httpx.Client(auth=GatewayAuth(key, identity), timeout=10) as http:
            for connection in ("crm-mcp", "crm-sse"):
                mcp = McpClient(http, f"{gateway.url}/proxy/{connection}")
                assert mcp.initialize()["serverInfo"]["name"] == "crm"
                assert mcp.session_id == "session-1"
                assert [t["name"] for t in mcp.list_tools()] == list(IN_SCOPE)
                assert mcp.call_tool("search", {"q": "acme"})["content"][0]["text"] == "ran search"
                seen = len(McpServer.calls)
                with pytest.raises(McpError) as caught:
                    mcp.call_tool("delete_ticket")
                assert caught.value.http_status == 403 and caught.value.rpc_code == -32001
                assert caught.value.problem_type == "urn:tabellion:error:scope-refused"
                assert len(McpServer.calls) == seen
