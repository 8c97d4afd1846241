"""The gateway's edges, each probed from outside with real processes on 127.0.0.1 (the transparency service,
``tabellion gateway`` in a subprocess, an upstream that echoes what it receives): paths that could name another
resource upstream, hop-by-hop and override headers, ambiguous framing, and the injected credential echoed back."""

from __future__ import annotations

import gzip
import http.client
import json
import socket
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from gateway.signatures import Request
from tests.e2e.gateway_deployment import TOKEN, gateway_deployment, refused, send, signed
from tests.gateway_world import World

IDENTITY = ["@method", "@target-uri", "tabellion-namespace", "tabellion-subject", "tabellion-agent-key",
            "tabellion-agent-passport"]


class Echo(BaseHTTPRequestHandler):
    """Answers with what it received: path and headers as JSON, the Authorization it got in ``X-Echo``;
    ``/api/inbox/gzip`` gzip-encoded, ``/api/inbox/chunks`` chunked in 5-byte pieces."""

    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str, dict[str, str]]] = []

    def _handle(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        Echo.seen.append((self.command, self.path, headers))
        body = json.dumps({"path": self.path, "headers": headers}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Echo", headers.get("authorization", ""))
        if self.path.endswith("/gzip"):
            body = gzip.compress(body)
            self.send_header("Content-Encoding", "gzip")
        if self.path.endswith("/chunks"):
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(body), 5):
                piece = body[i:i + 5]
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str]]:
    with gateway_deployment(tmp_path_factory.mktemp("edges"), upstream=Echo,
                            settings="body_read_timeout = 1") as deployment:
        yield deployment.world, deployment.url


def last_seen() -> tuple[str, str, dict[str, str]]:
    return Echo.seen[-1]


@pytest.mark.parametrize("path", [
    "inbox/..;/outbox/1", "inbox;/../outbox/1", "inbox/%2e%2e/outbox/1", "inbox/%2E%2E/outbox/1",
    "inbox/%252e%252e/outbox/1", "inbox/%u002e%u002e/outbox/1", "inbox/%3b/1", "inbox//../outbox/1",
    "inbox/x%2f..%2f..%2foutbox",
])
def test_paths_that_could_name_another_resource_upstream_are_refused(edge: tuple[World, str], path: str) -> None:
    world, url = edge
    before = len(Echo.seen)
    status, ctype, problem = send_raw(signed(world, url, f"/proxy/mail-api/{path}"))
    assert (status, ctype, problem["type"]) == (400, "application/problem+json",
                                                "urn:tabellion:error:resource-invalid"), problem
    assert len(Echo.seen) == before


def send_raw(request: Request) -> tuple[int, str, dict[str, Any]]:
    """Send with http.client, which (unlike httpx) leaves dot segments in the path as they are."""
    parts = urlsplit(request.target_uri)
    connection = http.client.HTTPConnection(parts.netloc, timeout=10)
    try:
        connection.request(request.method, parts.path + (f"?{parts.query}" if parts.query else ""),
                           body=request.body, headers=dict(request.headers))
        answer = connection.getresponse()
        return answer.status, answer.getheader("content-type", ""), json.loads(answer.read())
    finally:
        connection.close()


def test_the_upstream_gets_the_path_that_was_decided(edge: tuple[World, str]) -> None:
    world, url = edge
    assert send(signed(world, url, "/proxy/mail-api/inbox/%41b%20c?q=%2e")).status_code == 200
    assert last_seen()[1] == "/api/inbox/Ab%20c?q=%2e"  # the resource re-encoded one way; the query as signed


def test_hop_by_hop_and_unsigned_override_headers_do_not_go_up(edge: tuple[World, str]) -> None:
    world, url = edge
    request = signed(world, url, "/proxy/mail-api/inbox/1")
    extra = [("Connection", "keep-alive, X-Hop"), ("X-Hop", "1"), ("Keep-Alive", "timeout=5"), ("TE", "trailers"),
             ("Proxy-Connection", "keep-alive"), ("X-HTTP-Method-Override", "DELETE"), ("X-HTTP-Method", "DELETE"),
             ("X-Method-Override", "DELETE"), ("X-Original-URL", "/api/outbox/1"), ("X-Rewrite-URL", "/api/outbox/1"),
             ("X-Request-Id", "r-1")]
    answer = httpx.request("GET", request.target_uri, headers=[*request.headers, *extra], timeout=10)
    assert answer.status_code == 200, answer.text
    _, path, seen = last_seen()
    assert path == "/api/inbox/1" and seen["x-request-id"] == "r-1"
    for gone in ("x-hop", "keep-alive", "te", "proxy-connection", "x-http-method-override", "x-http-method",
                 "x-method-override", "x-original-url", "x-rewrite-url"):
        assert gone not in seen, gone


