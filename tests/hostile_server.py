"""A hostile HTTP server on 127.0.0.1 (a thread of ``http.server``): what a malicious log, witness, peer or gateway
can answer a client — an endless body, a body larger than it announces, a gzip bomb, a declared huge length."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from contextlib import contextmanager

from tests.http_stub import QuietHandler, serving

CHUNK = b"x" * 65536
BOMB = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)  # 64 MiB of zeros in about 64 KiB


Answer = tuple[int, bytes] | tuple[int, bytes, dict[str, str]]
"""A planned answer: status, JSON body, and optionally more headers."""


class Hostile(QuietHandler):
    """``/endless/...``: a chunked body that never ends; ``/bomb/...``: gzip of 64 MiB; ``/declared/...``: a
    Content-Length of 1 TiB; a path of ``answers``: its status and JSON body
    (under ``/session/``, with the session id ``two words``); anything else: 404."""

    protocol_version = "HTTP/1.1"
    answers: dict[str, Answer] = {}  # noqa: RUF012 - set per server (a subclass each)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._answer()

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        self._answer()

    def _answer(self) -> None:
        kind = self.path.strip("/").split("/")[0]
        try:
            if kind == "endless":
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                while True:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))
            elif kind == "bomb":
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(BOMB)))
                self.end_headers()
                self.wfile.write(BOMB)
            elif kind == "declared":
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(1 << 40))
                self.end_headers()
                while True:
                    self.wfile.write(CHUNK)
            elif self.path in self.answers:
                status, body, *more = self.answers[self.path]
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for name, value in (more[0] if more else {}).items():
                    self.send_header(name, value)
                if kind == "session":
                    self.send_header("Mcp-Session-Id", "two words")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_error(404)
        except OSError:  # the client stopped reading
            return


@contextmanager
def hostile_server(answers: dict[str, Answer] | None = None) -> Iterator[str]:
    """The base URL of a hostile server (answering ``answers``: path -> status and body), stopped on exit."""
    handler = type("HostileAnswers", (Hostile,), {"answers": dict(answers or {})})
    with serving(handler, quiet_errors=True) as url:  # the bounded clients stop reading on purpose
        yield url
