"""A log and three ``tabellion witness`` processes (2 of 3): the log gathers cosignatures off the write path;
with witnesses dead (kill -9) or hung (SIGSTOP) registration stays fast while the witnessed checkpoint stops;
when they are back it catches up."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx

from cli.commands import run
from schemas.checkpoint import parse_checkpoint
from schemas.note import parse_note
from schemas.witness import origin_hash
from tests.server import start_server
from tests.witnessing import Deployment, witnessed_deployment
from transparency.client import HttpLogClient, generate_key, sign_statement
from verifier.checkpoints import verify_checkpoint
from verifier.policy import verify_witnessed_checkpoint


def _register(client: HttpLogClient, n: int, tag: str) -> float:
    """Register ``n`` statements one after the other; the slowest registration in seconds."""
    key = generate_key()
    slowest = 0.0
    for i in range(n):
        started = time.monotonic()
        done = client.submit(sign_statement(key, f"{tag} {i}".encode(), subject="w", content_type="text/plain"))
        assert done.receipt is not None
        slowest = max(slowest, time.monotonic() - started)
    return slowest


def _size(client: HttpLogClient) -> int:
    return parse_checkpoint(parse_note(client.checkpoint()).text).size


def _witnessed_size(deployment: Deployment, client: HttpLogClient) -> int:
    text = client.witnessed_checkpoint()
    if text is None:
        return -1
    return verify_witnessed_checkpoint(text, deployment.policy).checkpoint.size


def _wait_witnessed(deployment: Deployment, client: HttpLogClient, size: int, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = client.witnessed_checkpoint(after=size - 1, wait=2)
        if text is not None and verify_witnessed_checkpoint(text, deployment.policy).checkpoint.size >= size:
            return text
    raise AssertionError(f"no witnessed checkpoint of size {size} in {timeout} s:\n{deployment.log.log()}")


def test_checkpoints_are_cosigned_by_the_witnesses(tmp_path: Path) -> None:
    with witnessed_deployment(tmp_path) as deployment, HttpLogClient(deployment.log) as client:
        _register(client, 3, "a")
        text = _wait_witnessed(deployment, client, 3)
        witnessed = verify_witnessed_checkpoint(text, deployment.policy)
        assert len(witnessed.cosigners) >= 2 and set(witnessed.cosigners) <= {"w0", "w1", "w2"}
        # the log's key alone still verifies it (the cosignatures are signatures by unknown keys)
        assert verify_checkpoint(text, deployment.log_vkey).size == 3
        # GET /checkpoint carries the cosignatures gathered for the latest checkpoint too
        deadline = time.monotonic() + 10
        while len(parse_note(client.checkpoint()).signatures) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(parse_note(client.checkpoint()).signatures) == 4  # the log's and three witnesses'
        # each witness's monitoring API serves what it cosigned
        for witness in deployment.witnesses:
            served = httpx.get(f"{witness}/{origin_hash('tabellion.localhost/log')}/checkpoint").text
            assert verify_checkpoint(served, deployment.log_vkey).size == 3
        # an honest log: the monitor finds the log and every witness in agreement
        assert run(["monitor", "--policy", str(deployment.policy_path), "--log", str(deployment.log), "--once"]) == 0


HUNG_TIMEOUT_S = 5.0  # the log's wait for a witness's answer, long enough that no registration comes near it


def test_dead_and_hung_witnesses_never_block_registration(tmp_path: Path) -> None:
    with witnessed_deployment(tmp_path, witness_timeout_s=HUNG_TIMEOUT_S) as deployment, \
            HttpLogClient(deployment.log) as client:
        _register(client, 2, "before")
        _wait_witnessed(deployment, client, 2)
        deployment.witnesses[0].kill9()
        hung = deployment.witnesses[1].process.pid
        os.kill(hung, signal.SIGSTOP)  # slow: accepts connections, never answers
        try:
            slowest = _register(client, 5, "during")  # one waiting for the hung witness would take its timeout
            assert slowest < HUNG_TIMEOUT_S - 1, f"a registration took {slowest:.2f} s with witnesses down"
            assert _size(client) == 7
            time.sleep(HUNG_TIMEOUT_S + 0.5)  # rounds run (the hung witness times out): still 1 of 3, no quorum
            assert _witnessed_size(deployment, client) == 2
            os.kill(hung, signal.SIGCONT)
            deployment.restart_witness(0)
            _wait_witnessed(deployment, client, 7)  # back: the log asks them again, from the size they hold
        finally:
            os.kill(hung, signal.SIGCONT)
        _register(client, 1, "after")
        _wait_witnessed(deployment, client, 8)


def test_witnessed_checkpoint_survives_a_restart_of_the_log(tmp_path: Path) -> None:
    with witnessed_deployment(tmp_path) as deployment:
        with HttpLogClient(deployment.log) as client:
            _register(client, 2, "x")
            _wait_witnessed(deployment, client, 2)
        for w in deployment.witnesses:
            w.kill9()
        deployment.log.terminate()
        log = start_server(tmp_path, data_dir=deployment.log.data_dir, origin="tabellion.localhost/log",
                           witness_policy=deployment.policy_path)
        try:
            with HttpLogClient(log) as client:
                assert _witnessed_size(deployment, client) == 2  # served from disk, no witness reachable
        finally:
            log.terminate()