def test_a_signed_override_is_decided_on_or_refused(edge: tuple[World, str]) -> None:
    world, url = edge
    before = len(Echo.seen)
    # DELETE by override is decided as "delete": outside C's scope
    request = signed_with(world, url, ("X-HTTP-Method-Override", "DELETE"))
    problem = refused(send(request), 403, "scope-refused")
    assert problem["reason_code"] == "action_out_of_scope"
    refused(send(signed_with(world, url, ("X-Original-URL", "/api/outbox/1"))), 400, "method-override-refused")
    assert len(Echo.seen) == before
    # POST by override is "write", inside the scope: it goes up, with the override the agent signed
    assert send(signed_with(world, url, ("X-HTTP-Method-Override", "POST"))).status_code == 200
    assert last_seen()[2]["x-http-method-override"] == "POST"


def signed_with(world: World, url: str, field: tuple[str, str]) -> Request:
    """A GET of inbox/1 whose signature also covers ``field``."""
    return signed(world, url, "/proxy/mail-api/inbox/1", components=[*IDENTITY, field[0].lower()],
                  extra_headers=(field,))


def test_a_connection_header_naming_a_signed_field_is_refused(edge: tuple[World, str]) -> None:
    world, url = edge
    before = len(Echo.seen)
    request = signed(world, url, "/proxy/mail-api/inbox/1", components=[*IDENTITY, "x-tenant"],
                     extra_headers=(("X-Tenant", "acme"), ("Connection", "X-Tenant")))
    refused(send(request), 400, "hop-by-hop-field-signed")
    assert len(Echo.seen) == before


def test_content_length_with_transfer_encoding_is_refused(edge: tuple[World, str]) -> None:
    world, url = edge
    request = signed(world, url, "/proxy/mail-api/inbox/1", "POST", b"{}")
    host, port = url.removeprefix("http://").split(":")
    head = "".join(f"{k}: {v}\r\n" for k, v in request.headers)
    raw = (f"POST /proxy/mail-api/inbox/1 HTTP/1.1\r\nHost: {host}:{port}\r\n{head}Content-Length: 2\r\n"
           "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n").encode()
    before = len(Echo.seen)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(raw)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split()[1] == b"400", answer
    assert b"application/problem+json" in rest.partition(b"\r\n\r\n")[0].lower()
    assert b"urn:tabellion:error:request-framing-ambiguous" in rest
    assert len(Echo.seen) == before


@pytest.mark.parametrize("path", ["inbox/plain", "inbox/gzip", "inbox/chunks"])
def test_an_echoing_upstream_cannot_hand_the_credential_to_the_agent(edge: tuple[World, str], path: str) -> None:
    world, url = edge
    answer = send(signed(world, url, f"/proxy/mail-api/{path}"))
    assert answer.status_code == 200
    assert last_seen()[2]["authorization"] == f"Bearer {TOKEN}"  # the upstream did get it
    assert TOKEN not in answer.text and TOKEN not in str(answer.headers)
    assert answer.json()["headers"]["authorization"] == "Bearer " + "*" * len(TOKEN)
    assert answer.headers["x-echo"] == "Bearer " + "*" * len(TOKEN)


def test_a_body_that_stalls_is_refused(edge: tuple[World, str]) -> None:
    world, url = edge
    request = signed(world, url, "/proxy/mail-api/inbox/1", "POST", b"x" * 100)
    host, port = url.removeprefix("http://").split(":")
    head = "".join(f"{k}: {v}\r\n" for k, v in request.headers)
    before = len(Echo.seen)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall((f"POST /proxy/mail-api/inbox/1 HTTP/1.1\r\nHost: {host}:{port}\r\n{head}Content-Length: 100\r\n"
                   "Connection: close\r\n\r\n").encode() + b"x" * 10)  # then nothing: 90 bytes never come
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    assert answer.split(b"\r\n", 1)[0].split()[1] == b"408", answer
    assert b"urn:tabellion:error:request-body-timeout" in answer
    assert len(Echo.seen) == before
