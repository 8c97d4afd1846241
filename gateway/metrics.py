"""Prometheus metrics at ``GET /metrics``, written by ``prometheus-client`` from a registry of the app's own:

    tabellion_gateway_decisions_total{outcome="allow|refuse",code="ok|<error code>"}        counter
    tabellion_gateway_request_duration_seconds{connection="<id>",outcome="allow|refuse|upstream-error"}
                                                                                           histogram
    tabellion_gateway_checkpoint_size                 gauge: entries of the last verified checkpoint
    tabellion_gateway_checkpoint_age_seconds          gauge: seconds since a checkpoint was last verified
    tabellion_gateway_log_trusted                     gauge: 1, or 0 once the log served an inconsistent
                                                      checkpoint (the gateway refuses everything for good)

``measured`` wraps a request route: one decision counted and one duration observed per request, from its
arrival to the upstream's answer headers (or the refusal). The decision is the gatekeeper's, noted by
``DecisionCounter`` (its ``DecisionSink``); a refusal before the gatekeeper (unknown connection, bad path,
body too large, a malformed MCP message) counts as a ``refuse`` with its code; an upstream failure after an
allow counts as an ``allow`` decision with request outcome ``upstream-error``. Labels carry no agent
identities (they are in the decision log): connection ids are the configured ones, else ``unknown``.

The checkpoint gauges are read from the followed log at scrape time (a collector). While the log is stale the
last seen position's age keeps growing; before the first verified checkpoint the two checkpoint gauges are
``NaN``.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Final, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from schemas.errors import PROBLEM_TYPE_BASE, LogUntrusted, TabellionError

from .decisions import Decision, DecisionSink
from .proxy import PassedBack
from .state import LogPosition

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNKNOWN_CONNECTION: Final = "unknown"
Clock = Callable[[], float]
Endpoint = Callable[[Request], Awaitable[Response]]


class PositionSource(Protocol):
    """The followed log as the metrics read it (``gateway.state.FollowedLog.position``)."""

    def position(self) -> LogPosition: ...


class _LogGauges(Collector):
    """The followed log's gauges, read at scrape time from the source the current scrape names."""

    def __init__(self, metrics: GatewayMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        source = self.metrics.scraping
        if source is None:
            return
        size, age, trusted = self.metrics.log_gauges(source)
        yield GaugeMetricFamily("tabellion_gateway_checkpoint_size",
                                "Entries in the last checkpoint the gateway verified.", value=size)
        yield GaugeMetricFamily("tabellion_gateway_checkpoint_age_seconds",
                                "Seconds since the gateway last verified the log's latest checkpoint.", value=age)
        yield GaugeMetricFamily("tabellion_gateway_log_trusted",
                                "1 while the log is trusted; 0 for good once it served an inconsistent checkpoint.",
                                value=trusted)


class GatewayMetrics:
    """The gateway's counters and histograms, and the exposition of them with the log's gauges."""

    def __init__(self, connections: Iterable[str], *, clock: Clock = time.monotonic) -> None:
        self.connections = frozenset(connections)
        self.clock = clock
        self.registry = CollectorRegistry(auto_describe=True)
        self._decisions = Counter("tabellion_gateway_decisions", "Decisions on agent requests, by outcome and code "
                                  "(ok or the refusal's error code).", ["outcome", "code"], registry=self.registry)
        self._durations = Histogram("tabellion_gateway_request_duration_seconds",
                                    "Seconds from a request's arrival to the upstream's answer headers or the refusal.",
                                    ["connection", "outcome"], buckets=BUCKETS, registry=self.registry)
        self._scrape = threading.Lock()
        self.scraping: PositionSource | None = None
        self.registry.register(_LogGauges(self))
        self._seen: tuple[LogPosition, float] | None = None  # the last position read, and when

    def connection_label(self, connection: str | None) -> str:
        return connection if connection in self.connections else UNKNOWN_CONNECTION

    def observe(self, connection: str | None, outcome: str, code: str, seconds: float) -> None:
        """One request: its decision (``allow``/``refuse`` and code) and its duration by request outcome."""
        decision = "refuse" if outcome == "refuse" else "allow"
        self._decisions.labels(decision, code).inc()
        self._durations.labels(self.connection_label(connection), outcome).observe(seconds)

    def decisions(self, outcome: str, code: str) -> int:
        value = self.registry.get_sample_value("tabellion_gateway_decisions_total", {"outcome": outcome, "code": code})
        return int(value or 0)

    # --- exposition -------------------------------------------------------------------------------------

    def exposition(self, log: PositionSource) -> str:
        with self._scrape:
            self.scraping = log
            try:
                return generate_latest(self.registry).decode("utf-8")
            finally:
                self.scraping = None

    def log_gauges(self, log: PositionSource) -> tuple[float, float, float]:
        """(checkpoint size, checkpoint age, trusted) now; a stale log's age grows from the last position seen."""
        now = self.clock()
        try:
            position = log.position()
        except LogUntrusted:
            trusted = 0.0
        except TabellionError:  # not followed yet, or stale
            trusted = 1.0
        else:
            self._seen = (position, now)
            return float(position.size), position.age, 1.0
        if self._seen is None:
            return math.nan, math.nan, trusted
        position, seen_at = self._seen
        return float(position.size), position.age + (now - seen_at), trusted


# --- the routes -------------------------------------------------------------------------------------------


@dataclass
class _Observation:
    """What one request's handling learnt: the gatekeeper's decision, if it took one."""

    decision: Decision | None = None


_observation: ContextVar[_Observation | None] = ContextVar("tabellion_gateway_observation", default=None)


class DecisionCounter:
    """The gatekeeper's ``DecisionSink``: notes the request's decision for ``measured`` (the context travels
    into the threadpool with the call), then hands it to ``inner`` (the action recorder)."""

    def __init__(self, inner: DecisionSink | None = None) -> None:
        self.inner = inner

    def record(self, decision: Decision) -> None:
        if self.inner is not None:
            self.inner.record(decision)  # may refuse (a record that cannot be stored): then no decision is noted
        observation = _observation.get()
        if observation is not None:
            observation.decision = decision


def measured(endpoint: Endpoint) -> Endpoint:
    """``endpoint`` (a route taking ``{connection_id}``), counted and timed in ``request.app.state.metrics``."""

    async def timed(request: Request) -> Response:
        metrics: GatewayMetrics = request.app.state.metrics
        connection = request.path_params.get("connection_id")
        observation = _Observation()
        token = _observation.set(observation)
        started = time.perf_counter()
        try:
            response = await endpoint(request)
        except Exception as exc:
            metrics.observe(connection, *_raised(observation.decision, exc), time.perf_counter() - started)
            raise
        finally:
            _observation.reset(token)
        metrics.observe(connection, *_answered(observation.decision, response), time.perf_counter() - started)
        return response

    return timed


def _raised(decision: Decision | None, error: Exception) -> tuple[str, str]:
    """(request outcome, decision code) of a request that ended in ``error``."""
    if decision is not None and decision.allowed:
        return "upstream-error", "ok"  # decided and allowed; the upstream (or relaying its answer) failed
    return "refuse", error.code if isinstance(error, TabellionError) else TabellionError.code


def _answered(decision: Decision | None, response: Response) -> tuple[str, str]:
    """(request outcome, decision code) of a request answered with ``response``. A connection kind that answers
    refusals itself (MCP: a JSON-RPC error) does so with a plain response carrying the problem type."""
    streamed = isinstance(response, StreamingResponse | PassedBack)  # the upstream's answer
    if decision is not None:
        if not decision.allowed:
            return "refuse", decision.code
        return ("upstream-error" if response.status_code >= 500 and not streamed else "allow"), "ok"
    if response.status_code >= 400 and not streamed:
        return "refuse", _problem_code(response)
    return "allow", "ok"


def _problem_code(response: Response) -> str:
    """The error code in a problem (``type``) or a JSON-RPC error carrying one (``error.data.type``)."""
    try:
        body = json.loads(bytes(response.body))
    except ValueError:
        return TabellionError.code
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"].get("data")
    kind = body.get("type") if isinstance(body, dict) else None
    return kind.removeprefix(PROBLEM_TYPE_BASE) if isinstance(kind, str) and kind.startswith(PROBLEM_TYPE_BASE) \
        else TabellionError.code


async def metrics_endpoint(request: Request) -> Response:
    """``GET /metrics``."""
    metrics: GatewayMetrics = request.app.state.metrics
    return Response(metrics.exposition(request.app.state.gateway.log), media_type=CONTENT_TYPE)
