"""HTTP routes of the transparency service: SCRAPI (draft -11) registration and log reads."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from schemas import cbor, media_types
from schemas.base64url import b64url_decode
from schemas.errors import (
    InvalidParameter,
    NotFound,
)
from schemas.leaf import entry_id, parse_entry_id
from schemas.tiles import parse_entries_path, parse_tile_path
from transparency.http.operations import counted
from transparency.http.ratelimit import RateLimiter
from transparency.request_bodies import read_limited_body, require_content_type
from transparency.service import TransparencyService, encode_entries
from verifier.keys import cose_key

IMMUTABLE = "public, max-age=31536000, immutable"
RETRY_AFTER_PENDING = "1"


MAX_CHECKPOINT_WAIT_S = 30


def _service(request: Request) -> TransparencyService:
    service: TransparencyService = request.app.state.service
    return service


async def register_statement(request: Request) -> Response:
    service = _service(request)
    limiter: RateLimiter = request.app.state.limiter
    limiter.take(request.client.host if request.client else "unknown")
    require_content_type(request, media_types.COSE)
    body = await read_limited_body(request, service.settings.max_body_bytes)
    outcome = await service.register(body)
    location = f"/entries/{entry_id(outcome.leaf_data)}"
    if outcome.receipt is None:
        return Response(b"", 202, {"Location": location, "Retry-After": RETRY_AFTER_PENDING})
    return Response(outcome.receipt, 201, {"Location": location}, media_types.COSE)


async def get_receipt(request: Request) -> Response:
    leaf = parse_entry_id(request.path_params["entry_id"])
    receipt = _service(request).receipt(leaf)
    if receipt is None:
        return Response(b"", 204, {"Retry-After": RETRY_AFTER_PENDING})
    return Response(receipt, 200, {"Cache-Control": IMMUTABLE}, media_types.COSE)


async def get_statement(request: Request) -> Response:
    leaf = parse_entry_id(request.path_params["entry_id"])
    statement = _service(request).statement(leaf)
    if statement is None:
        return Response(b"", 204, {"Retry-After": RETRY_AFTER_PENDING})
    return Response(statement, 200, {"Cache-Control": IMMUTABLE}, media_types.COSE)


def _int_param(request: Request, name: str, default: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        if default is None:
            raise InvalidParameter(f"query parameter {name!r} is required")
        return default
    if not raw.isdigit() or len(raw) > 19:
        raise InvalidParameter(f"query parameter {name}={raw[:30]!r} is not a non-negative integer")
    return int(raw)


async def list_entries(request: Request) -> Response:
    service = _service(request)
    page = service.entries(_int_param(request, "start", 0), _int_param(request, "limit", 100))
    return Response(encode_entries(page), 200, media_type=media_types.CBOR)


async def get_keys(request: Request) -> Response:
    return Response(_service(request).key_set_cbor, 200, media_type=media_types.COSE_KEY_SET)


async def get_key(request: Request) -> Response:
    text = request.path_params["kid"]
    kid = b64url_decode(text, f"kid {text[:60]!r}", InvalidParameter)
    key = _service(request).key_set.get(kid)
    return Response(cbor.encode(cose_key(key, kid)), 200, media_type="application/cose-key")


async def get_checkpoint(request: Request) -> Response:
    """The latest checkpoint; with ``?after=N&wait=S`` a long poll: answered as soon as the tree is larger
    than N, or after S seconds (at most 30) with the checkpoint as it is then."""
    service = _service(request)
    if "after" in request.query_params:
        wait = min(_int_param(request, "wait", 10), MAX_CHECKPOINT_WAIT_S)
        return Response(await service.checkpoint_after(_int_param(request, "after"), wait), 200,
                        {"Cache-Control": "no-cache"}, media_types.CHECKPOINT)
    return Response(service.checkpoint(), 200, {"Cache-Control": "no-cache"}, media_types.CHECKPOINT)


async def get_vkey(request: Request) -> Response:
    service = _service(request)
    vkey = service.key.note_key(service.settings.origin).encode()
    return Response(vkey + "\n", 200, media_type=media_types.CHECKPOINT)


async def get_consistency(request: Request) -> Response:
    proof = _service(request).consistency(_int_param(request, "old"), _int_param(request, "new"))
    return Response(proof.encode(), 200, {"Cache-Control": IMMUTABLE}, media_types.CBOR)


async def get_tile(request: Request) -> Response:
    service = _service(request)
    path = "tile/" + request.path_params["path"]
    if path.startswith("tile/entries/"):
        data = service.entry_bundle(*parse_entries_path(path))
    else:
        data = service.tile(*parse_tile_path(path))
    cache = IMMUTABLE if ".p/" not in path else "public, max-age=60"
    return Response(data, 200, {"Cache-Control": cache}, media_types.TILE)


async def not_found(request: Request) -> Response:
    raise NotFound(f"no resource at {request.url.path}")


ROUTES = [
    Route("/entries", counted(register_statement), methods=["POST"]),
    Route("/entries", list_entries, methods=["GET"]),
    Route("/entries/{entry_id}", get_receipt, methods=["GET"]),
    Route("/entries/{entry_id}/statement", get_statement, methods=["GET"]),
    Route("/.well-known/scitt-keys", get_keys, methods=["GET"]),
    Route("/.well-known/scitt-keys/{kid}", get_key, methods=["GET"]),
    Route("/checkpoint", get_checkpoint, methods=["GET"]),
    Route("/log/vkey", get_vkey, methods=["GET"]),
    Route("/proofs/consistency", get_consistency, methods=["GET"]),
    Route("/tile/{path:path}", get_tile, methods=["GET"]),
]
