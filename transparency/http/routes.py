"""HTTP routes of the transparency service: SCRAPI (draft -11) registration and log reads."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from schemas import cbor, media_types
from schemas.base64url import b64url_decode
from schemas.errors import (
    InvalidParameter,
)
from schemas.leaf import entry_id, parse_entry_id
from schemas.tiles import parse_entries_path, parse_statements_path, parse_tile_path
from transparency.http.operations import counted
from transparency.http.ratelimit import RateLimiter
from transparency.log.resources import encode_entries
from transparency.request_bodies import read_limited_body, require_content_type
from transparency.request_params import query_int
from transparency.service import TransparencyService
from transparency.tpm.ceremony import EnrolmentCeremony
from transparency.tpm.errors import EnrolmentRequestInvalid
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
    service = _service(request)
    receipt = await service.read(service.receipt, leaf)
    if receipt is None:
        return Response(b"", 204, {"Retry-After": RETRY_AFTER_PENDING})
    return Response(receipt, 200, {"Cache-Control": IMMUTABLE}, media_types.COSE)


async def get_statement(request: Request) -> Response:
    leaf = parse_entry_id(request.path_params["entry_id"])
    service = _service(request)
    statement = await service.read(service.statement, leaf)
    if statement is None:
        return Response(b"", 204, {"Retry-After": RETRY_AFTER_PENDING})
    return Response(statement, 200, {"Cache-Control": IMMUTABLE}, media_types.COSE)


async def list_entries(request: Request) -> Response:
    service = _service(request)
    start, limit = query_int(request, "start", 0), query_int(request, "limit", 100, low=1)
    page = await service.read_pages(lambda: encode_entries(service.entries(start, limit)))
    return Response(page, 200, media_type=media_types.CBOR)


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
        wait = min(query_int(request, "wait", 10), MAX_CHECKPOINT_WAIT_S)
        return Response(await service.checkpoint_after(query_int(request, "after"), wait), 200,
                        {"Cache-Control": "no-cache"}, media_types.CHECKPOINT)
    return Response(service.checkpoint(), 200, {"Cache-Control": "no-cache"}, media_types.CHECKPOINT)


async def get_witnessed_checkpoint(request: Request) -> Response:
    """The newest checkpoint cosigned by the quorum of the log's witness policy (404 ``checkpoint-not-witnessed``
    when there is none); ``?after=N&wait=S`` as for ``/checkpoint``."""
    service = _service(request)
    if "after" in request.query_params:
        wait = min(query_int(request, "wait", 10), MAX_CHECKPOINT_WAIT_S)
        text = await service.witnessed_checkpoint_after(query_int(request, "after"), wait)
    else:
        text = service.witnessed_checkpoint()
    return Response(text, 200, {"Cache-Control": "no-cache"}, media_types.CHECKPOINT)


async def get_vkey(request: Request) -> Response:
    service = _service(request)
    vkey = service.key.note_key(service.settings.origin).encode()
    return Response(vkey + "\n", 200, media_type=media_types.CHECKPOINT)


async def get_consistency(request: Request) -> Response:
    service = _service(request)
    old, new = query_int(request, "old"), query_int(request, "new")
    proof = await service.read(lambda: service.consistency(old, new).encode())
    return Response(proof, 200, {"Cache-Control": IMMUTABLE}, media_types.CBOR)


async def get_tile(request: Request) -> Response:
    service = _service(request)
    path = "tile/" + request.path_params["path"]
    if path.startswith("tile/entries/"):
        data = await service.read(service.entry_bundle, *parse_entries_path(path))
    else:
        data = await service.read(service.tile, *parse_tile_path(path))
    cache = IMMUTABLE if ".p/" not in path else "public, max-age=60"
    return Response(data, 200, {"Cache-Control": cache}, media_types.TILE)


async def get_statement_bundle(request: Request) -> Response:
    """Statement bundle (``schemas.tiles``): the logged statements of up to 256 entries with their receipts (a
    page of entries: read in the page thread)."""
    service = _service(request)
    index, width = parse_statements_path("statements/" + request.path_params["path"])
    data = await service.read_pages(service.statement_bundle, index, width)
    cache = IMMUTABLE if ".p/" not in request.path_params["path"] else "public, max-age=60"
    return Response(data, 200, {"Cache-Control": cache}, media_types.CBOR)


MAX_ENROLMENT_BYTES = 64 * 1024


async def _enrolment_body(request: Request) -> dict[str, Any]:
    limiter: RateLimiter = request.app.state.limiter
    limiter.take(request.client.host if request.client else "unknown")
    require_content_type(request, "application/json")
    body = await read_limited_body(request, MAX_ENROLMENT_BYTES)
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise EnrolmentRequestInvalid(f"the body is not JSON: {str(exc)[:200]}") from exc
    if not isinstance(value, dict):
        raise EnrolmentRequestInvalid("the body is not a JSON object")
    return value


async def enrol_start(request: Request) -> Response:
    """``POST /v1/enrol/start``: a single-use token, a nonce and a credential for the agent's EK and AK."""
    ceremony: EnrolmentCeremony = request.app.state.enrolment
    return JSONResponse(ceremony.start(await _enrolment_body(request)), 201, {"Cache-Control": "no-store"})


async def enrol_submit(request: Request) -> Response:
    """``POST /v1/enrol/submit``: the six gates; 201 with the logged agent-enrolment, or the gate's problem."""
    ceremony: EnrolmentCeremony = request.app.state.enrolment
    status, answer = await ceremony.submit(await _enrolment_body(request))
    return JSONResponse(answer, status, {"Location": f"/entries/{answer['entry']}"})


ROUTES = [
    Route("/entries", counted(register_statement), methods=["POST"]),
    Route("/entries", list_entries, methods=["GET"]),
    Route("/entries/{entry_id}", get_receipt, methods=["GET"]),
    Route("/entries/{entry_id}/statement", get_statement, methods=["GET"]),
    Route("/.well-known/scitt-keys", get_keys, methods=["GET"]),
    Route("/.well-known/scitt-keys/{kid}", get_key, methods=["GET"]),
    Route("/checkpoint", get_checkpoint, methods=["GET"]),
    Route("/checkpoint/witnessed", get_witnessed_checkpoint, methods=["GET"]),
    Route("/log/vkey", get_vkey, methods=["GET"]),
    Route("/proofs/consistency", get_consistency, methods=["GET"]),
    Route("/tile/{path:path}", get_tile, methods=["GET"]),
    Route("/statements/{path:path}", get_statement_bundle, methods=["GET"]),
    Route("/v1/enrol/start", enrol_start, methods=["POST"]),
    Route("/v1/enrol/submit", enrol_submit, methods=["POST"]),
]
