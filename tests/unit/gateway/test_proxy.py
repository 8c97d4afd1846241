"""Proxying: what goes upstream (signing and hop-by-hop headers out, credentials in), what comes back."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
from collections.abc import AsyncIterator

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.responses import StreamingResponse

from gateway.config import BearerCredentials, Connection, HeaderCredentials
from gateway.errors import HopByHopFieldSigned, RequestFramingAmbiguous, UpstreamAnswerUnreadable
from gateway.proxy import (
    UpstreamProxy,
    check_framing,
    check_signed_fields,
    credential_headers,
    response_headers,
    upstream_headers,
    upstream_url,
)
from gateway.scrub import Scrubber
from gateway.secrets import Secret
from gateway.upstream import UpstreamClient
from schemas.errors import SecretMissing, UpstreamTimeout, UpstreamUnreachable
from tests.upstream_server import UpstreamServer, unreachable

SECRETS = {"TOKEN": Secret("tok-123"), "KEY": Secret("key-456"), "TENANT": Secret("acme")}
BEARER = Connection("mail", "http://up.test/api/", "mail", credentials=BearerCredentials("TOKEN"))
HEADERS = Connection("crm", "http://up.test", "crm",
                     credentials=HeaderCredentials((("X-Api-Key", "KEY"), ("X-Tenant", "TENANT"))))
AGENT = [
    ("Host", "gw.test"), ("Content-Type", "application/json"), ("Content-Length", "7"),
    ("Content-Digest", "sha-256=:abc=:"), ("Signature-Input", 'sig1=("@method");keyid="k"'),
    ("Signature", "sig1=:c2ln:"), ("Tabellion-Namespace", "acme"), ("tabellion-subject", "did:key:z"),
    ("Tabellion-Agent-Key", "z"), ("Tabellion-Agent-Passport", "ab"), ("Connection", "keep-alive, X-Hop"),
    ("X-Hop", "1"), ("Keep-Alive", "timeout=5"), ("TE", "trailers"), ("Upgrade", "h2c"),
    ("Authorization", "Bearer agent-supplied"), ("X-Api-Key", "agent-supplied"), ("Accept", "*/*"),
    ("X-Request-Id", "r1"),
]


def test_credentials_become_headers() -> None:
    bearer = credential_headers(BEARER, SECRETS)
    assert [(n, v.reveal()) for n, v in bearer] == [("Authorization", "Bearer tok-123")]
    assert "tok-123" not in repr(bearer)
    assert [(n, v.reveal()) for n, v in credential_headers(HEADERS, SECRETS)] == [
        ("X-Api-Key", "key-456"), ("X-Tenant", "acme")]
    assert credential_headers(Connection("open", "http://up.test", "open"), {}) == ()
    with pytest.raises(SecretMissing, match="TOKEN"):
        credential_headers(BEARER, {})


def test_signing_identity_and_hop_by_hop_headers_are_stripped_credentials_injected() -> None:
    sent = upstream_headers(AGENT, credential_headers(BEARER, SECRETS))
    names = [n.lower() for n, _ in sent]
    for gone in ("host", "content-length", "signature", "signature-input", "tabellion-namespace",
                 "tabellion-subject", "tabellion-agent-key", "tabellion-agent-passport", "connection", "x-hop",
                 "keep-alive", "te", "upgrade"):
        assert gone not in names
    assert ("Authorization", "Bearer tok-123") in sent and ("Authorization", "Bearer agent-supplied") not in sent
    assert names.count("authorization") == 1
    for kept in (("Content-Type", "application/json"), ("Content-Digest", "sha-256=:abc=:"), ("Accept", "*/*"),
                 ("X-Request-Id", "r1"), ("X-Api-Key", "agent-supplied")):
        assert kept in sent
    custom = upstream_headers(AGENT, credential_headers(HEADERS, SECRETS))
    assert ("X-Api-Key", "key-456") in custom and ("X-Api-Key", "agent-supplied") not in custom
    assert ("Authorization", "Bearer agent-supplied") in custom  # not ours to strip on a headers connection


def test_response_headers_lose_hop_by_hop_ones() -> None:
    back = response_headers([("Content-Type", "text/plain"), ("Connection", "close, X-Internal"),
                             ("X-Internal", "1"), ("Transfer-Encoding", "chunked"), ("Set-Cookie", "a=b")])
    assert back == [("Content-Type", "text/plain"), ("Set-Cookie", "a=b")]


def test_the_path_and_query_go_up_as_sent() -> None:
    assert upstream_url(BEARER, "inbox/a%20b", "x=1&y") == "http://up.test/api/inbox/a%20b?x=1&y"
    assert upstream_url(HEADERS, "", "") == "http://up.test/"


def test_forward_sends_exactly_that_and_streams_back() -> None:
    seen: list[httpx.Request] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, headers={"X-Up": "yes"}, stream=httpx.ByteStream(b"created"))

    async def go() -> tuple[int, bytes]:
        async with UpstreamServer(upstream) as server, UpstreamClient(resolver=server.resolver) as client:
            proxy = UpstreamProxy(client, {"mail": credential_headers(BEARER, SECRETS)})
            answer = await proxy.forward(BEARER, "POST", "inbox/1", "x=1", AGENT, b'{"a":1}')
            body = b"".join([chunk async for chunk in answer.body()])
            await answer.aclose()
            return answer.status, body

    assert asyncio.run(go()) == (201, b"created")
    (request,) = seen
    assert str(request.url) == "http://up.test/api/inbox/1?x=1" and request.method == "POST"
    assert request.content == b'{"a":1}' and request.headers["host"] == "up.test"
    assert request.headers["authorization"] == "Bearer tok-123" and "signature" not in request.headers
    # the client adds nothing of its own: what the agent sent (less what is stripped), the credentials, framing
    assert sorted(request.headers.keys()) == ["accept", "authorization", "content-digest", "content-length",
                                              "content-type", "host", "x-api-key", "x-request-id"]


def test_nothing_goes_up_that_the_agent_did_not_send() -> None:
    """No User-Agent, Accept, Accept-Encoding or Content-Type of the client's own, and no cookie: one an upstream
    sets in its answer to one agent never goes up with the next request (another agent's, say)."""
    seen: list[httpx.Request] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"Set-Cookie": "session=agent-a; Path=/"}, content=b"ok")

    async def go() -> None:
        async with UpstreamServer(upstream) as server, UpstreamClient(resolver=server.resolver) as client:
            proxy = UpstreamProxy(client, {})
            for body in (b"", b"x"):
                answer = await proxy.forward(BEARER, "POST", "inbox/1", "", [], body)
                assert await answer.read(100) == b"ok"

    asyncio.run(go())
    first, second = seen
    assert sorted(first.headers.keys()) == ["content-length", "host"]
    assert sorted(second.headers.keys()) == ["content-length", "host"] and second.content == b"x"


