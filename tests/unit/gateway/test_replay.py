"""Replay protection: a (keyid, nonce) is accepted once while its signature is valid, across restarts and
across gateway worker processes sharing the store."""

from __future__ import annotations

import multiprocessing
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from gateway.replay import PURGE_BATCH, NonceStore
from schemas.errors import ReplayDetected
from tests.unit.gateway.agent import NOW, signed, verify


@pytest.fixture
def store(tmp_path: Path) -> NonceStore:
    return NonceStore(tmp_path / "nonces.db")


def test_repeat_is_refused(store: NonceStore) -> None:
    store.remember("k", "n", NOW + 60, NOW)
    with pytest.raises(ReplayDetected):
        store.remember("k", "n", NOW + 60, NOW + 1)
    with pytest.raises(ReplayDetected):
        store.remember("k", "n", NOW + 600, NOW + 1)  # a later expiry does not make it new


def test_same_nonce_other_key_is_fine(store: NonceStore) -> None:
    store.remember("k1", "n", NOW + 60, NOW)
    store.remember("k2", "n", NOW + 60, NOW)
    store.remember("k1", "n2", NOW + 60, NOW)


def test_expired_nonce_is_forgotten(store: NonceStore) -> None:
    store.remember("k", "n", NOW + 60, NOW)
    with pytest.raises(ReplayDetected):
        store.remember("k", "n", NOW + 120, NOW + 60)  # still valid through its last second
    store.remember("k", "n", NOW + 121, NOW + 61)
    with pytest.raises(ReplayDetected):
        store.remember("k", "n", NOW + 200, NOW + 100)  # and remembered again with its new window


def test_expired_rows_are_purged(store: NonceStore) -> None:
    for i in range(PURGE_BATCH + 10):
        store.remember("k", f"n{i}", NOW + i, NOW)
    assert store.count() == PURGE_BATCH + 10
    store.remember("k", "later", NOW + 10_000, NOW + 5_000)
    assert store.count() == 11  # one bounded batch purged
    store.remember("k", "later2", NOW + 10_000, NOW + 5_000)
    assert store.count() == 2


def test_refusal_survives_a_restart(tmp_path: Path) -> None:
    with NonceStore(tmp_path / "nonces.db") as first:
        first.remember("k", "n", NOW + 60, NOW)
    with NonceStore(tmp_path / "nonces.db") as second, pytest.raises(ReplayDetected):
        second.remember("k", "n", NOW + 60, NOW + 1)


def test_verified_signature_gives_the_window(store: NonceStore) -> None:
    request = signed(expires=NOW + 20)
    verified = verify(request)
    assert verified.nonce is not None
    store.remember(verified.keyid, verified.nonce, verified.valid_until, NOW)
    replayed = verify(request, now=NOW + 10)
    with pytest.raises(ReplayDetected):
        store.remember(replayed.keyid, replayed.nonce or "", replayed.valid_until, NOW + 10)


WORKERS = 4
NONCES = [f"race-{i}" for i in range(40)]


def _race(path: str, barrier: Barrier, results: Queue[list[tuple[str, bool]]]) -> None:
    store = NonceStore(path)
    barrier.wait()
    won = []
    for nonce in NONCES:
        try:
            store.remember("k", nonce, NOW + 60, NOW)
            won.append((nonce, True))
        except ReplayDetected:
            won.append((nonce, False))
    store.close()
    results.put(won)


def test_processes_racing_the_same_nonce_one_wins(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    results: Queue[list[tuple[str, bool]]] = ctx.Queue()
    path = str(tmp_path / "shared.db")
    workers = [ctx.Process(target=_race, args=(path, barrier, results)) for _ in range(WORKERS)]
    for w in workers:
        w.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    for nonce in NONCES:
        assert sum(won for outcome in outcomes for n, won in outcome if n == nonce) == 1, nonce
    with NonceStore(path) as store:
        assert store.count() == len(NONCES)
