"""The gateway's Starlette application: ``create_app(config, secrets)``.

Routes (all listed in ``create_app``):

    GET  /healthz                            200 {"status": "ok", "log": {origin, size, root, age_s}} while the
                                             gateway can decide; 503 problem (log-not-ready, log-untrusted,
                                             log-stale, log-unwitnessed) otherwise
    ANY  /proxy/{connection_id}/{path...}    a signed agent request: decided (``gateway.decisions``), then
                                             forwarded upstream (``gateway.proxy``), or refused with a problem;
                                             on an MCP connection, one JSON-RPC message (``gateway.mcp``)
    GET  /metrics                            Prometheus text exposition (``gateway.metrics``)

Every refusal is an RFC 9457 ``application/problem+json`` answer from the one mapper the services share
(``transparency.problem_details``): ``type`` (``urn:tabellion:error:<code>``), ``title``, ``status``, ``detail``,
``instance`` and, for authority refusals, ``reason_code``. 429s and 503s carry ``Retry-After``.
The follower thread, nonce store, action recorder (``gateway.actions``) and upstream client start in the
lifespan, not at import.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

from aiohttp.abc import AbstractResolver
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from schemas.errors import InvalidParameter
from transparency.client.http import HttpLogClient
from transparency.problem_details import ProblemHandlers
from transparency.request_bodies import BodyReadDeadline, read_limited_body

from . import signatures
from .actions import ActionRecorder, gateway_key_path, load_or_create_gateway_key
from .config import GatewayConfig
from .decisions import (
    DecisionSink,
    Gatekeeper,
    StateSource,
    forwarded_path,
    resource_of,
    split_proxy_path,
    target_uri,
)
from .mcp import McpRelay
from .metrics import DecisionCounter, GatewayMetrics, measured, metrics_endpoint
from .policies import compile_policies
from .proxy import InjectedHeaders, UpstreamProxy, check_framing, credential_headers
from .ratelimit import RateLimiter
from .replay import NonceStore
from .secrets import Secret
from .shared import BUCKETS_FILE, SharedBuckets, SharedLogView
from .state import FollowedLog, LogPosition
from .trust import LogTrust
from .upstream import UpstreamClient

log = logging.getLogger(__name__)

PROXY_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class FollowedState(StateSource, Protocol):
    """The followed log as the app reads it (``gateway.state.FollowedLog``)."""

    def position(self) -> LogPosition: ...


@dataclass
class Gateway:
    """What the routes use, made in the lifespan."""

    config: GatewayConfig
    log: FollowedState
    gatekeeper: Gatekeeper
    proxy: UpstreamProxy


# --- problems -----------------------------------------------------------------------------------------

PROBLEMS = ProblemHandlers("the gateway failed unexpectedly; nothing was forwarded")  # transparency.problem_details


# --- routes -------------------------------------------------------------------------------------------


async def healthz(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    position = gateway.log.position()
    return JSONResponse({"status": "ok", "log": {
        "origin": position.origin, "size": position.size, "root": position.root_hash.hex(),
        "age_s": round(position.age, 3),
    }})


async def proxy(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    raw_path = _raw_path(request)
    connection_id, rest = split_proxy_path(raw_path)
    connection = gateway.config.connection(connection_id)
    resource = resource_of(rest)
    query = request.scope.get("query_string", b"").decode("latin-1")
    headers = tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw)
    check_framing(headers)
    body = await read_limited_body(request, gateway.config.max_body_bytes)
    signed = signatures.Request(
        request.method,
        target_uri(request.url.scheme, request.headers.get("host"), raw_path, query, gateway.config.public_url),
        headers, body,
    )
    if connection.kind == "mcp":  # JSON-RPC, decided per tool, tools/list filtered by scope (gateway.mcp)
        relay = McpRelay(gateway.gatekeeper, gateway.proxy, gateway.log)
        return await relay.answer(connection, signed, rest, query, request.url.path)
    # on the event loop: a decision is CPU work of well under a millisecond (a hop to a thread cost more), and
    # its locks are held only for a fold of an identity statement or one SQLite write
    decision = gateway.gatekeeper.decide(connection, signed, resource)
    upstream = await gateway.proxy.forward(connection, request.method, forwarded_path(resource), query, headers, body,
                                           decision.covered)
    return await gateway.proxy.answer(connection, upstream)


def _raw_path(request: Request) -> str:
    raw = request.scope.get("raw_path")
    if not isinstance(raw, bytes | bytearray):
        raw = request.scope["path"].encode("utf-8")
    raw = bytes(raw).partition(b"?")[0]  # some servers keep the query in raw_path
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise InvalidParameter("the request path must be ASCII (percent-encode anything else)") from exc


# --- the application ----------------------------------------------------------------------------------


def report_trust(trust: LogTrust) -> None:
    record = trust.load()
    events = trust.events()
    if events:
        last = events[-1]
        log.warning("the log's trust was last reset at %s by %s: %s", time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(last.get("at", 0)))), last.get("operator"), last.get("reason"))
    if record.fork is not None:
        log.error("the log was found forked (%s); every request is refused until an operator runs "
                  "'tabellion gateway trust reset --config FILE --reason TEXT'", record.fork.detail)


def create_app(
    config: GatewayConfig,
    secrets: Mapping[str, Secret],
    *,
    followed_log: FollowedState | None = None,
    sink: DecisionSink | None = None,
    resolver: AbstractResolver | None = None,
    worker: bool = False,
) -> Starlette:
    """The gateway app; ``secrets`` are the decrypted provider secrets the connections name. ``followed_log``
    (started here unless given started) and ``resolver`` (upstream host names to local test servers) are for
    tests. A ``worker`` (one of
    ``workers`` processes, ``gateway.server``) decides from the view its supervisor publishes, shares the rate
    buckets (``gateway.shared``), and only queues its action records (the supervisor submits them)."""
    credentials: dict[str, InjectedHeaders] = {c.id: credential_headers(c, secrets) for c in config.connections}
    policies = compile_policies(config.connections)  # a bad policy stops the start, in one line, creating nothing
    buckets = SharedBuckets(config.data_dir / BUCKETS_FILE) if worker else None
    limiter = RateLimiter.for_connections(config.connections, store=buckets)
    metrics = GatewayMetrics(c.id for c in config.connections)
    recording = sink is None and config.action_records.enabled  # gateway.actions; a bad key stops the start
    gateway_key = load_or_create_gateway_key(gateway_key_path(config)) if recording else None
    trust = LogTrust(config.data_dir, config.log.vkey)  # gateway.trust: a pinned checkpoint, a fork remembered
    if not worker:
        report_trust(trust)  # an unreadable file, or another log's checkpoint, stops the start in one line

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        client: HttpLogClient | None = None
        owned: FollowedLog | None = None
        followed: FollowedState
        if followed_log is not None:
            followed = followed_log
        elif worker:
            followed = SharedLogView(config.data_dir, config.log.max_staleness, policy=config.log.witness_policy,
                                     witness_grace=config.log.witness_grace)
        else:
            client = HttpLogClient(config.log.url, timeout=5.0)
            followed = owned = FollowedLog(client, config.log.vkey, config.log.receipt_keys,
                                           poll_interval=config.log.poll_interval,
                                           long_poll=config.log.long_poll, max_staleness=config.log.max_staleness,
                                           policy=config.log.witness_policy,
                                           witness_grace=config.log.witness_grace, trust=trust,
                                           snapshots=config.data_dir / "state")
            owned.start()
        nonces = NonceStore(config.nonces_path)
        actions: ActionRecorder | None = None
        try:
            if gateway_key is not None:  # gateway.actions: every decision as a signed record on the log
                actions = ActionRecorder.from_config(config, gateway_key)
                if not worker:
                    actions.start()
            async with UpstreamClient(resolver=resolver) as upstream:  # gateway.upstream: one pool, no env proxies
                app.state.metrics = metrics
                app.state.gateway = Gateway(
                    config, followed,
                    Gatekeeper(followed, nonces, max_skew=config.max_skew, max_age=config.max_age,
                               sink=DecisionCounter(sink or actions),
                               log_headers=config.log_headers, policies=policies, limiter=limiter),
                    UpstreamProxy(upstream, credentials),
                )
                yield
        finally:
            if actions is not None:
                actions.close()
            if owned is not None:
                owned.stop()
            if client is not None:
                client.close()
            nonces.close()

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/proxy/{connection_id}", measured(proxy), methods=list(PROXY_METHODS)),
        Route("/proxy/{connection_id}/{rest:path}", measured(proxy), methods=list(PROXY_METHODS)),
    ]
    return Starlette(
        routes=routes,
        exception_handlers=PROBLEMS.handlers(),
        middleware=[Middleware(BodyReadDeadline, timeout_s=config.body_read_timeout)],  # a stalled body: 408
        lifespan=lifespan,
    )
