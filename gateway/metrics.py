"""Prometheus metrics at ``GET /metrics`` (text exposition format 0.0.4, written here: no client library).

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

The checkpoint gauges are read from the followed log at scrape time. While the log is stale the last seen
position's age keeps growing; before the first verified checkpoint the two checkpoint gauges are ``NaN``.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Final, Protocol

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from schemas.errors import PROBLEM_TYPE_BASE, LogUntrusted, TabellionError

from .decisions import Decision, DecisionSink
from .state import LogPosition

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNKNOWN_CONNECTION: Final = "unknown"
Clock = Callable[[], float]
Endpoint = Callable[[Request], Awaitable[Response]]


class PositionSource(Protocol):
    """The followed log as the metrics read it (``gateway.state.FollowedLog.position``)."""

    def position(self) -> LogPosition: ...


class _Histogram:
    def __init__(self) -> None:
        self.counts = [0] * len(BUCKETS)  # per bucket, not cumulative
        self.total = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(BUCKETS):
            if value <= bound:
                self.counts[i] += 1
                break
        self.total += 1
        self.sum += value


class GatewayMetrics:
    """The gateway's counters and histograms, and the exposition of them with the log's gauges."""

    def __init__(self, connections: Iterable[str], *, clock: Clock = time.monotonic) -> None:
        self.connections = frozenset(connections)
        self.clock = clock
        self._lock = threading.Lock()
        self._decisions: dict[tuple[str, str], int] = {}
        self._durations: dict[tuple[str, str], _Histogram] = {}
        self._seen: tuple[LogPosition, float] | None = None  # the last position read, and when

    def connection_label(self, connection: str | None) -> str:
        return connection if connection in self.connections else UNKNOWN_CONNECTION

    def observe(self, connection: str | None, outcome: str, code: str, seconds: float) -> None:
        """One request: its decision (``allow``/``refuse`` and code) and its duration by request outcome."""
        decision = "refuse" if outcome == "refuse" else "allow"
        key = (self.connection_label(connection), outcome)
        with self._lock:
            self._decisions[(decision, code)] = self._decisions.get((decision, code), 0) + 1
            self._durations.setdefault(key, _Histogram()).observe(seconds)

    def decisions(self, outcome: str, code: str) -> int:
        with self._lock:
            return self._decisions.get((outcome, code), 0)

    # --- exposition -------------------------------------------------------------------------------------

    def exposition(self, log: PositionSource) -> str:
        lines: list[str] = []
        with self._lock:
            _family(lines, "tabellion_gateway_decisions_total", "counter",
                    "Decisions on agent requests, by outcome and code (ok or the refusal's error code).")
            for (outcome, code), count in sorted(self._decisions.items()):
                lines.append(f"tabellion_gateway_decisions_total{_labels(outcome=outcome, code=code)} {count}")
            _family(lines, "tabellion_gateway_request_duration_seconds", "histogram",
                    "Seconds from a request's arrival to the upstream's answer headers or the refusal.")
            for (connection, outcome), histogram in sorted(self._durations.items()):
                _histogram(lines, "tabellion_gateway_request_duration_seconds", histogram,
                           connection=connection, outcome=outcome)
        size, age, trusted = self._log_gauges(log)
        for name, value, text in (
            ("tabellion_gateway_checkpoint_size", size, "Entries in the last checkpoint the gateway verified."),
            ("tabellion_gateway_checkpoint_age_seconds", age,
             "Seconds since the gateway last verified the log's latest checkpoint."),
            ("tabellion_gateway_log_trusted", trusted,
             "1 while the log is trusted; 0 for good once it served an inconsistent checkpoint."),
        ):
            _family(lines, name, "gauge", text)
            lines.append(f"{name} {_number(value)}")
        return "\n".join(lines) + "\n"

    def _log_gauges(self, log: PositionSource) -> tuple[float, float, float]:
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
    streamed = isinstance(response, StreamingResponse)  # the upstream's answer
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


# --- the text format ------------------------------------------------------------------------------------


def _family(lines: list[str], name: str, kind: str, text: str) -> None:
    lines.append(f"# HELP {name} {text}")
    lines.append(f"# TYPE {name} {kind}")


def _histogram(lines: list[str], name: str, histogram: _Histogram, **labels: str) -> None:
    cumulative = 0
    for bound, count in zip(BUCKETS, histogram.counts, strict=True):
        cumulative += count
        lines.append(f"{name}_bucket{_labels(**labels, le=_number(bound))} {cumulative}")
    lines.append(f"{name}_bucket{_labels(**labels, le='+Inf')} {histogram.total}")
    lines.append(f"{name}_sum{_labels(**labels)} {_number(histogram.sum)}")
    lines.append(f"{name}_count{_labels(**labels)} {histogram.total}")


def _labels(**labels: str) -> str:
    def escaped(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{k}="{escaped(v)}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))