@pytest.mark.parametrize("failure", ["refused", "slow"])
def test_an_upstream_that_fails_is_a_502_or_504(failure: str) -> None:
    async def upstream(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(1)
        return httpx.Response(200)

    slow = dataclasses.replace(BEARER, timeout=0.2)

    async def go() -> None:
        async with UpstreamServer(upstream) as server, UpstreamClient(
            resolver=unreachable() if failure == "refused" else server.resolver
        ) as client:
            await UpstreamProxy(client, {"mail": credential_headers(BEARER, SECRETS)}).forward(
                slow, "GET", "x", "", [], b"")

    with pytest.raises(UpstreamUnreachable if failure == "refused" else UpstreamTimeout) as caught:
        asyncio.run(go())
    assert "tok-123" not in str(caught.value)


def test_override_headers_go_up_only_when_signed() -> None:
    overrides = [("X-HTTP-Method-Override", "DELETE"), ("X-HTTP-Method", "PUT"), ("X-Method-Override", "PATCH"),
                 ("X-Original-URL", "/admin"), ("X-Rewrite-URL", "/admin")]
    names = {n.lower() for n, _ in upstream_headers([*AGENT, *overrides], ())}
    assert not names & {n.lower() for n, _ in overrides}
    kept = upstream_headers([*AGENT, *overrides], (), signed=("x-http-method-override",))
    assert ("X-HTTP-Method-Override", "DELETE") in kept and ("X-HTTP-Method", "PUT") not in kept


def test_framing_and_signed_hop_by_hop_fields_are_refused() -> None:
    check_framing([("Content-Length", "3")])
    check_framing([("Transfer-Encoding", "chunked")])
    with pytest.raises(RequestFramingAmbiguous):
        check_framing([("content-length", "3"), ("Transfer-Encoding", "chunked")])
    check_signed_fields(AGENT, ("@method", "content-digest", "x-request-id"))
    for covered in (("x-hop",), ("keep-alive",), ("upgrade",), ("connection",)):
        with pytest.raises(HopByHopFieldSigned):
            check_signed_fields(AGENT, ("@method", *covered))


SCRUB = Scrubber([Secret("tok-123"), Secret('k"e/y 9')])


@pytest.mark.parametrize("text", [
    b"tok-123", b"Bearer tok-123 and again tok-123", b'{"h": "k\\"e/y 9"}', b"q=k%22e%2Fy%209", b"k\"e/y 9"])
def test_every_spelling_of_a_secret_is_masked_to_the_same_length(text: bytes) -> None:
    masked = SCRUB.mask(text)
    assert len(masked) == len(text) and b"tok-123" not in masked and b"e/y 9" not in masked and b"e%2Fy" not in masked
    assert SCRUB.headers([("X-Echo", text.decode())]) == [("X-Echo", masked.decode())]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=60), st.binary(max_size=60), st.lists(st.integers(1, 9), min_size=1, max_size=40))
