"""A hostile HTTP server on 127.0.0.1 (a thread of ``http.server``): what a malicious log, witness, peer or gateway
can answer a client — an endless body, a body larger than it announces, a gzip bomb, a declared huge length, an
answer dripped a byte at a time (its body, or its headers) — and a proxy in front of a real log that drips its first
answers."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from tests.http_stub import QuietHandler, serving

CHUNK = b"x" * 65536
BOMB = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)  # 64 MiB of zeros in about 64 KiB
DRIP_INTERVAL_S = 0.1  # a byte this often: far within any per-read timeout, for ever
DRIP_LENGTH = 100_000  # the Content-Length a drip announces (about three hours of bytes)


Answer = tuple[int, bytes] | tuple[int, bytes, dict[str, str]]
"""A planned answer: status, JSON body, and optionally more headers."""


class Hostile(QuietHandler):
    """``/endless/...``: a chunked body that never ends; ``/bomb/...``: gzip of 64 MiB; ``/declared/...``: a
    Content-Length of 1 TiB; ``/drip/...``: 200 and headers at once, then a byte of body every 0.1 s;
    ``/drip-headers/...``: a byte of the status line and headers every 0.1 s; a path of ``answers``: its status and
    JSON body
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
            elif kind == "drip":
                drip(self, f"HTTP/1.1 200 OK\r\nContent-Length: {DRIP_LENGTH}\r\n\r\n".encode(), b"x" * DRIP_LENGTH,
                     head_at_once=True)
            elif kind == "drip-headers":
                drip(self, b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"x" * DRIP_LENGTH + b"\r\n\r\n", b"",
                     head_at_once=False)
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


def drip(handler: QuietHandler, head: bytes, body: bytes, *, head_at_once: bool) -> None:
    """Write ``head`` (at once, or a byte at a time) then ``body`` a byte every ``DRIP_INTERVAL_S``, flushing each,
    until done or the client hangs up (``OSError``, left to the caller)."""
    if head_at_once:
        handler.wfile.write(head)
        handler.wfile.flush()
    for byte in ([] if head_at_once else [head[i:i + 1] for i in range(len(head))]) + [
            body[i:i + 1] for i in range(len(body))]:
        handler.wfile.write(byte)
        handler.wfile.flush()
        time.sleep(DRIP_INTERVAL_S)


class _DrippingProxy(QuietHandler):
    """GETs relayed to ``target`` (a real log), except the first ``drips`` answers: dripped, a byte every 0.1 s."""

    protocol_version = "HTTP/1.1"
    target = ""
    url = ""
    drips = 0
    dripped = 0
    lock = threading.Lock()

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        cls = type(self)
        with cls.lock:
            dripping = cls.dripped < cls.drips
            cls.dripped += dripping
        try:
            if dripping:
                drip(self, f"HTTP/1.1 200 OK\r\nContent-Length: {DRIP_LENGTH}\r\n\r\n".encode(),
                     b"x" * DRIP_LENGTH, head_at_once=True)
                return
            answer = httpx.get(cls.target + self.path, timeout=30)
            self.send_response(answer.status_code)
            for name in ("content-type", "cache-control"):
                if name in answer.headers:
                    self.send_header(name, answer.headers[name])
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)
        except OSError:  # the client stopped reading
            return


@contextmanager
def dripping_proxy(target: str, drips: int) -> Iterator[type[_DrippingProxy]]:
    """A proxy of the log at ``target`` that drips its first ``drips`` answers; yields its handler class, whose
    ``url`` is the proxy's base URL and ``dripped`` the drips served so far."""
    class Proxy(_DrippingProxy):  # one class a proxy: its counters are its own
        lock = threading.Lock()

    Proxy.target, Proxy.drips = target, drips
    with serving(Proxy, quiet_errors=True) as url:
        Proxy.url = url
        yield Proxy
