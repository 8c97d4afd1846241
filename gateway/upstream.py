"""The gateway's HTTP client to its upstreams: one aiohttp session (a pool of keep-alive connections) for the
process.

Chosen by measurement (``docs/benchmarks.md``, ``tools.bench.gateway_compare plumbing``): the same minimal
pass-through on Hypercorn spends about half the CPU per request with aiohttp (its HTTP parser is compiled) than
with httpx, whose pure-Python pool (httpcore) also slows down as connections are added.

The client sends what the gateway decided and nothing of its own:

- the URL as given, never re-quoted (``yarl.URL(..., encoded=True)``): the path is the decided resource already
  encoded one way (``gateway.decisions.forwarded_path``);
- no header but the ones given and those HTTP/1.1 framing needs (``Host``, ``Content-Length``): no
  ``User-Agent``, ``Accept``, ``Accept-Encoding`` or ``Content-Type`` of its own;
- no cookies: the session keeps none (``DummyCookieJar``), so a cookie an upstream sets in its answer to one
  agent is never sent with another agent's request;
- no redirect followed, no proxy from the environment.

An answer's body is read as it arrives, raw; or, when the caller must read it (to scrub the credentials from it,
``gateway.scrub``, or to filter an MCP ``tools/list``), decoded: one content coding the client can undo (gzip,
deflate; br and zstd when their libraries are installed) is undone, and any other coding, or several stacked, is
refused (``UpstreamAnswerUnreadable``, 502) rather than passed back unread.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Final

import aiohttp
from aiohttp.abc import AbstractResolver
from aiohttp.compression_utils import HAS_BROTLI, HAS_ZSTD
from yarl import URL

from schemas.errors import UpstreamTimeout, UpstreamUnreachable

from .errors import UpstreamAnswerUnreadable

Headers = Sequence[tuple[str, str]]

DECODABLE: Final = frozenset({"gzip", "deflate"} | ({"br"} if HAS_BROTLI else set())
                             | ({"zstd"} if HAS_ZSTD else set()))
"""The content codings the client undoes (aiohttp decodes one coding, not a stack of them)."""
POOL_LIMIT: Final = 256  # connections to all upstreams together


def decoded_coding(headers: Headers) -> bool:
    """Whether an answer with ``headers`` comes decoded when asked so: False with no content coding (or
    ``identity``), True with one the client undoes; raises ``UpstreamAnswerUnreadable`` for anything else."""
    values = [v.strip().lower() for k, v in headers if k.lower() == "content-encoding"]
    if all(v in ("", "identity") for v in values):
        return False
    if len(values) == 1 and values[0] in DECODABLE:
        return True
    shown = ", ".join(values)[:60]
    raise UpstreamAnswerUnreadable(
        f"the upstream answered in the content coding {shown!r}, which the gateway cannot decode to scrub the "
        "connection's credentials from it"
    )


class UpstreamAnswer:
    """An upstream's answer, its body still to be read (``body()``, ``read()``) and released (``aclose()``)."""

    def __init__(self, response: aiohttp.ClientResponse, decoded: bool, what: str) -> None:
        self._response = response
        self.status = response.status
        self.headers: list[tuple[str, str]] = [(k.decode("latin-1"), v.decode("latin-1"))
                                               for k, v in response.raw_headers]
        self.decoded = decoded  # the body comes with its content coding undone
        self._what = what

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    @property
    def content_length(self) -> int | None:
        """The length of the body as sent (before decoding), when the answer declares it."""
        return self._response.content_length

    def header(self, name: str, default: str = "") -> str:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), default)

    async def body(self) -> AsyncIterator[bytes]:
        """The body as it arrives; the connection goes back to the pool at the end."""
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except TimeoutError as exc:
            raise UpstreamTimeout(f"{self._what}: the upstream stopped sending its answer") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnreachable(f"{self._what}: {type(exc).__name__}: {exc}") from exc
        finally:
            self._response.release()

    async def read(self, limit: int) -> bytes | None:
        """The whole body, or None when it is over ``limit`` bytes."""
        chunks, size = [], 0
        async for chunk in self.body():
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        self._response.release()


class UpstreamClient:
    """One aiohttp session for every upstream of the gateway (see the module docstring); use it in ``async with``.
    ``resolver`` maps host names to addresses (tests point an upstream's name at a local server)."""

    def __init__(self, *, resolver: AbstractResolver | None = None, limit: int = POOL_LIMIT) -> None:
        self._resolver = resolver
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    async def __aenter__(self) -> UpstreamClient:
        connector = aiohttp.TCPConnector(limit=self._limit, resolver=self._resolver)
        self._session = aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False, auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        """``seconds`` to connect, and between two reads of the answer (headers and body alike)."""
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            timeout = self._timeouts[seconds] = aiohttp.ClientTimeout(total=None, connect=seconds, sock_read=seconds)
        return timeout

    async def send(self, method: str, url: str, headers: Headers, body: bytes, *, timeout: float, decode: bool,
                   what: str) -> UpstreamAnswer:
        """Send the request; ``decode``: the body is to be read decoded (see the module docstring). ``what`` names
        the connection in errors."""
        if self._session is None:
            raise RuntimeError("the upstream client is not open")
        try:
            response = await self._session.request(
                method, URL(url, encoded=True), headers=list(headers), data=body or None, allow_redirects=False,
                auto_decompress=decode, timeout=self._timeout(timeout),
            )
        except TimeoutError as exc:
            raise UpstreamTimeout(f"{what}: the upstream did not answer in {timeout:g} s") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamUnreachable(f"{what}: {type(exc).__name__}: {exc}") from exc
        answer = UpstreamAnswer(response, False, what)
        if decode:
            try:
                answer.decoded = decoded_coding(answer.headers)
            except UpstreamAnswerUnreadable:
                response.close()
                raise
        return answer
