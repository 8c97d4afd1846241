"""Issue 14's acceptance, every part a real process on 127.0.0.1: three ``tabellion witness``, a log (with its
issuer) asking them, and a gateway that requires 2 of 3.

- cosigned checkpoints verify (``tabellion verify checkpoint|receipt|bundle --policy``);
- with two witnesses down (kill -9), registration still works and the gateway does not accept the new
  checkpoints: it answers 503 ``log-unwitnessed``;
- when they are back, the gateway catches up and decides again.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from cli.commands import run
from schemas.checkpoint import parse_checkpoint
from schemas.note import parse_note
from tests.e2e.gateway_deployment import (
    GatewayProcess,
    Recorder,
    refused,
    register_world,
    send,
    signed,
    write_gateway_config,
)
from tests.http_stub import serving
from tests.server import free_port
from tests.witnessing import WITNESS_TIMEOUT_S, Deployment, witnessed_deployment
from transparency.client import HttpLogClient, generate_key, sign_statement
from verifier.policy import verify_witnessed_checkpoint

GRACE_S = 2


def _gateway_config(tmp_path: Path, deployment: Deployment, upstream: str, port: int, workers: int = 1) -> Path:
    return write_gateway_config(tmp_path, deployment.log, upstream, port, long_poll=2, settings=f"workers = {workers}",
                                log_settings=f'witness_policy = "{deployment.policy_path}"\nwitness_grace = {GRACE_S}')


def _health(gateway: GatewayProcess) -> httpx.Response:
    return httpx.get(f"{gateway.url}/healthz", timeout=10)


def _witnessed(deployment: Deployment, client: HttpLogClient, size: int, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = client.witnessed_checkpoint(after=size - 1, wait=2)
        if text is not None and verify_witnessed_checkpoint(text, deployment.policy).checkpoint.size >= size:
            return text
    raise AssertionError(f"no witnessed checkpoint of size {size}:\n{deployment.log.log()}")


def _size(client: HttpLogClient) -> int:
    return parse_checkpoint(parse_note(client.checkpoint()).text).size


@pytest.mark.parametrize("workers", [1, 2])
def test_a_gateway_requiring_two_of_three_witnesses(tmp_path: Path, workers: int) -> None:
    """With ``workers`` 2 the supervisor follows with the policy and each worker refuses from the shared view."""
    Recorder.seen = []
    with witnessed_deployment(tmp_path, witnesses=3, quorum=2) as deployment, serving(Recorder) as upstream, \
            HttpLogClient(deployment.log) as client:
        world = register_world(deployment.log)
        _witnessed(deployment, client, _size(client))
        port = free_port()
        gateway = GatewayProcess(_gateway_config(tmp_path, deployment, upstream, port, workers), port,
                                 tmp_path / "gateway.log").start()
        try:
            assert send(signed(world, gateway.url)).status_code == 200
            assert _health(gateway).status_code == 200

            if workers == 1:  # cosigned checkpoints verify, offline, against the policy
                _verify_offline(tmp_path, deployment, client, world.c.identity)

            # two witnesses down: registration works, the gateway stops accepting new checkpoints
            deployment.witnesses[0].kill9()
            deployment.witnesses[1].kill9()
            witnessed_before = json.loads(_health(gateway).text)["log"]["size"]
            key = generate_key()
            for i in range(3):  # none waits for the missing witnesses (their timeout is WITNESS_TIMEOUT_S)
                started = time.monotonic()
                done = client.submit(sign_statement(key, f"while down {i}".encode(), subject="q",
                                                    content_type="text/plain"))
                assert done.receipt is not None
                assert time.monotonic() - started < WITNESS_TIMEOUT_S
            logged = _size(client)
            deadline = time.monotonic() + GRACE_S + 10
            while _health(gateway).status_code == 200:
                assert time.monotonic() < deadline, "the gateway kept deciding past the grace"
                time.sleep(0.2)
            refused(_health(gateway), 503, "log-unwitnessed")
            refused(send(signed(world, gateway.url)), 503, "log-unwitnessed")
            assert (client.witnessed_checkpoint() or "") and \
                verify_witnessed_checkpoint(client.witnessed_checkpoint() or "", deployment.policy).checkpoint.size \
                < logged

            # back: the log gets its cosignatures, the gateway catches up and decides again
            deployment.restart_witness(0)
            deployment.restart_witness(1)
            deadline = time.monotonic() + 20
            while (health := _health(gateway)).status_code != 200:
                assert time.monotonic() < deadline, f"the gateway never caught up:\n{gateway.log()}"
                time.sleep(0.2)
            assert json.loads(health.text)["log"]["size"] >= logged > witnessed_before
            assert send(signed(world, gateway.url)).status_code == 200
        finally:
            gateway.stop()


def _verify_offline(tmp_path: Path, deployment: Deployment, client: HttpLogClient, agent: str) -> None:
    url, policy = str(deployment.log), str(deployment.policy_path)
    checkpoint = tmp_path / "witnessed.txt"
    checkpoint.write_text(_witnessed(deployment, client, _size(client)))
    assert run(["verify", "checkpoint", str(checkpoint), "--policy", policy]) == 0
    keys = tmp_path / "log.keys"
    assert run(["fetch", "keys", url, "-o", str(keys)]) == 0
    bundle = tmp_path / "audit.json"
    assert run(["fetch", "audit", url, "--did", agent, "-o", str(bundle)]) == 0
    assert run(["verify", "bundle", str(bundle), "--log-keys", str(keys), "--policy", policy]) == 0
    # a receipt registered now, tied to a later witnessed checkpoint by a consistency proof
    statement = tmp_path / "s.cose"
    statement.write_bytes(sign_statement(generate_key(), b"tie", subject="q", content_type="text/plain"))
    receipt = tmp_path / "s.receipt"
    assert run(["submit", url, str(statement), "-o", str(receipt)]) == 0
    receipt_size = _size(client)
    key = generate_key()
    client.submit(sign_statement(key, b"later", subject="q", content_type="text/plain"))
    later = _witnessed(deployment, client, receipt_size + 1)
    checkpoint.write_text(later)
    later_size = parse_checkpoint(parse_note(later).text).size
    proof = tmp_path / "consistency.cbor"
    assert run(["fetch", "consistency", url, "--old", str(receipt_size), "--new", str(later_size),
                "-o", str(proof)]) == 0
    assert run(["verify", "receipt", "--log-keys", str(keys), "--statement", str(statement), "--receipt",
                str(receipt), "--policy", policy, "--checkpoint", str(checkpoint), "--consistency", str(proof)]) == 0
    # and the same checkpoint without its cosignatures does not meet the policy
    plain = tmp_path / "plain.txt"
    note = parse_note(later)
    plain.write_text(type(note)(note.text, note.signatures[:1]).encode())
    assert run(["verify", "checkpoint", str(plain), "--policy", policy]) == 1


def test_the_issuer_requiring_the_quorum(tmp_path: Path) -> None:
    """The embedded issuer with ``issuer_witness_policy``: it answers from witnessed checkpoints, 503
    ``log-unwitnessed`` once newer ones wait past the grace, and again normally when the witnesses are back."""
    # the deployment writes the policy before it starts the log, whose issuer reads it at start
    with witnessed_deployment(tmp_path, witnesses=3, quorum=2, issuer_witness_grace_s=1.0,
                              issuer_witness_policy=tmp_path / "log.policy") as deployment, \
            HttpLogClient(deployment.log) as client:
        world = register_world(deployment.log)
        did_url = f"{deployment.log}/1.0/identifiers/{world.operator.identity}"
        assert httpx.get(did_url, timeout=10).status_code == 200
        audit = httpx.get(f"{deployment.log}/v1/audit/{world.c.identity}", timeout=30)
        assert audit.status_code == 200
        assert verify_witnessed_checkpoint(audit.json()["checkpoint"], deployment.policy).checkpoint.size > 0
        deployment.witnesses[0].kill9()
        deployment.witnesses[2].kill9()
        client.submit(sign_statement(generate_key(), b"unwitnessed", subject="q", content_type="text/plain"))
        deadline = time.monotonic() + 15
        while (answer := httpx.get(did_url, timeout=10)).status_code == 200:
            assert time.monotonic() < deadline, "the issuer kept answering past the grace"
            time.sleep(0.2)
        refused(answer, 503, "log-unwitnessed")
        deployment.restart_witness(0)
        deadline = time.monotonic() + 20
        while httpx.get(did_url, timeout=10).status_code != 200:
            assert time.monotonic() < deadline, f"the issuer never caught up:\n{deployment.log.log()}"
            time.sleep(0.2)
