"""The gateway's operations end to end, with real processes on 127.0.0.1 (transparency service with the issuer,
``tabellion gateway --config`` in a subprocess, a recording upstream): a Rego policy per connection, a rate
limit per connection and agent, Prometheus metrics; and a policy that does not compile stops the start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.gateway_deployment import Recorder, gateway_deployment, refused, send, signed
from tests.server import REPO, free_port
from tests.unit.gateway.config_files import write_config

ONLY_EU_AND_GET = """package tabellion.mail

import rego.v1

default allow := false

allow if {
    input.passport.jurisdiction == "EU"
    input.method == "GET"
    input.delegation.root_principal != ""
    input.checkpoint.size > 0
}
"""

OPS_CONNECTION = """
[[connections]]
id = "mail-ops"
upstream = "{upstream}/api"
service = "mail"
credentials = {{ type = "bearer", secret_ref = "MAIL_TOKEN" }}
actions = {{ GET = "read", POST = "write" }}
policy = {{ file = "mail.rego", query = "data.tabellion.mail.allow", id = "mail-eu-read", version = "2026.1" }}
rate = {{ per_second = 0.2, burst = 3 }}
"""


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_policy_rate_limit_and_metrics_with_real_processes(tmp_path: Path) -> None:
    (tmp_path / "mail.rego").write_text(ONLY_EU_AND_GET)
    with gateway_deployment(tmp_path, tables=OPS_CONNECTION) as deployment:
        world, url, gateway = deployment.world, deployment.url, deployment.gateway
        # the policy: C's passport is EU; GET (read) passes, POST (write, allowed by the log) does not
        assert send(signed(world, url, "/proxy/mail-ops/inbox/1")).status_code == 200
        denied = send(signed(world, url, "/proxy/mail-ops/inbox/2", "POST", b'{"to": "x"}'))
        problem = refused(denied, 403, "policy-denied")
        assert (problem["policy_id"], problem["policy_version"], problem["reason_code"]) == (
            "mail-eu-read", "2026.1", "false")
        assert len(Recorder.seen) == 1  # the denied POST never reached the upstream

        # the rate: a burst of 3 for C on mail-ops (two spent above), then 429 with Retry-After
        assert send(signed(world, url, "/proxy/mail-ops/inbox/3")).status_code == 200
        limited = send(signed(world, url, "/proxy/mail-ops/inbox/4"))
        refused(limited, 429, "rate-limited")
        assert limited.headers["retry-after"].isdigit() and 1 <= int(limited.headers["retry-after"]) <= 5
        assert send(signed(world, url, "/proxy/mail-api/inbox/5")).status_code == 200  # another connection

        # the metrics
        answer = httpx.get(f"{url}/metrics", timeout=10)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain; version=")
        seen = samples(answer.text)
        decisions = "tabellion_gateway_decisions_total"
        assert seen[(decisions, (("code", "ok"), ("outcome", "allow")))] == 3
        assert seen[(decisions, (("code", "policy-denied"), ("outcome", "refuse")))] == 1
        assert seen[(decisions, (("code", "rate-limited"), ("outcome", "refuse")))] == 1
        count = "tabellion_gateway_request_duration_seconds_count"
        assert seen[(count, (("connection", "mail-ops"), ("outcome", "allow")))] == 2
        assert seen[(count, (("connection", "mail-ops"), ("outcome", "refuse")))] == 2
        assert seen[("tabellion_gateway_checkpoint_size", ())] >= len(world.statements)
        assert 0 <= seen[("tabellion_gateway_checkpoint_age_seconds", ())] < 60
        assert seen[("tabellion_gateway_log_trusted", ())] == 1

    # every decision on mail-ops names the policy and its version in the decision log
    ops = [d for d in gateway.decisions() if d.get("connection") == "mail-ops"]
    assert len(ops) == 4
    assert {(d["policy_id"], d["policy_version"]) for d in ops} == {("mail-eu-read", "2026.1")}
    assert [d["code"] for d in ops] == ["ok", "policy-denied", "ok", "rate-limited"]
    assert all(d["policy_id"] is None for d in gateway.decisions() if d.get("connection") == "mail-api")


def test_a_policy_that_does_not_compile_stops_the_start_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "mail.rego").write_text("package tabellion\n\nallow if {\n    input.method ==\n}\n")
    config = write_config(tmp_path, f"port = {free_port()}\n", connections=(
        '[[connections]]\nid = "mail"\nupstream = "http://127.0.0.1:9/api"\nservice = "mail"\n'
        'policy = { file = "mail.rego" }\n'))
    done = subprocess.run([sys.executable, "-m", "cli.main", "gateway", "--config", str(config)], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("tabellion: error: Invalid gateway configuration: ")
    assert "mail.rego: line 4, column" in lines[0]
