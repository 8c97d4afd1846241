"""A fork is remembered, with real processes on 127.0.0.1: two transparency services started from copies of one
data folder (the same key, the same origin) log different statements — a fork no proof can reconcile. A gateway
that followed one branch and is restarted pointed at the other refuses every request, and keeps refusing after
further restarts, whichever branch it is then pointed at, until an operator clears the verdict with
``tabellion gateway trust reset``, which is logged."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import httpx

from tests.cli_process import run_cli
from tests.e2e.gateway_deployment import Recorder, refused, register_world, send, signed, started_gateway
from tests.http_stub import serving
from tests.server import ServerUrl, start_server
from transparency.client import HttpLogClient, generate_key, sign_statement


def log_one(url: str, text: bytes) -> None:
    with HttpLogClient(url) as client:
        client.submit(sign_statement(generate_key(), text, subject="x", content_type="text/plain"))


def checkpoint_of(url: str) -> tuple[str, str]:
    origin, size, root = httpx.get(f"{url}/checkpoint", timeout=10).text.split("\n")[:3]
    return size, root


def test_a_fork_survives_restarts_until_an_operator_clears_it(tmp_path: Path) -> None:
    Recorder.seen = []
    branch_a, branch_b = tmp_path / "log-a", tmp_path / "log-b"
    first = start_server(tmp_path / "a", data_dir=branch_a)
    try:
        world = register_world(first)
    finally:
        first.terminate()
    shutil.copytree(branch_a, branch_b)
    logs: list[ServerUrl] = []
    with serving(Recorder) as upstream:
        try:
            log_a = start_server(tmp_path / "a", data_dir=branch_a)
            logs.append(log_a)
            log_b = start_server(tmp_path / "b", data_dir=branch_b)
            logs.append(log_b)
            log_one(log_a, b"only on branch a")
            log_one(log_b, b"only on branch b")
            (size_a, root_a), (size_b, root_b) = checkpoint_of(log_a), checkpoint_of(log_b)
            assert size_a == size_b and root_a != root_b  # one key, one origin, two trees: a fork

            # the longest long poll (30 s): a restart that waited for the log to grow would take that long, while a
            # restart that resumes from the pinned checkpoint answers as soon as the process is up
            with started_gateway(tmp_path, log_a, upstream, long_poll=30) as gateway:
                config = gateway.config
                assert send(signed(world, gateway.url)).status_code == 200
                assert httpx.get(f"{gateway.url}/healthz").json()["log"]["size"] >= int(size_a)
                gateway.stop()
                started = time.monotonic()
                gateway.start()  # the same branch again: it resumes from the pinned checkpoint at once
                assert time.monotonic() - started < 25, "a restart waited for the log to grow"
                assert send(signed(world, gateway.url)).status_code == 200
                gateway.stop()

                # restarted pointed at the other branch: refused, and the verdict is written down
                config.write_text(config.read_text().replace(log_a, log_b))
                gateway.start(healthy=False)
                deadline = time.monotonic() + 30
                while True:  # 503 log-not-ready until its first poll is done, then log-untrusted; never a 200
                    answer = send(signed(world, gateway.url))
                    assert answer.status_code == 503, f"the gateway accepted the fork: {answer.text}"
                    if answer.json()["type"].endswith(":log-untrusted"):
                        break
                    assert time.monotonic() < deadline, f"the fork was not found: {answer.text}"
                    time.sleep(0.05)
                refused(answer, 503, "log-untrusted")
                forwarded = len(Recorder.seen)
                gateway.stop()

                # every later start refuses before asking the log, on either branch
                for url in (log_b, log_a):
                    config.write_text(config.read_text().replace(log_b, url).replace(log_a, url))
                    gateway.start(healthy=False)
                    problem = refused(send(signed(world, gateway.url)), 503, "log-untrusted")
                    assert "forked" in problem["detail"] and "trust reset" in problem["detail"]
                    refused(httpx.get(f"{gateway.url}/healthz"), 503, "log-untrusted")
                    gateway.stop()
                assert len(Recorder.seen) == forwarded
                shown = run_cli("gateway", "trust", "show", "--config", str(config))
                assert shown.returncode == 0 and "fork verdict: 20" in shown.stdout, shown.stdout + shown.stderr

                # only an operator clears it, with a reason, and the clearing is logged
                no_reason = run_cli("gateway", "trust", "reset", "--config", str(config))
                assert no_reason.returncode == 2
                reset = run_cli("gateway", "trust", "reset", "--config", str(config), "--reason",
                                "branch a was the log operator's mistake; following branch a after review")
                assert reset.returncode == 0, reset.stderr
                assert "cleared the fork verdict" in reset.stdout
                events = [json.loads(line) for line in
                          (tmp_path / "gw-data" / "trust-events.jsonl").read_text().splitlines()]
                assert len(events) == 1 and events[0]["event"] == "trust-reset"
                assert events[0]["cleared_fork"]["detail"] and events[0]["reason"].startswith("branch a")
                gateway.start()
                assert send(signed(world, gateway.url)).status_code == 200
                assert "trust was last reset" in gateway.log()
        finally:
            for url in logs:
                url.terminate()
    assert "stopped trusting the log" in gateway.log()
