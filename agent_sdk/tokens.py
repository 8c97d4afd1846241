"""Task-bound tokens: the agent asks the registry (``POST /v1/tokens``) for a short-lived token for one task,
signed as ``docs/identity.md`` ("Task-bound tokens") specifies — the RFC 8785 canonical JSON of the request,
Ed25519 by the agent's current key, base64url without padding.

    token = request_task_token(http, "https://registry.example", key, agent=key.did, task_id="summarise-inbox",
                               tools=["read"], service="mail", resource="inbox/*", delegation="<entry id>")
    http.get(url, headers={"Authorization": token.authorization})
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import rfc8785

from schemas.errors import TabellionError
from transparency.client.http import refusal

from .keys import AgentKey

DEFAULT_TTL = 120


@dataclass(frozen=True)
class TaskToken:
    token: str
    expires_at: int
    chain: tuple[str, ...]
    scope: str

    @property
    def authorization(self) -> str:
        return f"Bearer {self.token}"


def token_request(key: AgentKey, *, agent: str, task_id: str, tools: Sequence[str], service: str, resource: str,
                  delegation: str, ttl: int = DEFAULT_TTL, created: int | None = None,
                  nonce: str | None = None) -> dict[str, Any]:
    """The signed request object (``signature`` added)."""
    request: dict[str, Any] = {
        "agent": agent, "task_id": task_id, "tools": list(tools), "service": service, "resource": resource,
        "delegation": delegation, "ttl": ttl, "created": int(time.time()) if created is None else created,
        "nonce": nonce or secrets.token_urlsafe(24),
    }
    signature = key.sign(bytes(rfc8785.dumps(request)))
    return {**request, "signature": base64.urlsafe_b64encode(signature).rstrip(b"=").decode("ascii")}


def request_task_token(http: httpx.Client, registry: str, key: AgentKey, **fields: Any) -> TaskToken:
    """Ask the registry at ``registry`` for a token; the registry's refusal is raised (``LogRequestRefused``,
    naming its code)."""
    answer = http.post(registry.rstrip("/") + "/v1/tokens", json=token_request(key, **fields))
    if answer.status_code != 201:
        raise refusal(answer)
    body = answer.json()
    if not isinstance(body, dict) or not isinstance(body.get("token"), str):
        raise TabellionError("the registry's answer has no token")
    return TaskToken(body["token"], int(body.get("expires_at", 0)), tuple(body.get("chain", ())),
                     str(body.get("scope", "")))
