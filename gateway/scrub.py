"""Scrubbing the injected credentials from upstream answers.

The gateway adds a connection's secrets to the requests it forwards; an upstream that echoes its request (a
debugging endpoint, an error page quoting the headers) would otherwise hand them to the agent, which must never
hold them. Every answer on a connection with credentials is scanned for each secret value in three spellings —
as is, JSON-escaped and percent-encoded — in the response headers and in the body, and each occurrence is
overwritten with as many ``*``: the length stays, so ``Content-Length`` stays right. The body is scanned as it
streams; the last ``len(longest) - 1`` bytes of a chunk wait for the next one, so a secret split across chunks
is found. An answer with a ``Content-Encoding`` is scanned decoded (``gateway.upstream``: gzip, deflate, and br
or zstd when their libraries are installed) and passed back decoded, without ``Content-Encoding`` and
``Content-Length``; an answer in a coding the gateway cannot decode is refused (502
``upstream-answer-unreadable``), never passed back unscanned.

A secret an upstream transforms otherwise (base64, reversed, hashed) is not found: the guard is against echoes,
not against an upstream that means to leak. Connections without credentials are not scanned.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Sequence
from urllib.parse import quote

from .secrets import Secret


class Scrubber:
    """Masks the values of ``secrets`` in answers (see the module docstring)."""

    def __init__(self, secrets: Iterable[Secret]) -> None:
        forms: set[bytes] = set()
        for secret in secrets:
            value = secret.reveal()
            if not value:
                continue
            for form in (value, json.dumps(value, ensure_ascii=True)[1:-1], quote(value, safe="")):
                forms.add(form.encode("utf-8"))
        self.forms: tuple[bytes, ...] = tuple(sorted(forms, key=len, reverse=True))
        self.keep = max((len(f) for f in self.forms), default=1) - 1

    @property
    def active(self) -> bool:
        return bool(self.forms)

    def mask(self, data: bytes) -> bytes:
        for form in self.forms:
            if form in data:
                data = data.replace(form, b"*" * len(form))
        return data

    def headers(self, headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        if not self.forms:
            return list(headers)
        return [(k, self.mask(v.encode("latin-1")).decode("latin-1")) for k, v in headers]

    async def stream(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        if not self.forms:
            async for chunk in chunks:
                yield chunk
            return
        tail = b""
        async for chunk in chunks:
            buffer = self.mask(tail + chunk)
            if len(buffer) > self.keep:
                cut = len(buffer) - self.keep
                yield buffer[:cut]
                tail = buffer[cut:]
            else:
                tail = buffer
        if tail:
            yield tail
