"""The sequencer: batches in one transaction, duplicates get the existing entry, a tampered log refuses to start."""

from __future__ import annotations

import asyncio
import hashlib
import stat
from pathlib import Path
from typing import Any

import pytest

from schemas.errors import ConfigurationError, LogCorrupted, Overloaded
from transparency.keys import load_or_create_log_key
from transparency.log.merkle_tree import PersistentMerkleTree
from transparency.log.reader import LogReader
from transparency.log.resources import LogResources
from transparency.log.sequencer import Integrated, Sequencer
from transparency.settings import load_settings


def _leaf(i: int) -> bytes:
    return hashlib.sha256(b"leaf %d" % i).digest()


def _sequencer(tmp_path: Path, origin: str = "example.com/log", **kw: Any) -> Sequencer:
    key = load_or_create_log_key(tmp_path / "log-key.pem")
    return Sequencer(tmp_path / "log.sqlite", key, origin, **kw)


def test_batch_integrates_once_and_duplicates_share_the_entry(tmp_path: Path) -> None:
    seq = _sequencer(tmp_path, batch_max_entries=64)
    seq.start()
    futures = [seq.submit(_leaf(i % 5), b"statement %d" % (i % 5)) for i in range(20)]
    results = [f.result(10) for f in futures]
    assert {r.index for r in results} == set(range(5))
    for i, r in enumerate(results):
        assert r.leaf_data == _leaf(i % 5)
    again = seq.submit(_leaf(3), b"statement 3").result(10)
    assert again.index == results[3].index and again.tree_size == results[3].tree_size
    seq.stop()
    reader = LogReader(_sequencer(tmp_path).db)
    head = reader.latest_head()
    assert head is not None and head.tree_size == 5
    assert [e.index for e in reader.entries(0, 100)] == [0, 1, 2, 3, 4]


def test_receipts_built_with_the_batch_are_those_the_log_serves(tmp_path: Path) -> None:
    """The sequencer hands each new entry its receipt, from the batch's in-memory paths: byte for byte the receipt
    read back from the stored tree; a statement already logged gets its position and no receipt (read it)."""
    seq = _sequencer(tmp_path, batch_max_entries=7)
    seq.start()
    try:
        results = [f.result(10) for f in [seq.submit(_leaf(i), b"statement %d" % i) for i in range(40)]]
        again = seq.submit(_leaf(11), b"statement 11").result(10)
    finally:
        seq.stop()
    assert len({r.tree_size for r in results}) > 3  # several batches, of several sizes
    reader = LogReader(_sequencer(tmp_path).db)
    resources = LogResources(reader, PersistentMerkleTree(reader.db))
    for r in results:
        assert r.receipt is not None and r.receipt == resources.receipt(r.index, r.tree_size)
    assert again.receipt is None and (again.index, again.tree_size) == (results[11].index, results[11].tree_size)


class _CountingLoop(asyncio.SelectorEventLoop):
    """A real event loop that counts the wake-ups other threads ask of it."""

    woken = 0

    def call_soon_threadsafe(self, callback: Any, *args: Any, context: Any = None) -> asyncio.Handle:  # type: ignore[override]
        self.woken += 1
        return super().call_soon_threadsafe(callback, *args, context=context)


def test_waiting_submitters_are_woken_once_per_batch(tmp_path: Path) -> None:
    """``submit_waiting``: the futures of one batch are settled with one wake-up of their loop, not one each."""
    seq = _sequencer(tmp_path, batch_max_entries=16, batch_max_wait_ms=20)
    seq.start()
    loop = _CountingLoop()

    async def main() -> list[Integrated]:
        return list(await asyncio.gather(*(seq.submit_waiting(_leaf(i), b"s %d" % i) for i in range(48))))

    try:
        results = loop.run_until_complete(main())
    finally:
        loop.close()
        seq.stop()
    assert sorted(r.index for r in results) == list(range(48))
    assert all(r.receipt is not None for r in results)
    batches = len({r.tree_size for r in results})
    assert batches < 48 and loop.woken == batches


def test_empty_log_has_a_signed_head_of_size_zero(tmp_path: Path) -> None:
    seq = _sequencer(tmp_path)
    head = LogReader(seq.db).latest_head()
    assert head is not None and head.tree_size == 0
    assert head.root == hashlib.sha256(b"").digest()
    assert head.checkpoint.startswith("example.com/log\n0\n")


def test_queue_limit_is_overload(tmp_path: Path) -> None:
    seq = _sequencer(tmp_path, queue_limit=2)  # not started: nothing drains the queue
    seq.submit(_leaf(1), b"a")
    seq.submit(_leaf(2), b"b")
    with pytest.raises(Overloaded):
        seq.submit(_leaf(3), b"c")


def test_origin_cannot_change(tmp_path: Path) -> None:
    _sequencer(tmp_path).db.close()
    with pytest.raises(ConfigurationError, match="origin"):
        _sequencer(tmp_path, origin="other.example/log")


def test_a_tampered_tree_refuses_to_start(tmp_path: Path) -> None:
    seq = _sequencer(tmp_path)
    seq.start()
    for i in range(3):
        seq.submit(_leaf(i), b"s").result(10)
    seq.stop()
    seq = _sequencer(tmp_path)
    seq.db.execute("DROP TRIGGER tree_nodes_no_update")
    seq.db.execute("UPDATE tree_nodes SET hash = zeroblob(32) WHERE level = 0 AND idx = 2")
    seq.db.close()
    with pytest.raises(LogCorrupted, match="does not match the latest signed head"):
        _sequencer(tmp_path)


def test_log_key_is_created_once_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "log-key.pem"
    first = load_or_create_log_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_log_key(path).public_bytes == first.public_bytes
    path.write_text("not a key")
    with pytest.raises(ConfigurationError):
        load_or_create_log_key(path)


def test_settings_flags_beat_environment_beat_defaults() -> None:
    env = {"TABELLION_PORT": "9000", "TABELLION_ORIGIN": "env.example/log"}
    s = load_settings({"port": 9100, "origin": None}, env=env)
    assert (s.port, s.origin, s.host) == (9100, "env.example/log", "127.0.0.1")
    with pytest.raises(ConfigurationError):
        load_settings(env={"TABELLION_PORT": "eighty"})
    with pytest.raises(ConfigurationError):
        load_settings({"origin": "has space"}, env={})
    assert load_settings(env={"TABELLION_DATABASE": "postgresql://u@h/db"}).log_location == "postgresql://u@h/db"
    assert load_settings(env={}).log_location == Path("data/log.sqlite")
    with pytest.raises(ConfigurationError, match="postgresql:// URL"):
        load_settings({"database": "mysql://u@h/db"}, env={})


def test_the_head_a_batch_committed_is_the_logs_latest(tmp_path: Path) -> None:
    """``committed_head`` (which the service keeps for GET /checkpoint instead of reading it back) is the row."""
    seq = _sequencer(tmp_path, batch_max_wait_ms=1)
    seq.start()
    try:
        for i in range(3):
            seq.submit(_leaf(i), b"s %d" % i).result(timeout=10)
            assert seq.committed_head == LogReader(seq.db).latest_head()
    finally:
        seq.stop()
