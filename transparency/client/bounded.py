"""Answers read within a bound: what a client of a log, a witness or a peer reads of an answer it did not choose.

A malicious or broken server can answer with a body that never ends, one far larger than any real answer, or a
small compressed body that inflates to gigabytes. ``BoundedTransport`` wraps the client's transport so that no
answer is held past ``max_bytes``:

- it asks for no content coding (``Accept-Encoding: identity``) and refuses an answer that comes in one anyway
  (``AnswerEncodingRefused``): a compressed answer is never inflated, so the bound on the bytes received is the
  bound on the bytes kept;
- it refuses an answer whose ``Content-Length`` exceeds the bound before reading it, and stops reading any other
  once the bound is passed (``AnswerTooLarge``), closing the connection.

Both errors are ``LogUnreachable``: a caller that retries an unreachable log (the follower) or reports it (the
monitor) does the same for a server that answers too much. The bound is per answer; the clients default to
``MAX_ANSWER_BYTES`` (64 MiB, many times any checkpoint, proof or receipt; a follower page larger than that, of
large statements, is asked for again at half the limit by ``HttpLogClient.entries``, down to one entry), and the
tile client to ``MAX_BUNDLE_BYTES`` (a statement bundle of 256 entries of the log's default 1 MiB bound; a log
that allows larger statements is followed through its HTTP reads, or with ``max_answer_bytes`` raised).

A server can also hold a client by answering slowly: one byte every few seconds keeps each read within httpx's
per-read timeout, for ever. So every answer also has a total deadline, ``deadline_s``: the time from sending the
request to the last byte of the body (connecting, sending, waiting for the status line and headers, reading the
body). Past it the answer is given up and the connection closed (``AnswerTooSlow``, ``answer-too-slow``, a
``LogUnreachable`` too: followers retry). The default transport enforces it at every socket operation: each
connect, send and read waits at most the time left (an httpcore network backend whose timeouts are capped by
the deadline of the answer in progress), so a drip of the headers is cut off as surely as one of the body; an
``inner`` transport of the caller's own is checked when the headers arrive and at every chunk of the body.

What the deadline must allow: the clients default to ``ANSWER_DEADLINE_S`` (120 s). A long poll
(``GET /checkpoint?wait=W``, at most 30 s) is given W seconds more (the ``answer_deadline_s`` request
extension). A follower's page is bounded at 64 MiB, which 120 s reads at 0.55 MiB/s; a page that is not read in
time is asked for again at half the limit, as one too large is (``HttpLogClient.entries``), so a slow link
still follows a log, one entry a page at worst (a statement of the log's default 1 MiB bound in 120 s is
9 KiB/s). The tile client reads statement bundles of up to ``MAX_BUNDLE_BYTES`` (300 MiB) in one answer, so its
default is ``BUNDLE_DEADLINE_S`` (600 s: 0.5 MiB/s). Every client takes ``answer_deadline_s`` to change it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any, Final

import httpcore
import httpx

from schemas.errors import AnswerEncodingRefused, AnswerTooLarge, AnswerTooSlow

MAX_ANSWER_BYTES: Final = 64 * 1024 * 1024
MAX_BUNDLE_BYTES: Final = 300 * 1024 * 1024
ANSWER_DEADLINE_S: Final = 120.0
BUNDLE_DEADLINE_S: Final = 600.0
DEADLINE_EXTENSION: Final = "answer_deadline_s"  # a request extension: this request's own deadline, in seconds


class _Deadline:
    """When the answer in progress must be complete; ``cut`` once a socket wait was shortened to meet it (a timeout
    after that is the deadline's, not the per-read timeout's)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.cut = False

    def passed(self) -> bool:
        return time.monotonic() >= self.at

    def cap(self, timeout: float | None) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            self.cut = True
            raise httpcore.ReadTimeout(f"the answer's deadline of {self.seconds:g} s passed")
        if timeout is None or left < timeout:
            self.cut = True
            return left
        return timeout


_CURRENT: ContextVar[_Deadline | None] = ContextVar("tabellion_answer_deadline", default=None)


