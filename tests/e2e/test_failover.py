"""The failover drill: two ``serve`` processes share one PostgreSQL log; the one that integrates is killed with
SIGKILL under load, and the other takes over. No receipt is lost, every statement the survivor accepted is
integrated, and every checkpoint either process served is consistent with the survivor's latest one."""

from __future__ import annotations

import shutil
import threading
import time
from functools import partial
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.checkpoint import Checkpoint
from schemas.cose_sign1 import decode_sign1
from schemas.leaf import entry_id, leaf_data
from schemas.note import parse_vkey
from schemas.proofs import ConsistencyProof
from tests.cose_builder import sign1
from tests.postgres import PostgresServer
from tests.server import ServerUrl, start_server
from tests.waiting import wait_for
from verifier.checkpoints import verify_checkpoint, verify_checkpoint_consistency
from verifier.keys import parse_key_set
from verifier.receipts import verify_receipt

COSE = {"Content-Type": "application/cose"}
WORKERS_EACH = 3
RECEIPTS_BEFORE_KILL = 150
RECEIPTS_AFTER_KILL = 100
LOAD_DEADLINE_S = 90.0


class Load:
    """Submitters and checkpoint watchers on one server, until ``stop``; what it was answered."""

    def __init__(self, server: ServerUrl, key: Ed25519PrivateKey, name: str) -> None:
        self.server = server
        self.key = key
        self.name = name
        self.receipts: list[tuple[bytes, bytes, float]] = []  # statement, receipt, when
        self.accepted: list[bytes] = []  # answered 202: accepted, the receipt to follow
        self.checkpoints: list[str] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._submit, args=(w,)) for w in range(WORKERS_EACH)]
        self.threads.append(threading.Thread(target=self._watch))

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def _submit(self, worker: int) -> None:
        with httpx.Client(timeout=15.0) as client:
            for n in range(1_000_000):
                if self.stop.is_set():
                    return
                statement = sign1(self.key, None, payload=b'{"via":"%s","worker":%d,"n":%d}' % (
                    self.name.encode(), worker, n))
                try:
                    r = client.post(f"{self.server}/entries", content=statement, headers=COSE)
                except httpx.HTTPError:
                    if self.server.process.poll() is not None:
                        return  # this server died under us: this statement has no receipt, so it may be lost
                    continue
                with self.lock:
                    if r.status_code == 201:
                        self.receipts.append((statement, r.content, time.monotonic()))
                    elif r.status_code == 202:
                        self.accepted.append(statement)

    def _watch(self) -> None:
        with httpx.Client(timeout=15.0) as client:
            while not self.stop.is_set():
                try:
                    r = client.get(f"{self.server}/checkpoint")
                except httpx.HTTPError:
                    if self.server.process.poll() is not None:
                        return
                    continue
                if r.status_code == 200:
                    self.checkpoints.append(r.text)
                time.sleep(0.02)


def _answers_200(client: httpx.Client, url: str) -> bool:
    return client.get(url).status_code == 200


def test_the_survivor_takes_over_and_loses_no_receipt(tmp_path: Path, postgres: PostgresServer) -> None:
    database = postgres.create_database()
    first = start_server(tmp_path / "a", database=database)  # first on an empty log: it integrates
    (tmp_path / "b" / "data").mkdir(parents=True)
    shutil.copy(first.data_dir / "log-key.pem", tmp_path / "b" / "data" / "log-key.pem")  # one log, one key
    second = start_server(tmp_path / "b", database=database)
    try:
        vkey = parse_vkey(httpx.get(f"{first}/log/vkey").text)
        assert httpx.get(f"{second}/log/vkey").text == httpx.get(f"{first}/log/vkey").text
        key = Ed25519PrivateKey.generate()
        loads = [Load(first, key, "a"), Load(second, key, "b")]
        for load in loads:
            load.start()
        wait_for(lambda: all(len(load.receipts) >= RECEIPTS_BEFORE_KILL // 2 for load in loads),
                 "receipts from both processes", LOAD_DEADLINE_S)
        assert "now the sequencer" not in second.log(), "the second process must be standing by"
        first.kill9()  # the integrating process, mid-load
        killed_at = time.monotonic()
        wait_for(lambda: sum(t > killed_at for _, _, t in loads[1].receipts) >= RECEIPTS_AFTER_KILL,
                 "receipts from the survivor after the kill", LOAD_DEADLINE_S)
        for load in loads:
            load.join()
        assert "now the sequencer" in second.log()
        answered = sorted(t for _, _, t in loads[1].receipts)
        gap = max(b - a for a, b in zip(answered, answered[1:], strict=False) if b > killed_at)

        keys = parse_key_set(httpx.get(f"{second}/.well-known/scitt-keys").content)
        new = verify_checkpoint(httpx.get(f"{second}/checkpoint").text, vkey)
        receipts = [(s, r) for load in loads for s, r, _ in load.receipts]
        indices = set()
        with httpx.Client(timeout=15.0) as client:
            for statement, receipt in receipts:
                verified = verify_receipt(receipt, statement, keys)
                assert verified.tree_size <= new.size
                indices.add(verified.leaf_index)
                again = client.get(f"{second}/entries/{entry_id(leaf_data(decode_sign1(statement)))}")
                assert again.status_code == 200 and again.content == receipt, "a receipt was lost"
            assert len(indices) == len(receipts)
            for statement in loads[1].accepted:  # the survivor queued these durably: they are integrated
                location = f"{second}/entries/{entry_id(leaf_data(decode_sign1(statement)))}"
                wait_for(partial(_answers_200, client, location), "a statement the survivor accepted",
                         LOAD_DEADLINE_S)
                verify_receipt(client.get(location).content, statement, keys)

            new = verify_checkpoint(client.get(f"{second}/checkpoint").text, vkey)
            seen = {c.size: c for load in loads for c in (verify_checkpoint(t, vkey) for t in load.checkpoints)}
            assert len(seen) > 2 and max(seen) <= new.size
            for old in seen.values():
                if old.size:
                    _check_consistent(client, second, old, new)
        print(f"failover: {len(receipts)} receipts; the longest wait between two receipts of the survivor after "
              f"the kill: {gap:.2f} s")
    finally:
        first.kill9()
        second.terminate()


def _check_consistent(client: httpx.Client, url: str, old: Checkpoint, new: Checkpoint) -> None:
    r = client.get(f"{url}/proofs/consistency", params={"old": old.size, "new": new.size})
    assert r.status_code == 200, r.text
    proof = ConsistencyProof.decode(r.content)
    assert (proof.size1, proof.size2) == (old.size, new.size)
    verify_checkpoint_consistency(old, new, proof.path)
