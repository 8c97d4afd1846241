"""Task-bound tokens: the agent asks the registry (``POST /v1/tokens``) for a short-lived token for one task,
signed as ``docs/identity.md`` ("Task-bound tokens") specifies — the RFC 8785 canonical JSON of the request,
Ed25519 by the agent's current key, base64url without padding.

    token = request_task_token(http, "https://registry.example", key, agent=key.did, task_id="summarise-inbox",
                               tools=["read"], service="mail", resource="inbox/*", delegation="<entry id>")
    http.get(url, headers={"Authorization": token.authorization})
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx
import rfc8785

from schemas.errors import TabellionError
from transparency.client.http import refusal

from .keys import AgentKey

DEFAULT_TTL = 120
ENTRY_ID: Final = re.compile(r"[0-9a-f]{64}", re.ASCII)
_COMPACT_JWS: Final = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+", re.ASCII)


class TokenAnswerMalformed(TabellionError):
    """The registry answered 201 with something that is not a task-bound token as ``docs/identity.md`` gives it."""

    code = "token-answer-malformed"
    title = "The registry's token answer is malformed"


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
    naming its code), an answer that is not a token as ``TokenAnswerMalformed``."""
    answer = http.post(registry.rstrip("/") + "/v1/tokens", json=token_request(key, **fields))
    if answer.status_code != 201:
        raise refusal(answer)
    return parse_token_answer(answer.content)


def parse_token_answer(content: bytes) -> TaskToken:
    """The registry's 201 answer, checked: ``token`` a compact JWS (it goes into an ``Authorization`` header),
    ``expires_at`` an integer, ``chain`` a list of entry ids, ``scope`` text."""
    try:
        body = json.loads(content)
    except (UnicodeDecodeError, ValueError) as exc:
        raise TokenAnswerMalformed(f"the registry's answer is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise TokenAnswerMalformed("the registry's answer is not a JSON object")
    token, expires_at = body.get("token"), body.get("expires_at", 0)
    chain, scope = body.get("chain", []), body.get("scope", "")
    if not isinstance(token, str) or not _COMPACT_JWS.fullmatch(token):
        raise TokenAnswerMalformed("the registry's answer has no token in the JWS compact form")
    if not isinstance(expires_at, int) or isinstance(expires_at, bool) or not 0 <= expires_at < 2**53:
        raise TokenAnswerMalformed("the registry's expires_at is not an integer NumericDate")
    if not isinstance(chain, list) or not all(isinstance(e, str) and ENTRY_ID.fullmatch(e) for e in chain):
        raise TokenAnswerMalformed("the registry's chain is not a list of entry ids (64 hex digits)")
    if not isinstance(scope, str):
        raise TokenAnswerMalformed("the registry's scope is not text")
    return TaskToken(token, expires_at, tuple(chain), scope)