def _cap(timeout: float | None) -> float | None:
    deadline = _CURRENT.get()
    return timeout if deadline is None else deadline.cap(timeout)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every wait is capped by the deadline of the answer in progress (if any)."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _cap(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _cap(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, _cap(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's own synchronous sockets, their waits capped by ``_DeadlineStream``."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.connect_tcp(host, port, _cap(timeout), local_address, socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.connect_unix_socket(path, _cap(timeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def deadline_transport() -> httpx.HTTPTransport:
    """httpx's own transport (TLS verified as httpx does), over sockets whose waits the answer's deadline caps.

    httpx has no public hook for httpcore's network backend, so the connection pool it builds is replaced by the
    same pool over ``_DeadlineBackend`` (the limits are httpx's defaults); the slow-drip tests fail if httpx ever
    stops reading ``_pool``."""
    transport = httpx.HTTPTransport()
    limits = httpx.Limits()
    transport._pool = httpcore.ConnectionPool(  # noqa: SLF001 - see above
        ssl_context=httpx.create_ssl_context(), max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections, keepalive_expiry=limits.keepalive_expiry,
        network_backend=_DeadlineBackend())
    return transport


def _too_slow(url: str, deadline: _Deadline) -> AnswerTooSlow:
    return AnswerTooSlow(f"{url} did not complete its answer within {deadline.seconds:g} s; the rest is not read")


class _BoundedStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, max_bytes: int, url: str, deadline: _Deadline) -> None:
        self._inner, self._max_bytes, self._url, self._deadline = inner, max_bytes, url, deadline

    def __iter__(self) -> Iterator[bytes]:
        received = 0
        chunks = iter(self._inner)
        while True:
            token = _CURRENT.set(self._deadline)  # reset before each yield: the caller's context is not ours
            try:
                chunk = next(chunks, None)
            except httpx.TimeoutException as exc:
                self._inner.close()
                if self._deadline.cut or self._deadline.passed():
                    raise _too_slow(self._url, self._deadline) from exc
                raise
            finally:
                _CURRENT.reset(token)
            if chunk is None:
                return
            received += len(chunk)
            if received > self._max_bytes:
                self._inner.close()
                raise AnswerTooLarge(f"{self._url} answered more than {self._max_bytes} bytes; the rest is not read")
            if self._deadline.passed():
                self._inner.close()
                raise _too_slow(self._url, self._deadline)
            yield chunk

    def close(self) -> None:
        self._inner.close()


class BoundedTransport(httpx.BaseTransport):
    """``inner`` (``deadline_transport()`` by default), with every answer bounded to ``max_bytes`` and to
    ``deadline_s`` seconds (a request's ``answer_deadline_s`` extension, if given, instead)."""

    def __init__(self, inner: httpx.BaseTransport | None = None, *, max_bytes: int = MAX_ANSWER_BYTES,
                 deadline_s: float = ANSWER_DEADLINE_S) -> None:
        if not 0 < deadline_s < float("inf"):
            raise ValueError(f"the answer deadline {deadline_s} must be positive and finite")
        self._inner = inner or deadline_transport()
        self.max_bytes = max_bytes
        self.deadline_s = deadline_s

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.headers["Accept-Encoding"] = "identity"
        url = f"{request.method} {request.url}"[:300]
        deadline = _Deadline(float(request.extensions.get(DEADLINE_EXTENSION, self.deadline_s)))
        token = _CURRENT.set(deadline)
        try:
            answer = self._inner.handle_request(request)
        except httpx.TimeoutException as exc:
            if deadline.cut or deadline.passed():
                raise _too_slow(url, deadline) from exc
            raise
        finally:
            _CURRENT.reset(token)
        if deadline.passed():
            answer.close()
            raise _too_slow(url, deadline)
        codings = [v.strip().lower() for v in answer.headers.get_list("content-encoding", split_commas=True)]
        if any(coding not in ("", "identity") for coding in codings):
            answer.close()
            raise AnswerEncodingRefused(f"{url} answered in the content coding {', '.join(codings)[:60]!r}, "
                                        "not identity as asked")
        declared = answer.headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > self.max_bytes:
            answer.close()
            raise AnswerTooLarge(f"{url} announced {declared[:20]} bytes, more than the {self.max_bytes} read")
        if not isinstance(answer.stream, httpx.SyncByteStream):
            answer.close()
            raise TypeError("BoundedTransport wraps synchronous transports only")
        return httpx.Response(answer.status_code, headers=answer.headers,
                              stream=_BoundedStream(answer.stream, self.max_bytes, url, deadline),
                              extensions=answer.extensions, request=request)

    def close(self) -> None:
        self._inner.close()


def bounded_request(method: str, url: str, *, timeout: float, max_bytes: int = MAX_ANSWER_BYTES,
                    deadline_s: float = ANSWER_DEADLINE_S, **kwargs: Any) -> httpx.Response:
    """One request, its answer read within ``max_bytes`` and ``deadline_s`` (for the one-off requests of the CLI and
    the monitor); ``httpx.HTTPError`` as httpx raises it, ``AnswerTooLarge``, ``AnswerTooSlow`` and
    ``AnswerEncodingRefused`` as above."""
    transport = BoundedTransport(max_bytes=max_bytes, deadline_s=deadline_s)
    with httpx.Client(timeout=timeout, transport=transport) as client:
        return client.request(method, url, **kwargs)


__all__ = [
    "ANSWER_DEADLINE_S", "BUNDLE_DEADLINE_S", "DEADLINE_EXTENSION", "MAX_ANSWER_BYTES", "MAX_BUNDLE_BYTES",
    "BoundedTransport", "bounded_request", "deadline_transport",
]