def test_a_secret_split_across_chunks_is_masked_like_a_whole_body(before: bytes, after: bytes,
                                                                 sizes: list[int]) -> None:
    body = before + b"tok-123" + after + b'k"e/y 9'
    chunks, at = [], 0
    for size in sizes:
        chunks.append(body[at:at + size])
        at += size
    chunks.append(body[at:])

    async def collect() -> bytes:
        async def source() -> AsyncIterator[bytes]:
            for chunk in chunks:
                yield chunk

        return b"".join([c async for c in SCRUB.stream(source())])

    assert asyncio.run(collect()) == SCRUB.mask(body)
    assert b"tok-123" not in SCRUB.mask(body)


def test_answers_are_scrubbed_decoded_when_compressed_and_refused_in_an_unknown_coding() -> None:
    echoed = b'{"authorization": "Bearer tok-123"}'

    def upstream(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/gzip"):
            return httpx.Response(200, headers={"Content-Encoding": "gzip", "X-Echo": "tok-123"},
                                  stream=httpx.ByteStream(gzip.compress(echoed)))
        if request.url.path.endswith("/long"):  # over WHOLE_ANSWER_BYTES: streamed, the secret across chunks
            return httpx.Response(200, content=b"x" * 70_000 + echoed + b"y" * 70_000)
        if request.url.path.endswith("/stacked"):  # the client undoes one coding: two are refused, never passed on
            return httpx.Response(200, headers={"Content-Encoding": "gzip, gzip"},
                                  content=gzip.compress(gzip.compress(echoed)))
        if request.url.path.endswith("/odd"):
            return httpx.Response(200, headers={"Content-Encoding": "x-odd"}, stream=httpx.ByteStream(b"tok-123"))
        return httpx.Response(200, headers={"X-Echo": request.headers["authorization"]},
                              stream=httpx.ByteStream(echoed))

    async def through(path: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
        async with UpstreamServer(upstream) as server, UpstreamClient(resolver=server.resolver) as client:
            proxy = UpstreamProxy(client, {"mail": credential_headers(BEARER, SECRETS)})
            response = await proxy.answer(BEARER, await proxy.forward(BEARER, "GET", path, "", AGENT, b""))
            if isinstance(response, StreamingResponse):  # long, or decoded: streamed
                body = b"".join([bytes(c) if not isinstance(c, str) else c.encode()
                                 async for c in response.body_iterator])
            else:  # short and as sent: read whole
                body = bytes(response.body)
            return response.raw_headers, body

    headers, body = asyncio.run(through("plain"))
    assert body == echoed.replace(b"tok-123", b"*******") and (b"x-echo", b"Bearer *******") in headers
    headers, body = asyncio.run(through("gzip"))
    assert body == echoed.replace(b"tok-123", b"*******")
    assert not [k for k, _ in headers if k.lower() in (b"content-encoding", b"content-length")]
    headers, body = asyncio.run(through("long"))
    assert body == (b"x" * 70_000 + echoed + b"y" * 70_000).replace(b"tok-123", b"*******")
    assert (b"content-length", str(len(body)).encode()) in [(k.lower(), v) for k, v in headers]
    with pytest.raises(UpstreamAnswerUnreadable, match="x-odd"):
        asyncio.run(through("odd"))
    with pytest.raises(UpstreamAnswerUnreadable, match="gzip, gzip"):
        asyncio.run(through("stacked"))
