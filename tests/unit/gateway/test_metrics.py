"""Prometheus metrics: counters and histograms move with requests, the log's gauges, and an exposition that
parses (prometheus_client's parser, and a strict check of every line against the text format)."""

from __future__ import annotations

import asyncio
import json
import math
import re
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.responses import Response, StreamingResponse

from gateway.app import create_app
from gateway.config import load_config
from gateway.decisions import Decision
from gateway.metrics import CONTENT_TYPE, DecisionCounter, GatewayMetrics, _answered, _raised
from gateway.proxy import PassedBack
from gateway.secrets import Secret
from gateway.state import LogPosition
from schemas.errors import (
    ActionRecordFailed,
    LogNotFollowed,
    LogStale,
    LogUntrusted,
    PayloadTooLarge,
    TabellionError,
    UpstreamTimeout,
)
from tests.clock import Clock
from tests.gateway_world import GATEWAY, FixedLog, World, build_world
from tests.unit.gateway.config_files import write_config
from tests.unit.gateway.mail_connection import CONNECTIONS, TOKEN, Upstream
from tests.upstream_server import UpstreamServer

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\\\|\\"|\\n)*"'
_VALUE = r"(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|NaN|[+-]Inf)"
SAMPLE_LINE = re.compile(rf"{_NAME}(?:\{{{_LABEL}(?:,{_LABEL})*\}})? {_VALUE}")
COMMENT_LINE = re.compile(rf"# (?:HELP {_NAME} .*|TYPE {_NAME} (?:counter|gauge|histogram|summary|untyped))")


