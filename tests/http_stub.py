"""One local HTTP server for the tests' stand-ins (an upstream, a webhook receiver, a witness, a lying log):
``http.server``'s threading server on 127.0.0.1 at a free port, served from a daemon thread, shut down on exit."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that does not write a line to stderr per request."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        return None


class _QuietServer(ThreadingHTTPServer):
    """A server that says nothing when a handler fails: for stand-ins whose clients hang up on purpose."""

    def handle_error(self, request: object, client_address: object) -> None:
        return None


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler], *, quiet_errors: bool = False) -> Iterator[str]:
    """Serve ``handler`` until the block ends; yields the server's base URL (``http://127.0.0.1:PORT``).
    ``quiet_errors``: a handler's exception (a client that stopped reading) prints no traceback."""
    server = (_QuietServer if quiet_errors else ThreadingHTTPServer)(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
