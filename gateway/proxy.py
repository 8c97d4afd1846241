"""Forwarding an allowed request to the connection's upstream, with the connection's credentials.

On the way up the gateway removes what belongs to it and not to the provider — the agent's signature
(``Signature``, ``Signature-Input``), the four ``Tabellion-*`` identity headers, hop-by-hop headers
(RFC 9110 §7.6.1, and any named in ``Connection``), ``Host`` and ``Content-Length`` (httpx sets both) and any
header the credentials set — then adds the credentials: ``Authorization: Bearer <secret>`` or the configured
headers. The path and query go up exactly as the agent sent (and signed) them, appended to the upstream base.

The request body has been read whole (its digest had to match before anything was sent); the upstream's
answer is streamed back as it arrives (raw bytes: a compressed body stays compressed, with its headers),
with its status, minus hop-by-hop headers. No redirect is followed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import httpx
from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse

from schemas.errors import SecretMissing, UpstreamTimeout, UpstreamUnreachable

from .config import BearerCredentials, Connection, HeaderCredentials
from .secrets import Secret
from .signatures import AGENT_IDENTITY_HEADERS

HOP_BY_HOP: Final = frozenset({
    "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade",
})
AGENT_SIGNING_HEADERS: Final = frozenset({"signature", "signature-input", *AGENT_IDENTITY_HEADERS})
_SET_BY_CLIENT: Final = frozenset({"host", "content-length"})

Headers = Sequence[tuple[str, str]]
InjectedHeaders = tuple[tuple[str, Secret], ...]


def credential_headers(connection: Connection, secrets: Mapping[str, Secret]) -> InjectedHeaders:
    """The headers that carry the connection's credentials, with their (decrypted) values."""

    def secret(ref: str) -> Secret:
        value = secrets.get(ref)
        if value is None:
            raise SecretMissing(f"connection {connection.id!r} needs the secret {ref!r}, which was not loaded")
        return value

    credentials = connection.credentials
    if isinstance(credentials, BearerCredentials):
        return (("Authorization", Secret(f"Bearer {secret(credentials.secret_ref).reveal()}")),)
    if isinstance(credentials, HeaderCredentials):
        return tuple((name, secret(ref)) for name, ref in credentials.headers)
    return ()


def _connection_listed(headers: Headers) -> set[str]:
    """Names listed in ``Connection`` header values: hop-by-hop for this hop only (RFC 9110 §7.6.1)."""
    return {n.strip().lower() for k, v in headers if k.lower() == "connection" for n in v.split(",") if n.strip()}


def upstream_headers(headers: Headers, injected: InjectedHeaders) -> list[tuple[str, str]]:
    """The request headers to send upstream: the agent's, stripped (see the module docstring), then the
    credentials."""
    drop = HOP_BY_HOP | AGENT_SIGNING_HEADERS | _SET_BY_CLIENT | _connection_listed(headers)
    drop |= {name.lower() for name, _ in injected}
    kept = [(k, v) for k, v in headers if k.lower() not in drop]
    return kept + [(name, value.reveal()) for name, value in injected]


def response_headers(headers: Headers) -> list[tuple[str, str]]:
    """The upstream's response headers to pass back: all but hop-by-hop ones."""
    drop = HOP_BY_HOP | _connection_listed(headers)
    return [(k, v) for k, v in headers if k.lower() not in drop]


def upstream_url(connection: Connection, rest: str, query: str) -> str:
    """``upstream + "/" + rest`` (the raw path after the connection id) ``+ "?" + query``."""
    return f"{connection.upstream.rstrip('/')}/{rest}" + (f"?{query}" if query else "")


class UpstreamProxy:
    """Sends allowed requests upstream over one shared ``httpx.AsyncClient`` (connection pooling)."""

    def __init__(self, client: httpx.AsyncClient, credentials: Mapping[str, InjectedHeaders]) -> None:
        self.client = client
        self.credentials = credentials

    async def forward(
        self, connection: Connection, method: str, rest: str, query: str, headers: Headers, body: bytes
    ) -> httpx.Response:
        """Send the request; the answer's body is still to be read (``aiter_raw``) and closed (``aclose``)."""
        return await self.send(connection, method, upstream_url(connection, rest, query), headers, body)

    async def send(
        self, connection: Connection, method: str, url: str, headers: Headers, body: bytes
    ) -> httpx.Response:
        """Send to ``url`` with the agent's headers stripped and the connection's credentials injected."""
        request = self.client.build_request(
            method, httpx.URL(url), headers=upstream_headers(headers, self.credentials.get(connection.id, ())),
            content=body, timeout=connection.timeout,
        )
        try:
            return await self.client.send(request, stream=True, follow_redirects=False)
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(
                f"connection {connection.id!r}: the upstream did not answer in {connection.timeout:g} s"
            ) from exc
        except httpx.HTTPError as exc:
            raise UpstreamUnreachable(f"connection {connection.id!r}: {type(exc).__name__}: {exc}") from exc


def streamed(upstream: httpx.Response) -> Response:
    """The upstream's answer passed back as it arrives; the upstream connection is released at the end."""
    response = StreamingResponse(upstream.aiter_raw(), status_code=upstream.status_code,
                                 background=BackgroundTask(upstream.aclose))
    response.raw_headers = [
        (k.encode("latin-1"), v.encode("latin-1")) for k, v in response_headers(upstream.headers.multi_items())
    ]
    return response
