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
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import httpx

from schemas.errors import AnswerEncodingRefused, AnswerTooLarge

MAX_ANSWER_BYTES: Final = 64 * 1024 * 1024
MAX_BUNDLE_BYTES: Final = 300 * 1024 * 1024


class _BoundedStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, max_bytes: int, url: str) -> None:
        self._inner, self._max_bytes, self._url = inner, max_bytes, url

    def __iter__(self) -> Iterator[bytes]:
        received = 0
        for chunk in self._inner:
            received += len(chunk)
            if received > self._max_bytes:
                self._inner.close()
                raise AnswerTooLarge(f"{self._url} answered more than {self._max_bytes} bytes; the rest is not read")
            yield chunk

    def close(self) -> None:
        self._inner.close()


class BoundedTransport(httpx.BaseTransport):
    """``inner`` (a plain ``httpx.HTTPTransport`` by default), with every answer bounded to ``max_bytes``."""

    def __init__(self, inner: httpx.BaseTransport | None = None, *, max_bytes: int = MAX_ANSWER_BYTES) -> None:
        self._inner = inner or httpx.HTTPTransport()
        self.max_bytes = max_bytes

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.headers["Accept-Encoding"] = "identity"
        answer = self._inner.handle_request(request)
        url = f"{request.method} {request.url}"[:300]
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
                              stream=_BoundedStream(answer.stream, self.max_bytes, url),
                              extensions=answer.extensions, request=request)

    def close(self) -> None:
        self._inner.close()


def bounded_request(method: str, url: str, *, timeout: float, max_bytes: int = MAX_ANSWER_BYTES,
                    **kwargs: Any) -> httpx.Response:
    """One request, its answer read within ``max_bytes`` (for the one-off requests of the CLI and the monitor);
    ``httpx.HTTPError`` as httpx raises it, ``AnswerTooLarge`` and ``AnswerEncodingRefused`` as above."""
    with httpx.Client(timeout=timeout, transport=BoundedTransport(max_bytes=max_bytes)) as client:
        return client.request(method, url, **kwargs)


__all__ = ["MAX_ANSWER_BYTES", "MAX_BUNDLE_BYTES", "BoundedTransport", "bounded_request"]
