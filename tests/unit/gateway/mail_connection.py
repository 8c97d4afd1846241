"""The gateway app tests' mail-api connection: its TOML, its bearer token, an upstream recording what reaches it."""

from __future__ import annotations

import httpx

TOKEN = "tok-very-secret-123"
CONNECTIONS = (
    '[[connections]]\nid = "mail-api"\nupstream = "http://upstream.test/api"\nservice = "mail"\n'
    'credentials = { type = "bearer", secret_ref = "MAIL_TOKEN" }\nactions = { GET = "read", POST = "write" }\n'
)


class Upstream:
    def __init__(self) -> None:
        self.seen: list[httpx.Request] = []
        self.unreachable = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return httpx.Response(200, headers={"X-Upstream": "yes", "Connection": "close"},
                              stream=httpx.ByteStream(b"hello from upstream"))
