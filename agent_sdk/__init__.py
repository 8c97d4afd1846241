"""Tabellion's agent SDK: what an agent needs to reach services through a Tabellion gateway.

- ``agent_sdk.auth.GatewayAuth``: an ``httpx.Auth`` that signs each request with RFC 9421 HTTP Message
  Signatures (``created``, ``expires``, a fresh ``nonce``, ``Content-Digest`` of the body, the four
  ``Tabellion-*`` identity headers), as ``docs/gateway.md`` describes;
- ``agent_sdk.keys``: the agent's key, from a PEM file (``FileKey``) or a hardware key behind the ``AgentKey``
  protocol (``agent_sdk.tpm``: the TPM hook);
- ``agent_sdk.mcp.McpClient``: an MCP client transport (Streamable HTTP, JSON and event-stream answers) over a
  signing ``httpx.Client``;
- ``agent_sdk.tokens``: task-bound tokens from the registry (``POST /v1/tokens``).

The TypeScript SDK (``sdk/typescript/``) does the same for ``fetch``.
"""

from agent_sdk.auth import AgentIdentity, GatewayAuth
from agent_sdk.keys import AgentKey, FileKey

__all__ = ["AgentIdentity", "AgentKey", "FileKey", "GatewayAuth"]
