"""Nothing is lost on a crash: kill -9 the server mid-load, restart it, and check every receipt and checkpoint;
on both storage backends (``log_database``: SQLite, or a PostgreSQL database that outlives the killed server)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.checkpoint import Checkpoint
from schemas.cose_sign1 import decode_sign1
from schemas.leaf import entry_id, leaf_data
from schemas.note import parse_vkey
from schemas.proofs import ConsistencyProof
from tests.cose_builder import sign1
from tests.server import start_server
from verifier.checkpoints import verify_checkpoint, verify_checkpoint_consistency
from verifier.keys import parse_key_set
from verifier.receipts import verify_receipt

COSE = {"Content-Type": "application/cose"}
WORKERS = 4
RECEIPTS_BEFORE_KILL = 150
LOAD_DEADLINE_S = 60.0


def test_kill9_mid_load_keeps_every_receipt_and_checkpoint(tmp_path: Path, log_database: str | None) -> None:
    key = Ed25519PrivateKey.generate()
    server = start_server(tmp_path, database=log_database)
    vkey = parse_vkey(httpx.get(f"{server}/log/vkey").text)
    receipts: list[tuple[bytes, bytes]] = []
    checkpoints: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def submitter(worker: int) -> None:
        with httpx.Client(timeout=10.0) as client:
            for n in range(1_000_000):
                if stop.is_set():
                    return
                statement = sign1(key, None, payload=b'{"worker":%d,"n":%d}' % (worker, n))
                try:
                    r = client.post(f"{server}/entries", content=statement, headers=COSE)
                except httpx.HTTPError:
                    return  # the server died under us: this statement has no receipt, so it may be lost
                if r.status_code == 201:
                    with lock:
                        receipts.append((statement, r.content))

    def watcher() -> None:
        with httpx.Client(timeout=10.0) as client:
            while not stop.is_set():
                try:
                    checkpoints.append(client.get(f"{server}/checkpoint").text)
                except httpx.HTTPError:
                    return
                time.sleep(0.02)

    threads = [threading.Thread(target=submitter, args=(w,)) for w in range(WORKERS)]
    threads.append(threading.Thread(target=watcher))
    for t in threads:
        t.start()
    deadline = time.monotonic() + LOAD_DEADLINE_S
    while len(receipts) < RECEIPTS_BEFORE_KILL and time.monotonic() < deadline:
        time.sleep(0.01)
    server.kill9()  # while the submitters are still sending
    stop.set()
    for t in threads:
        t.join(15)
    assert len(receipts) >= RECEIPTS_BEFORE_KILL, "the load never reached the kill point"

    restarted = start_server(tmp_path, data_dir=server.data_dir, database=log_database)
    try:
        keys = parse_key_set(httpx.get(f"{restarted}/.well-known/scitt-keys").content)
        new = verify_checkpoint(httpx.get(f"{restarted}/checkpoint").text, vkey)
        indices = set()
        for statement, receipt in receipts:
            verified = verify_receipt(receipt, statement, keys)
            assert verified.tree_size <= new.size
            indices.add(verified.leaf_index)
            again = httpx.get(f"{restarted}/entries/{entry_id(leaf_data(decode_sign1(statement)))}")
            assert again.status_code == 200
            assert again.content == receipt
        assert len(indices) == len(receipts)

        seen = [verify_checkpoint(text, vkey) for text in checkpoints]
        assert seen, "no checkpoint was observed before the kill"
        for old in {c.size: c for c in seen if c.size > 0}.values():
            _check_consistent(restarted, old, new)
    finally:
        restarted.terminate()


def _check_consistent(url: str, old: Checkpoint, new: Checkpoint) -> None:
    r = httpx.get(f"{url}/proofs/consistency", params={"old": old.size, "new": new.size})
    assert r.status_code == 200, r.text
    proof = ConsistencyProof.decode(r.content)
    assert (proof.size1, proof.size2) == (old.size, new.size)
    verify_checkpoint_consistency(old, new, proof.path)
