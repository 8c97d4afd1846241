"""Forwarding an allowed request to the connection's upstream, with the connection's credentials.

On the way up the gateway removes what belongs to it and not to the provider — the agent's signature
(``Signature``, ``Signature-Input``), the four ``Tabellion-*`` identity headers, hop-by-hop headers
(RFC 9110 §7.6.1: ``Connection``, ``Proxy-Connection``, ``Keep-Alive``, ``TE``, ``Transfer-Encoding``,
``Upgrade``, ``Trailer``, the proxy authentication fields, and any field ``Connection`` names), ``Host`` and
``Content-Length`` (the client sets both), method and URL override headers (``X-HTTP-Method-Override``,
``X-HTTP-Method``, ``X-Method-Override``, ``X-Original-URL``, ``X-Rewrite-URL``) unless the agent's signature
covers them, and any header the credentials set — then adds the credentials: ``Authorization: Bearer <secret>``
or the configured headers. The path is ``forwarded_path`` of the decided resource (``gateway.decisions``),
appended to the upstream base; the query goes up as sent (and signed).

Before anything is decided, ``check_framing`` refuses a request with both ``Content-Length`` and
``Transfer-Encoding`` (RFC 9112 §6.3: the two ends of a hop could frame it differently), and
``check_signed_fields`` refuses a signature over a field that would not reach the upstream (a hop-by-hop
field, or one ``Connection`` names: what the agent signed would not be what goes up).

The request body has been read whole (its digest had to match before anything was sent); the upstream's
answer comes back with its status, minus hop-by-hop headers: read whole when it declares a ``Content-Length`` of
at most 64 KiB (one message to the server, the usual case of an API answer), else streamed as it arrives. No
redirect is followed. On a connection with credentials the answer is scrubbed (``gateway.scrub``): an upstream
that echoes the request cannot hand the injected secret to the agent.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Final

from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse

from schemas.errors import SecretMissing, TabellionError, UpstreamUnreachable

from .config import BearerCredentials, Connection, HeaderCredentials
from .errors import HopByHopFieldSigned, RequestFramingAmbiguous
from .scrub import Scrubber
from .secrets import Secret
from .signatures import AGENT_IDENTITY_HEADERS
from .upstream import UpstreamAnswer, UpstreamClient

HOP_BY_HOP: Final = frozenset({
    "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade",
})
METHOD_OVERRIDES: Final = frozenset({"x-http-method-override", "x-http-method", "x-method-override"})
URL_OVERRIDES: Final = frozenset({"x-original-url", "x-rewrite-url"})
AGENT_SIGNING_HEADERS: Final = frozenset({"signature", "signature-input", *AGENT_IDENTITY_HEADERS})
_SET_BY_CLIENT: Final = frozenset({"host", "content-length"})
WHOLE_ANSWER_BYTES: Final = 65_536  # answers that declare this length or less are read whole, then passed back

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


def _secrets_in(injected: InjectedHeaders) -> list[Secret]:
    """The secret values the injected headers carry: a bearer token on its own, other values whole."""
    return [Secret(value.reveal().removeprefix("Bearer ")) for _, value in injected]


def _connection_listed(headers: Headers) -> set[str]:
    """Names listed in ``Connection`` header values: hop-by-hop for this hop only (RFC 9110 §7.6.1)."""
    return {n.strip().lower() for k, v in headers if k.lower() == "connection" for n in v.split(",") if n.strip()}


def hop_by_hop(headers: Headers) -> frozenset[str]:
    """Every field name of ``headers``' hop: the fixed ones and those ``Connection`` names."""
    return HOP_BY_HOP | frozenset(_connection_listed(headers))


def check_framing(headers: Headers) -> None:
    """Refuse a request carrying both ``Content-Length`` and ``Transfer-Encoding`` (RFC 9112 §6.3)."""
    names = {k.lower() for k, _ in headers}
    if "content-length" in names and "transfer-encoding" in names:
        raise RequestFramingAmbiguous("the request has both Content-Length and Transfer-Encoding: send one")


def check_signed_fields(headers: Headers, covered: Collection[str]) -> None:
    """Refuse a signature covering a field this hop removes (``HopByHopFieldSigned``)."""
    removed = sorted(hop_by_hop(headers).intersection(covered))
    if removed:
        raise HopByHopFieldSigned(
            f"the signature covers {', '.join(removed)[:200]}, removed at this hop (hop-by-hop, or named in "
            "Connection): the upstream would not receive what was signed"
        )


