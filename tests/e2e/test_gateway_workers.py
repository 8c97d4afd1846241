"""Several gateway workers, with real processes on 127.0.0.1: ``tabellion gateway`` with ``workers = 2`` (a
supervisor that follows the log and two worker processes serving one socket). The workers share the nonce store
(a replay is refused whichever worker gets it), the rate buckets (an agent's burst is its burst on the gateway)
and one verified view of the log (a revocation reaches both within a second); the supervisor submits the action
records both queue."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from gateway.actions import ActionQueue
from issuer.statements import revocation
from tests.e2e.test_gateway import (
    GatewayProcess,
    Recorder,
    refused,
    register_world,
    send,
    serving,
    signed,
    write_gateway_config,
)
from tests.server import free_port, running_server

LIMITED = """
[[connections]]
id = "mail-limited"
upstream = "{upstream}/api"
service = "mail"
credentials = {{ type = "bearer", secret_ref = "MAIL_TOKEN" }}
actions = {{ GET = "read", POST = "write" }}
rate = {{ per_second = 0.01, burst = 3 }}
"""


def fresh(request: object) -> httpx.Response:
    """Send on a new connection (no keep-alive), so the kernel may hand it to either worker."""
    with httpx.Client(timeout=10) as client:
        return client.request(request.method, request.target_uri,  # type: ignore[attr-defined]
                              headers=list(request.headers), content=request.body)  # type: ignore[attr-defined]


def test_two_workers_share_nonces_rate_limits_and_the_view_of_the_log(tmp_path: Path) -> None:
    Recorder.seen = []
    with running_server(tmp_path / "log") as log_url, serving(Recorder) as upstream:
        world = register_world(log_url)
        port = free_port()
        config = write_gateway_config(tmp_path, log_url, upstream, port)
        config.write_text(config.read_text().replace("max_body_bytes = 65536", "max_body_bytes = 65536\nworkers = 2")
                          + LIMITED.format(upstream=upstream))
        gateway = GatewayProcess(config, port, tmp_path / "gateway.log").start()
        url = gateway.url
        try:
            allowed = [fresh(signed(world, url, f"/proxy/mail-api/inbox/{i}")) for i in range(12)]
            assert [a.status_code for a in allowed] == [200] * 12

            # one signed request sent six times, each on a new connection: accepted once
            request = signed(world, url, "/proxy/mail-api/inbox/once")
            codes = sorted(fresh(request).status_code for _ in range(6))
            assert codes == [200, 401, 401, 401, 401, 401]

            # a burst of 3 for C on mail-limited, across both workers
            limited = [fresh(signed(world, url, f"/proxy/mail-limited/inbox/{i}")).status_code for i in range(6)]
            assert limited == [200, 200, 200, 429, 429, 429]

            # the operator revokes C: both workers refuse within a second of the receipt
            with httpx.Client(base_url=log_url, timeout=30) as http:
                answer = http.post("/registry/revoke", content=revocation(world.operator, world.c.identity,
                                                                          "privilegeWithdrawn"),
                                   headers={"content-type": "application/cose"})
            assert answer.status_code == 201, answer.text
            receipt_at = time.monotonic()
            while (answer := fresh(signed(world, url))).status_code == 200:
                assert time.monotonic() - receipt_at < 5, "the revocation never reached the workers"
            propagation = time.monotonic() - receipt_at
            refused(answer, 403, "passport-refused")
            assert propagation < 1.0, f"revocation took {propagation:.3f} s to reach the workers"
            for _ in range(6):  # whichever worker answers
                refused(fresh(signed(world, url)), 403, "passport-refused")
            refused(send(signed(world, url)), 403, "passport-refused")
            # the supervisor submits what both workers queued
            deadline = time.monotonic() + 60
            with ActionQueue(tmp_path / "gw-data" / "actions.sqlite") as queue:
                while (counts := queue.counts())["pending"]:
                    assert time.monotonic() < deadline, counts
                    time.sleep(0.1)
            assert counts["refused"] == 0 and counts["logged"] >= 12 + 1 + 5 + 3 + 8
        finally:
            gateway.stop()

        decisions = gateway.decisions()
        workers = {d["worker"] for d in decisions}
        assert len(workers) == 2, workers  # both workers decided
        assert {d["log_size"] for d in decisions if d["outcome"] == "allow"} and all(
            d["log_root"] for d in decisions if d["agent"])
