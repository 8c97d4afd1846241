"""The verifying log follower against a real server (on both storage backends), and against a log that lies."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from schemas.checkpoint import Checkpoint, parse_checkpoint
from schemas.errors import CheckpointInconsistent
from schemas.note import parse_vkey
from schemas.proofs import ConsistencyProof
from tests.server import ServerUrl, running_server
from transparency.client import HttpLogClient, LogEntry, generate_key, sign_statement
from transparency.client.follower import FollowedEntry, LogFollower
from transparency.keys import load_or_create_log_key
from transparency.receipts import sign_checkpoint
from verifier.keys import parse_key_set
from verifier.notes import verify_note


def _statements(n: int, tag: str) -> list[bytes]:
    key = generate_key()
    return [sign_statement(key, f"{tag} {i}".encode(), subject="follow", content_type="text/plain") for i in range(n)]


def _follower(client: HttpLogClient, applied: list[FollowedEntry]) -> LogFollower:
    def apply(entries: Sequence[FollowedEntry]) -> None:
        applied.extend(entries)

    return LogFollower(client, parse_vkey(client.vkey()), parse_key_set(client.key_set()), apply, page=7)


class LyingLog:
    """A log client that serves the real log, except for the checkpoint it was told to serve."""

    def __init__(self, real: HttpLogClient) -> None:
        self.real = real
        self.forged: str | None = None

    def checkpoint(self, after: int | None = None, wait: float | None = None) -> str:
        return self.forged if self.forged is not None else self.real.checkpoint(after, wait)

    def consistency(self, old: int, new: int) -> ConsistencyProof:
        return self.real.consistency(old, new)

    def entries(self, start: int = 0, limit: int = 100) -> list[LogEntry]:
        return self.real.entries(start, limit)


def _forge(url: ServerUrl, checkpoint: Checkpoint) -> str:
    """A checkpoint signed with the log's own key (as a compromised or buggy log would)."""
    return sign_checkpoint(load_or_create_log_key(url.data_dir / "log-key.pem"), checkpoint)


def test_follows_every_entry_in_order_verified(tmp_path: Path, log_database: str | None) -> None:
    with running_server(tmp_path, database=log_database) as url, HttpLogClient(url) as client:
        first = _statements(23, "first")
        for s in first:
            client.submit(s)
        applied: list[FollowedEntry] = []
        follower = _follower(client, applied)
        assert follower.poll().size == 23
        assert [e.index for e in applied] == list(range(23))
        for s in _statements(9, "second"):
            client.submit(s)
        assert follower.poll().size == 32
        assert [e.index for e in applied] == list(range(32))
        assert follower.poll().size == 32  # nothing new: nothing applied twice
        assert len(applied) == 32


def test_a_rewritten_history_is_never_trusted_again(tmp_path: Path) -> None:
    with running_server(tmp_path) as url, HttpLogClient(url) as client:
        for s in _statements(5, "a"):
            client.submit(s)
        lying = LyingLog(client)
        applied: list[FollowedEntry] = []
        follower = LogFollower(lying, parse_vkey(client.vkey()), parse_key_set(client.key_set()), applied.extend)
        real = follower.poll()
        for s in _statements(3, "b"):
            client.submit(s)
        # a validly signed checkpoint of a larger tree whose root is not an extension of the accepted one
        lying.forged = _forge(url, dataclasses.replace(parse_checkpoint(verify_note(client.checkpoint(), [
            parse_vkey(client.vkey())]).text), root_hash=bytes(32)))
        with pytest.raises(CheckpointInconsistent, match="no longer trusted"):
            follower.poll()
        assert follower.checkpoint == real and len(applied) == 5
        lying.forged = None  # the log goes back to the truth: the follower still refuses
        with pytest.raises(CheckpointInconsistent):
            follower.poll()


def test_a_shrinking_or_forked_tree_is_refused(tmp_path: Path) -> None:
    with running_server(tmp_path) as url, HttpLogClient(url) as client:
        for s in _statements(4, "c"):
            client.submit(s)
        vkey = parse_vkey(client.vkey())
        accepted = parse_checkpoint(verify_note(client.checkpoint(), [vkey]).text)
        for forged in (dataclasses.replace(accepted, size=3), dataclasses.replace(accepted, root_hash=b"\x01" * 32)):
            lying = LyingLog(client)
            follower = LogFollower(lying, vkey, parse_key_set(client.key_set()), lambda entries: None)
            follower.poll()
            lying.forged = _forge(url, forged)
            with pytest.raises(CheckpointInconsistent):
                follower.poll()


def test_long_poll_answers_when_the_log_grows(tmp_path: Path, log_database: str | None) -> None:
    with running_server(tmp_path, database=log_database) as url, HttpLogClient(url) as client:
        client.submit(_statements(1, "first")[0])
        applied: list[FollowedEntry] = []
        follower = _follower(client, applied)
        follower.poll()
        quiet = time.monotonic()
        assert follower.poll(wait=1).size == 1  # nothing new: the log answers when the wait is over
        assert time.monotonic() - quiet >= 0.9
        later = _statements(1, "later")[0]
        def submit_later() -> None:
            with HttpLogClient(url) as other:
                other.submit(later)

        timer = threading.Timer(0.5, submit_later)
        timer.start()
        started = time.monotonic()
        assert follower.poll(wait=20).size == 2  # answered by the growth, long before the 20 s wait
        assert time.monotonic() - started < 15
        timer.join()
        assert [e.index for e in applied] == [0, 1]
