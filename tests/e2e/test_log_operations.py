"""The log service's operations endpoints over real HTTP: liveness, readiness and the Prometheus exposition
(parsed by prometheus-client's own parser), counting accepted and refused registrations by code."""

from __future__ import annotations

from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client.parser import text_string_to_metric_families

from issuer.statements import Signer, operator_registration
from tests.server import running_server

COSE = {"content-type": "application/cose"}


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_healthz_readyz_and_metrics(tmp_path: Path) -> None:
    with running_server(tmp_path) as url, httpx.Client(base_url=url, timeout=30) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        assert http.get("/readyz").json() == {"status": "ready", "tree_size": 0}
        operator = Signer(Ed25519PrivateKey.generate())
        statement = operator_registration(operator, "acme", Ed25519PrivateKey.generate())
        assert http.post("/entries", content=statement, headers=COSE).status_code == 201
        assert http.post("/entries", content=b"\xa0", headers=COSE).status_code == 400  # not a COSE_Sign1
        stranger = Signer(Ed25519PrivateKey.generate())  # the namespace is taken: the fold refuses
        taken = operator_registration(stranger, "acme", Ed25519PrivateKey.generate())
        assert http.post("/entries", content=taken, headers=COSE).status_code == 403

        answer = http.get("/metrics")
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain; version=")
        samples = _samples(answer.text)
        registrations = "tabellion_log_registrations_total"
        assert samples[(registrations, (("code", "ok"), ("outcome", "accepted")))] == 1
        assert samples[(registrations, (("code", "not-cose-sign1"), ("outcome", "refused")))] == 1
        assert samples[(registrations, (("code", "namespace-taken"), ("outcome", "refused")))] == 1
        assert samples[("tabellion_log_registration_duration_seconds_count", (("outcome", "refused"),))] == 2
        assert samples[("tabellion_log_tree_size", ())] == 1
        assert samples[("tabellion_log_sequencer_running", ())] == 1
        assert samples[("tabellion_log_sequencer_queue_depth", ())] == 0
        assert 0 <= samples[("tabellion_log_tree_head_age_seconds", ())] < 60
        assert http.get("/readyz").json()["tree_size"] == 1
        # the operations endpoints write nothing and take no body
        assert http.post("/metrics").status_code == 405
        assert http.post("/readyz").status_code == 405
