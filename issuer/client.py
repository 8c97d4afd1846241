"""The issuer's HTTP API as typed calls (``docs/identity.md``): what the ``tabellion`` operator commands and the
console (``tabellion console``) use, synchronous, on httpx.

Writes take a signed statement and answer the ``Logged`` entry; reads answer the issuer's JSON, each decided on the
checkpoint it names. A refusal raises ``IssuerRefused`` carrying the issuer's stable code (its problem ``type``)
and status; an issuer that cannot be reached raises ``LogUnreachable``. Nothing an answer says is trusted further
than its use: receipts and bundles are for the verifier to check.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final
from urllib.parse import quote

import httpx

from schemas import media_types
from schemas.base64url import b64url_decode
from schemas.errors import PROBLEM_TYPE_BASE, InvalidParameter, LogRequestRefused, LogUnreachable
from transparency.client.bounded import ANSWER_DEADLINE_S, MAX_ANSWER_BYTES, BoundedTransport
from transparency.client.http import refusal

DEFAULT_TIMEOUT_S: Final = 60.0
DECISION_PATHS: Final = {"claim-approval": "approve", "claim-rejection": "reject", "claim-revocation": "revoke"}
WRITE_PATHS: Final = {
    "operator-registration": "/registry/operators", "key-rotation": "/registry/rotate",
    "approver-enrolment": "/registry/approvers", "agent-consent": "/registry/consents",
    "revocation": "/registry/revoke", "agent-passport": "/api/agent/issue", "delegation": "/v1/delegations",
    "claim-submission": "/v1/claims",
}


class IssuerRefused(LogRequestRefused):
    """The issuer answered with a problem; ``code`` is the problem's own stable code."""

    def __init__(self, refused: LogRequestRefused) -> None:
        super().__init__(refused.detail, status=refused.answer_status, problem_title=refused.problem_title,
                         problem_type=refused.problem_type)
        kind = refused.problem_type or ""
        self.code = kind.removeprefix(PROBLEM_TYPE_BASE) if kind.startswith(PROBLEM_TYPE_BASE) else self.code


@dataclass(frozen=True)
class Logged:
    """A statement the log registered and the issuer's fold accepted."""

    entry: str
    index: int
    statement_type: str
    receipt: bytes
    checkpoint: str

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Logged:
        return cls(str(body["entry"]), int(body["index"]), str(body["statement_type"]),
                   b64url_decode(body["receipt"], "the receipt in the issuer's answer"), str(body["checkpoint"]))


@dataclass(frozen=True)
class EnrolledPasskey:
    """A passkey enrolled for a namespace (``GET /v1/approvers``), as the log holds it."""

    entry: str
    index: int
    approver: str
    credential_id: str
    public_key: str
    rp_id: str
    origin: str
    sign_count: int
    revoked: bool

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> EnrolledPasskey:
        return cls(str(body["entry"]), int(body["index"]), str(body["approver"]), str(body["credential_id"]),
                   str(body["public_key"]), str(body["rp_id"]), str(body["origin"]), int(body["sign_count"]),
                   bool(body["revoked"]))


class IssuerClient:
    """A client of one issuer at ``base_url`` (embedded: the log's URL)."""

    def __init__(self, base_url: str, *, timeout: float = DEFAULT_TIMEOUT_S,
                 transport: httpx.BaseTransport | None = None, max_answer_bytes: int = MAX_ANSWER_BYTES,
                 answer_deadline_s: float = ANSWER_DEADLINE_S) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise InvalidParameter(f"issuer URL {base_url[:100]!r} is not an http:// or https:// URL")
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout,
                                  transport=BoundedTransport(transport, max_bytes=max_answer_bytes,
                                                             deadline_s=answer_deadline_s), trust_env=False)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> IssuerClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _request(self, method: str, path: str, expect: int, **kwargs: Any) -> httpx.Response:
        try:
            answer = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise LogUnreachable(f"{self.base_url}: {exc}") from exc
        if answer.status_code != expect:
            raise IssuerRefused(refusal(answer))
        return answer

    def _json(self, path: str, **params: str) -> dict[str, Any]:
        body: dict[str, Any] = self._request("GET", path, 200, params=params).json()
        return body

    # --- writes ---------------------------------------------------------------------------------------

    def submit(self, statement_type: str, statement: bytes, *, claim: str | None = None) -> Logged:
        """Submit a signed statement to the endpoint of its type (a claim decision names its claim)."""
        if statement_type in DECISION_PATHS:
            if claim is None:
                raise InvalidParameter(f"a {statement_type} is submitted for a claim; name it")
            path = f"/v1/claims/{claim}/{DECISION_PATHS[statement_type]}"
        elif statement_type in WRITE_PATHS:
            path = WRITE_PATHS[statement_type]
        else:
            raise InvalidParameter(f"the issuer takes no {statement_type[:60]!r} statements")
        answer = self._request("POST", path, 201, content=statement, headers={"content-type": media_types.COSE})
        return Logged.from_json(answer.json())

    # --- reads ----------------------------------------------------------------------------------------

    def claim(self, entry: str) -> dict[str, Any]:
        return self._json(f"/v1/claims/{entry}")

    def claims(self, namespace: str, status: str | None = None) -> list[dict[str, Any]]:
        params = {"namespace": namespace, **({"status": status} if status else {})}
        claims: list[dict[str, Any]] = self._json("/v1/claims", **params)["claims"]
        return claims

    def approvers(self, namespace: str) -> list[EnrolledPasskey]:
        return [EnrolledPasskey.from_json(a) for a in self._json("/v1/approvers", namespace=namespace)["approvers"]]

    def agents(self, operator: str) -> list[dict[str, Any]]:
        agents: list[dict[str, Any]] = self._json("/v1/agents", operator=operator)["agents"]
        return agents

    def audit(self, did: str) -> dict[str, Any]:
        return self._json("/v1/audit/" + quote(did, safe=":"))

    def verify_request(self, agent: str, service: str, action: str, resource: str) -> dict[str, Any]:
        return self._json("/v1/verify", agent=agent, service=service, action=action, resource=resource)

    def registry_keys(self) -> dict[str, Any]:
        return self._json("/registry/keys")

    # --- the log the issuer follows (embedded: the same URL) -------------------------------------------

    def key_set(self) -> bytes:
        return self._request("GET", "/.well-known/scitt-keys", 200).content

    def checkpoint(self, after: int | None = None, wait: float | None = None) -> str:
        """The log's latest checkpoint; with ``after``, a long poll until the tree is larger (at most ``wait``)."""
        params = {} if after is None else {"after": str(after), "wait": str(int(wait or 10))}
        timeout = (wait or 0) + DEFAULT_TIMEOUT_S
        return self._request("GET", "/checkpoint", 200, params=params, timeout=timeout).text


__all__ = ["EnrolledPasskey", "IssuerClient", "IssuerRefused", "Logged"]
