"""Operations endpoints of the transparency service, for orchestrators and Prometheus:

    GET /healthz   200 {"status": "ok"}: the process answers (liveness)
    GET /readyz    200 {"status": "ready", "tree_size": n}: the log is open, its latest signed head reads and the
                   sequencer thread is integrating; else 503 ``log-not-ready`` (problem+json)
    GET /metrics   Prometheus text exposition (``prometheus-client``), from a registry of this app's own:

    tabellion_log_registrations_total{outcome="accepted|refused",code}   counter: POST /entries answers
    tabellion_log_registration_duration_seconds{outcome}                 histogram: from arrival to answer
    tabellion_log_tree_size                          gauge: entries in the latest signed tree head
    tabellion_log_tree_head_age_seconds              gauge: seconds since that head was signed
    tabellion_log_sequencer_queue_depth              gauge: statements waiting to be integrated
    tabellion_log_sequencer_running                  gauge: 1 while the integration thread runs

Who may read them: anyone who reaches the service (they reveal nothing the public log does not: sizes and
counts). Labels carry error codes only, never a signer or a subject.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Final

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from schemas.errors import TabellionError
from transparency.service import TransparencyService

Endpoint = Callable[[Request], Awaitable[Response]]
BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class LogNotReady(TabellionError):
    code = "log-not-ready"
    title = "The log is not ready"


class _LogState(Collector):
    """Gauges read from the running service at scrape time (none before the lifespan opened it)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        service: TransparencyService | None = getattr(self.app.state, "service", None)
        if service is None:
            return
        head = service.latest_head()
        yield GaugeMetricFamily("tabellion_log_tree_size", "Entries in the latest signed tree head.",
                                value=head.tree_size)
        yield GaugeMetricFamily("tabellion_log_tree_head_age_seconds", "Seconds since the latest tree head was signed.",
                                value=max(0.0, time.time() - head.timestamp))
        yield GaugeMetricFamily("tabellion_log_sequencer_queue_depth", "Statements waiting to be integrated.",
                                value=service.sequencer.queue_depth)
        yield GaugeMetricFamily("tabellion_log_sequencer_running", "1 while the sequencer's integration thread runs.",
                                value=1.0 if service.sequencer.running else 0.0)


class LogMetrics:
    """The metrics of one app (a registry of its own, so that several apps in one process do not collide)."""

    def __init__(self, app: Starlette) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.registrations = Counter("tabellion_log_registrations_total",
                                     "Answers to POST /entries, by outcome and code (ok or the refusal's code).",
                                     ["outcome", "code"], registry=self.registry)
        self.duration = Histogram("tabellion_log_registration_duration_seconds",
                                  "Seconds from a registration's arrival to its answer.", ["outcome"],
                                  buckets=BUCKETS, registry=self.registry)
        self.registry.register(_LogState(app))
        # the accepted series, looked up once (``labels`` takes a lock and builds a key at every call)
        self.accepted = self.registrations.labels("accepted", "ok")
        self.accepted_duration = self.duration.labels("accepted")

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def counted(endpoint: Endpoint) -> Endpoint:
    """``endpoint`` (``POST /entries``), counted and timed in ``request.app.state.metrics``."""

    async def timed(request: Request) -> Response:
        metrics: LogMetrics = request.app.state.metrics
        started = time.perf_counter()
        try:
            response = await endpoint(request)
        except TabellionError as exc:
            metrics.registrations.labels("refused", exc.code).inc()
            metrics.duration.labels("refused").observe(time.perf_counter() - started)
            raise
        metrics.accepted.inc()
        metrics.accepted_duration.observe(time.perf_counter() - started)
        return response

    return timed


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})


async def readyz(request: Request) -> Response:
    service: TransparencyService | None = getattr(request.app.state, "service", None)
    if service is None:
        raise LogNotReady("the log is not open yet")
    if not service.sequencer.running:
        raise LogNotReady("the sequencer is not integrating: registrations would not be logged")
    head = service.latest_head()
    return JSONResponse({"status": "ready", "tree_size": head.tree_size}, headers={"Cache-Control": "no-store"})


async def metrics(request: Request) -> Response:
    exposition: LogMetrics = request.app.state.metrics
    return Response(exposition.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})


ROUTES = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
