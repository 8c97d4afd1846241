"""The witness over HTTP (C2SP tlog-witness), and its server: ``tabellion witness --config FILE``.

    POST /add-checkpoint                 submission: old size, consistency proof, checkpoint -> cosignature
    GET  /<origin hash>/checkpoint       monitoring: the latest cosigned checkpoint of a log (hex SHA-256 of its
                                         origin), with the log's signatures and the witness's cosignature

The submission and monitoring prefixes are both the server's root. Refusals are RFC 9457 problems with a stable
code (``witness.errors``) from the services' one mapper (``transparency.problem_details``), except the 409 of
``add-checkpoint``, whose body the specification fixes: the witness's size in decimal, ``text/x.tlog.size``.
Anyone may call ``add-checkpoint`` (tlog-witness has no other authentication): only a checkpoint signed by a log
key in the configuration can change what the witness stores.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypercorn.config import Config
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from schemas import media_types
from schemas.errors import NotFound, TabellionError
from schemas.witness import TLOG_SIZE, encode_cosignatures, encode_size
from transparency.client.signing import load_ed25519_key, save_private_key
from transparency.problem_details import ProblemHandlers
from transparency.request_bodies import read_limited_body
from transparency.serving import serve_until_stopped
from witness.config import WitnessConfig
from witness.cosigner import Cosigner
from witness.errors import MethodNotAllowed, OldSizeConflict
from witness.service import Witness
from witness.store import WitnessStore

log = logging.getLogger(__name__)


def load_or_create_cosigner(config: WitnessConfig) -> Cosigner:
    """The witness's key from ``key_file``, created (0600, atomically) when there is none."""
    if not config.key_file.exists():
        config.key_file.parent.mkdir(parents=True, exist_ok=True)
        save_private_key(Ed25519PrivateKey.generate(), config.key_file)
    return Cosigner(config.name, load_ed25519_key(config.key_file, "witness key"))


def _witness(request: Request) -> Witness:
    witness: Witness = request.app.state.witness
    return witness


async def add_checkpoint(request: Request) -> Response:
    witness = _witness(request)
    body = await read_limited_body(request, witness.config.max_body_bytes)
    cosignatures = await run_in_threadpool(witness.add_checkpoint, body)  # fsyncs: off the event loop
    return Response(encode_cosignatures(cosignatures), 200, media_type=media_types.CHECKPOINT)


async def get_checkpoint(request: Request) -> Response:
    text = _witness(request).checkpoint(request.path_params["origin_hash"])
    return Response(text, 200, {"Cache-Control": "no-cache"}, media_types.CHECKPOINT)


PROBLEMS = ProblemHandlers("the witness failed unexpectedly; nothing was cosigned")  # transparency.problem_details


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 and 405 (no route, wrong method), as problems like every other refusal."""
    status = getattr(exc, "status_code", 404)
    if status == 405:
        return PROBLEMS.respond(request, MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}"))
    return PROBLEMS.respond(request, NotFound(f"no resource at {request.url.path}"))


async def handle_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, OldSizeConflict):
        return Response(encode_size(exc.known_size), 409, {"Content-Type": TLOG_SIZE})  # exactly, no charset
    return await PROBLEMS.tabellion(request, exc)


ROUTES = [
    Route("/add-checkpoint", add_checkpoint, methods=["POST"]),
    Route("/{origin_hash}/checkpoint", get_checkpoint, methods=["GET"]),
]


def create_app(witness: Witness) -> Starlette:
    app = Starlette(routes=ROUTES, exception_handlers={
        TabellionError: handle_error, HTTPException: handle_http_exception, Exception: PROBLEMS.unexpected,
    })
    app.state.witness = witness
    return app


def open_witness(config: WitnessConfig) -> Witness:
    cosigner = load_or_create_cosigner(config)
    return Witness(config, cosigner, WitnessStore(config.db_path))


def serve(config: WitnessConfig, *, opened: Callable[[Witness], None] | None = None) -> None:
    """Open the witness, call ``opened``, then serve until SIGINT/SIGTERM."""
    witness = open_witness(config)
    try:
        if opened is not None:
            opened(witness)
        hc = Config()
        hc.bind = [f"{config.host}:{config.port}"]
        hc.accesslog = None
        hc.errorlog = "-"
        hc.keep_alive_timeout = 30
        app = create_app(witness)

        serve_until_stopped(app, hc)
    finally:
        witness.store.close()
