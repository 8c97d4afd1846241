"""Several gateway workers, with real processes on 127.0.0.1: ``tabellion gateway`` with ``workers = 2`` (a
supervisor that follows the log and two worker processes serving one socket). The workers share the nonce store
(a replay is refused whichever worker gets it), the rate buckets (an agent's burst is its burst on the gateway)
and one verified view of the log (a revocation reaches both as soon as the log answers the supervisor's long
poll); the supervisor submits the action records both queue."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from gateway.actions import ActionQueue
from tests.e2e.gateway_deployment import gateway_deployment, refused, revoke_until_refused, send, signed

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
    with gateway_deployment(tmp_path, settings="workers = 2", tables=LIMITED) as deployment:
        world, url, gateway, log_url = deployment.world, deployment.url, deployment.gateway, deployment.log
        allowed = [fresh(signed(world, url, f"/proxy/mail-api/inbox/{i}")) for i in range(12)]
        assert [a.status_code for a in allowed] == [200] * 12

        # one signed request sent six times, each on a new connection: accepted once
        request = signed(world, url, "/proxy/mail-api/inbox/once")
        codes = sorted(fresh(request).status_code for _ in range(6))
        assert codes == [200, 401, 401, 401, 401, 401]

        # a burst of 3 for C on mail-limited, across both workers
        limited = [fresh(signed(world, url, f"/proxy/mail-limited/inbox/{i}")).status_code for i in range(6)]
        assert limited == [200, 200, 200, 429, 429, 429]

        # the operator revokes C: both workers refuse as soon as the supervisor's long poll is answered
        refused(revoke_until_refused(log_url, url, world, lambda: fresh(signed(world, url))), 403, "passport-refused")
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

    decisions = gateway.decisions()
    workers = {d["worker"] for d in decisions}
    assert len(workers) == 2, workers  # both workers decided
    assert {d["log_size"] for d in decisions if d["outcome"] == "allow"} and all(
        d["log_root"] for d in decisions if d["agent"])