def strictly_parsed(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every line checked against the text format, then parsed: {sample name: {labels: value}}."""
    assert text.endswith("\n")
    for line in text.splitlines():
        assert SAMPLE_LINE.fullmatch(line) or COMMENT_LINE.fullmatch(line), line
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def labels(**values: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(values.items()))


class Log:
    def __init__(self, size: int = 12, age: float = 0.5) -> None:
        self.size, self.age = size, age
        self.refusal: TabellionError | None = None

    def position(self) -> LogPosition:
        if self.refusal is not None:
            raise self.refusal
        return LogPosition("o", self.size, bytes(32), self.age)


def test_counters_and_histograms() -> None:
    metrics = GatewayMetrics(["mail"])
    metrics.observe("mail", "allow", "ok", 0.003)
    metrics.observe("mail", "allow", "ok", 0.2)
    metrics.observe("mail", "refuse", "scope-refused", 0.0004)
    metrics.observe("mail", "upstream-error", "ok", 7.0)
    metrics.observe("nope", "refuse", "connection-unknown", 0.0001)  # not a configured id: no new label value
    samples = strictly_parsed(metrics.exposition(Log()))
    decisions = samples["tabellion_gateway_decisions_total"]
    assert decisions[(("code", "ok"), ("outcome", "allow"))] == 3  # the upstream failed after an allow
    assert decisions[(("code", "scope-refused"), ("outcome", "refuse"))] == 1
    assert decisions[(("code", "connection-unknown"), ("outcome", "refuse"))] == 1
    buckets = samples["tabellion_gateway_request_duration_seconds_bucket"]
    allow = labels(connection="mail", outcome="allow")
    assert buckets[labels(connection="mail", outcome="allow", le="0.0025")] == 0
    assert buckets[labels(connection="mail", outcome="allow", le="0.005")] == 1
    assert buckets[labels(connection="mail", outcome="allow", le="0.25")] == 2
    assert buckets[labels(connection="mail", outcome="allow", le="+Inf")] == 2
    assert samples["tabellion_gateway_request_duration_seconds_count"][allow] == 2
    assert samples["tabellion_gateway_request_duration_seconds_sum"][allow] == pytest.approx(0.203)
    assert buckets[labels(connection="mail", outcome="upstream-error", le="5.0")] == 0
    assert buckets[labels(connection="mail", outcome="upstream-error", le="10.0")] == 1
    assert buckets[labels(connection="unknown", outcome="refuse", le="0.001")] == 1
    assert metrics.decisions("refuse", "scope-refused") == 1


def test_the_log_gauges() -> None:
    clock = Clock(100.0)
    metrics = GatewayMetrics(["mail"], clock=clock)
    log = Log(size=12, age=0.5)
    log.refusal = LogNotFollowed("not yet")
    samples = strictly_parsed(metrics.exposition(log))
    assert math.isnan(samples["tabellion_gateway_checkpoint_size"][()])
    assert math.isnan(samples["tabellion_gateway_checkpoint_age_seconds"][()])
    assert samples["tabellion_gateway_log_trusted"][()] == 1
    log.refusal = None
    samples = strictly_parsed(metrics.exposition(log))
    assert samples["tabellion_gateway_checkpoint_size"][()] == 12
    assert samples["tabellion_gateway_checkpoint_age_seconds"][()] == 0.5
    log.refusal = LogStale("61 s")
    clock.now += 90  # stale: the age of the last position seen keeps growing
    samples = strictly_parsed(metrics.exposition(log))
    assert samples["tabellion_gateway_checkpoint_age_seconds"][()] == 90.5
    assert samples["tabellion_gateway_checkpoint_size"][()] == 12 and samples["tabellion_gateway_log_trusted"][()] == 1
    log.refusal = LogUntrusted("split view")
    assert strictly_parsed(metrics.exposition(log))["tabellion_gateway_log_trusted"][()] == 0


def test_label_values_are_escaped() -> None:
    metrics = GatewayMetrics([])
    metrics.observe(None, "refuse", 'odd"code\\with\nnewline', 0.01)
    samples = strictly_parsed(metrics.exposition(Log()))
    odd = labels(code='odd"code\\with\nnewline', outcome="refuse")
    assert samples["tabellion_gateway_decisions_total"][odd] == 1


@pytest.fixture(scope="module")
def world() -> World:
    return build_world()


def test_metrics_move_with_requests_through_the_app(world: World, tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, f'public_url = "{GATEWAY}"\n', connections=CONNECTIONS))
    upstream = Upstream()
    server = UpstreamServer(upstream)
    app = create_app(config, {"MAIL_TOKEN": Secret(TOKEN)}, followed_log=FixedLog(world.state()),
                     resolver=server.resolver)

    async def scenario() -> None:
        async with server, app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=GATEWAY
        ) as client:
            async def scrape() -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
                answer = await client.get("/metrics")
                assert answer.status_code == 200 and answer.headers["content-type"] == CONTENT_TYPE
                return strictly_parsed(answer.text)

            before = await scrape()
            assert "tabellion_gateway_decisions_total" not in before
            assert before["tabellion_gateway_checkpoint_size"][()] == len(world.statements)
            for _ in range(2):
                request = world.request()
                assert (await client.get(request.target_uri, headers=list(request.headers))).status_code == 200
            outside = world.request("/proxy/mail-api/outbox/1")
            assert (await client.get(outside.target_uri, headers=list(outside.headers))).status_code == 403
            assert (await client.get("/proxy/elsewhere/x")).status_code == 404
            after = await scrape()
            decisions = after["tabellion_gateway_decisions_total"]
            assert decisions[(("code", "ok"), ("outcome", "allow"))] == 2
            assert decisions[(("code", "scope-refused"), ("outcome", "refuse"))] == 1
            assert decisions[(("code", "connection-unknown"), ("outcome", "refuse"))] == 1
            counts = after["tabellion_gateway_request_duration_seconds_count"]
            assert counts[(("connection", "mail-api"), ("outcome", "allow"))] == 2
            assert counts[(("connection", "mail-api"), ("outcome", "refuse"))] == 1
            assert counts[(("connection", "unknown"), ("outcome", "refuse"))] == 1
            assert after["tabellion_gateway_log_trusted"][()] == 1

    asyncio.run(scenario())


def test_refusals_answered_as_responses_are_counted_with_their_code() -> None:
    """A connection kind that answers its refusals itself (MCP: a JSON-RPC error carrying the problem) is counted
    by the gatekeeper's decision when there is one, else by the problem type in the answer."""
    rpc = {"jsonrpc": "2.0", "id": 1, "error": {"code": -32600, "message": "Invalid MCP request",
                                                "data": {"type": "urn:tabellion:error:mcp-request-invalid"}}}
    assert _answered(None, Response(json.dumps(rpc), 400)) == ("refuse", "mcp-request-invalid")
    problem_body = json.dumps({"type": "urn:tabellion:error:connection-unknown", "status": 404})
    assert _answered(None, Response(problem_body, 404)) == ("refuse", "connection-unknown")
    assert _answered(None, Response(b"not json", 500)) == ("refuse", "internal-error")
    refused = Decision(at=0, connection="c", service="s", method="POST", action="a", resource="r",
                       outcome="refuse", status=403, code="scope-refused", reason_code="action_out_of_scope",
                       request_digest="")
    assert _answered(refused, Response(json.dumps(rpc), 403)) == ("refuse", "scope-refused")
    allowed = replace(refused, outcome="warn", status=200, code="ok")
    assert _answered(allowed, Response(b"{}", 502)) == ("upstream-error", "ok")  # the gateway's own 502
    assert _answered(allowed, StreamingResponse(iter([b"x"]), 502)) == ("allow", "ok")  # the upstream's 502
    assert _answered(allowed, PassedBack(b"x", 502)) == ("allow", "ok")  # the same, short: read whole
    assert _answered(allowed, Response(b"{}", 200)) == ("allow", "ok")
    assert _raised(allowed, UpstreamTimeout("slow")) == ("upstream-error", "ok")
    assert _raised(None, PayloadTooLarge("big")) == ("refuse", "payload-too-large")
    assert _raised(None, RuntimeError("bug")) == ("refuse", "internal-error")


def test_the_decision_counter_forwards_and_notes_only_what_was_stored() -> None:
    stored: list[Decision] = []

    class Failing:
        def record(self, decision: Decision) -> None:
            raise ActionRecordFailed("disk full")

    class Keeping:
        def record(self, decision: Decision) -> None:
            stored.append(decision)

    decision = Decision(at=0, connection="c", service="s", method="GET", action="read", resource="r",
                        outcome="allow", status=200, code="ok", reason_code="ok", request_digest="")
    DecisionCounter(Keeping()).record(decision)
    DecisionCounter().record(decision)  # no inner sink, no request being measured: nothing to do
    assert stored == [decision]
    with pytest.raises(ActionRecordFailed):
        DecisionCounter(Failing()).record(decision)