def upstream_headers(headers: Headers, injected: InjectedHeaders, signed: Collection[str] = ()) -> list[
    tuple[str, str]
]:
    """The request headers to send upstream: the agent's, stripped (see the module docstring), then the
    credentials. ``signed`` are the fields the agent's signature covers (override headers go up only then)."""
    drop = hop_by_hop(headers) | AGENT_SIGNING_HEADERS | _SET_BY_CLIENT
    drop |= (METHOD_OVERRIDES | URL_OVERRIDES) - set(signed)
    drop |= {name.lower() for name, _ in injected}
    kept = [(k, v) for k, v in headers if k.lower() not in drop]
    return kept + [(name, value.reveal()) for name, value in injected]


def response_headers(headers: Headers) -> list[tuple[str, str]]:
    """The upstream's response headers to pass back: all but hop-by-hop ones."""
    drop = hop_by_hop(headers)
    return [(k, v) for k, v in headers if k.lower() not in drop]


def upstream_url(connection: Connection, path: str, query: str) -> str:
    """``upstream + "/" + path`` (the forwarded path of the decided resource) ``+ "?" + query``."""
    return f"{connection.upstream.rstrip('/')}/{path}" + (f"?{query}" if query else "")


class UpstreamProxy:
    """Sends allowed requests upstream over the gateway's one client (``gateway.upstream``: a connection pool),
    and passes the answers back scrubbed of each connection's credentials."""

    def __init__(self, client: UpstreamClient, credentials: Mapping[str, InjectedHeaders]) -> None:
        self.client = client
        self.credentials = credentials
        self.scrubbers = {cid: Scrubber(_secrets_in(injected)) for cid, injected in credentials.items()}

    async def forward(
        self, connection: Connection, method: str, path: str, query: str, headers: Headers, body: bytes,
        signed: Collection[str] = (),
    ) -> UpstreamAnswer:
        """Send the request; the answer's body is still to be read (``body()``) and released (``aclose()``)."""
        return await self.send(connection, method, upstream_url(connection, path, query), headers, body, signed)

    async def send(
        self, connection: Connection, method: str, url: str, headers: Headers, body: bytes,
        signed: Collection[str] = (), *, decode: bool = False,
    ) -> UpstreamAnswer:
        """Send to ``url`` with the agent's headers stripped and the connection's credentials injected. The body
        comes back decoded when ``decode`` or when the connection's answers are scrubbed."""
        return await self.client.send(
            method, url, upstream_headers(headers, self.credentials.get(connection.id, ()), signed), body,
            timeout=connection.timeout, decode=decode or self.scrubber(connection).active,
            what=f"connection {connection.id!r}",
        )

    def scrubber(self, connection: Connection) -> Scrubber:
        return self.scrubbers.get(connection.id) or Scrubber(())

    async def answer(self, connection: Connection, upstream: UpstreamAnswer) -> Response:
        """The upstream's answer passed back, scrubbed: read whole when it declares a length of at most
        ``WHOLE_ANSWER_BYTES`` (and comes as sent), else streamed as it arrives. The upstream connection is released
        at the end (at once when the answer is refused)."""
        scrubber = self.scrubber(connection)
        try:
            length = upstream.content_length
            if not upstream.decoded and length is not None and length <= WHOLE_ANSWER_BYTES:
                return await whole(upstream, scrubber)
            return streamed(upstream, scrubber)
        except TabellionError:
            await upstream.aclose()
            raise


class PassedBack(Response):
    """The upstream's own answer, read whole (a ``StreamingResponse`` is the upstream's too): whatever its status,
    not a refusal or a failure of the gateway's (``gateway.metrics``)."""


async def whole(upstream: UpstreamAnswer, scrubber: Scrubber) -> Response:
    """A short answer read whole, then passed back in one piece: one message to the server, no stream to keep."""
    body = await upstream.read(WHOLE_ANSWER_BYTES)
    if body is None:  # the framing would have refused a body longer than its Content-Length
        raise UpstreamUnreachable("the upstream sent more than the length it declared")
    response = PassedBack(scrubber.mask(body), status_code=upstream.status)
    response.raw_headers = [(k.encode("latin-1"), v.encode("latin-1"))
                            for k, v in scrubber.headers(response_headers(upstream.headers))]
    return response


def streamed(upstream: UpstreamAnswer, scrubber: Scrubber | None = None) -> Response:
    """The upstream's answer passed back as it arrives; the upstream connection is released at the end."""
    scrubber = scrubber or Scrubber(())
    headers = scrubber.headers(response_headers(upstream.headers))
    if upstream.decoded:  # scanned decoded: the coding is undone
        headers = [(k, v) for k, v in headers if k.lower() not in ("content-encoding", "content-length")]
    response = StreamingResponse(scrubber.stream(upstream.body()), status_code=upstream.status,
                                 background=BackgroundTask(upstream.aclose))
    response.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    return response
