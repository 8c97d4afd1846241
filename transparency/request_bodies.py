"""Reading request bodies under a size limit: shared by the log's routes and the issuer's (Starlette)."""

from __future__ import annotations

from starlette.requests import Request

from schemas.errors import PayloadTooLarge, UnsupportedMediaType


def require_content_type(request: Request, expected: str) -> None:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != expected:
        raise UnsupportedMediaType(
            f"{request.method} {request.url.path} takes {expected}, not {ctype or 'no content type'!r}"
        )


async def read_limited_body(request: Request, limit: int) -> bytes:
    """Read at most ``limit`` bytes; a declared or actual larger body is refused before any parsing."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
