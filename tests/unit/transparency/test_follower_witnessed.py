"""The follower under a witness policy, in-process over a real log: only witnessed checkpoints are accepted and
their entries applied; a log ahead of its quorum for longer than the grace is ``log-unwitnessed``; steady
progress never is; a witnessed checkpoint that the latest does not extend is a split view."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.shared import SharedLogView, ViewPublisher
from gateway.state import FollowedLog
from schemas.checkpoint import Checkpoint
from schemas.errors import CheckpointInconsistent, ConfigurationError, LogUnwitnessed, MalformedPolicy
from schemas.note import Note, ed25519_vkey, parse_note, parse_vkey
from schemas.policy import Policy, parse_policy
from tests.clock import Clock
from tests.log_reads import LogReads
from tests.witnessing import policy_text
from transparency.client import generate_key, sign_statement
from transparency.client.follower import FollowedEntry, LogFollower
from transparency.client.local import LocalLogClient
from transparency.keys import load_or_create_log_key
from transparency.problem_details import problem_status
from transparency.receipts import sign_checkpoint
from transparency.service import TransparencyService
from transparency.settings import Settings
from verifier.keys import parse_key_set
from witness.cosigner import Cosigner

ORIGIN = "follower.test/log"
COSIGNERS = [Cosigner(f"w{i}.test", Ed25519PrivateKey.generate()) for i in range(3)]


class Witnessed(LogReads):
    """The log's reads, plus a witnessed checkpoint the test sets by cosigning one of the log's heads."""

    def __init__(self, service: TransparencyService) -> None:
        super().__init__(LocalLogClient(service))
        self.service = service
        self.witnessed: str | None = None

    def cosign(self, size: int | None = None, by: Sequence[int] = (0, 1, 2)) -> None:
        head = self.service.reader.head(size) if size is not None else self.service.latest_head()
        assert head is not None
        note = parse_note(head.checkpoint)
        lines = tuple(COSIGNERS[i].cosign(note.text, 1_700_000_000) for i in by)
        self.witnessed = Note(note.text, (*note.signatures, *lines)).encode()

    def witnessed_checkpoint(self, after: int | None = None, wait: float | None = None) -> str | None:
        return self.witnessed


@pytest.fixture
def service(tmp_path: Path) -> Iterator[TransparencyService]:
    service = TransparencyService(Settings(data_dir=tmp_path, origin=ORIGIN, batch_max_wait_ms=1.0))
    try:
        yield service
    finally:
        service.close()


def _policy(service: TransparencyService, quorum: int = 2) -> Policy:
    vkey = service.key.note_key(ORIGIN)
    return parse_policy(policy_text(vkey, [(f"w{i}", c.vkey, None) for i, c in enumerate(COSIGNERS)], quorum))


def _register(service: TransparencyService, n: int) -> None:
    key = generate_key()
    for i in range(n):
        statement = sign_statement(key, f"s{i}".encode(), subject="f", content_type="text/plain")
        assert asyncio.run(service.register(statement)).receipt is not None


def _follower(service: TransparencyService, client: Witnessed, clock: Clock, quorum: int = 2
              ) -> tuple[LogFollower, list[FollowedEntry]]:
    applied: list[FollowedEntry] = []
    follower = LogFollower(client, parse_vkey(client.real.vkey()), parse_key_set(client.real.key_set()),
                           applied.extend, policy=_policy(service, quorum), clock=clock)
    return follower, applied


def test_only_witnessed_entries_are_applied(service: TransparencyService) -> None:
    client, clock = Witnessed(service), Clock()
    follower, applied = _follower(service, client, clock)
    _register(service, 3)
    with pytest.raises(LogUnwitnessed, match="no checkpoint witnessed"):
        follower.poll()
    client.cosign(by=(0,))  # one of three: below the quorum
    with pytest.raises(LogUnwitnessed):
        follower.poll()
    client.cosign(by=(0, 2))
    assert follower.poll().size == 3 and len(applied) == 3
    _register(service, 4)
    assert follower.poll().size == 3 and len(applied) == 3  # the log is at 7, the quorum at 3
    assert follower.latest is not None and follower.latest.size == 7
    client.cosign(by=(1, 2))
    assert follower.poll().size == 7 and [e.index for e in applied] == list(range(7))
    assert follower.unwitnessed_for() == 0.0


def test_waiting_longer_than_the_grace_is_unwitnessed(service: TransparencyService) -> None:
    client, clock = Witnessed(service), Clock()
    follower, _ = _follower(service, client, clock)
    _register(service, 2)
    client.cosign()
    follower.poll()
    follower.require_witnessed(5.0)
    _register(service, 1)  # the witnesses go down: nothing cosigns size 3
    for _ in range(10):
        clock.now += 1.0
        follower.poll()
        _register(service, 1)  # and the log keeps growing
    with pytest.raises(LogUnwitnessed, match="has waited 9.0 s"):
        follower.require_witnessed(5.0)
    client.cosign()  # back: the newest is witnessed
    follower.poll()
    follower.require_witnessed(5.0)


def test_steady_progress_never_exceeds_the_grace(service: TransparencyService) -> None:
    """Each poll finds the log one checkpoint ahead of its witnessed one, 1 s later: the wait is always ~1 s."""
    client, clock = Witnessed(service), Clock()
    follower, _ = _follower(service, client, clock)
    _register(service, 1)
    client.cosign()
    follower.poll()
    for _ in range(20):
        witnessed_size = service.latest_head().tree_size
        _register(service, 1)
        clock.now += 1.0
        client.cosign(witnessed_size)
        follower.poll()
        follower.require_witnessed(1.5)


def test_a_latest_checkpoint_that_does_not_extend_the_witnessed_one_is_a_split_view(
    service: TransparencyService, tmp_path: Path
) -> None:
    client, clock = Witnessed(service), Clock()
    follower, _ = _follower(service, client, clock)
    _register(service, 4)
    client.cosign()
    follower.poll()
    key = load_or_create_log_key(tmp_path / "log-key.pem")
    client.forged = sign_checkpoint(key, Checkpoint(ORIGIN, 4, bytes(32)))  # same size, another root
    with pytest.raises(CheckpointInconsistent):
        follower.poll()
    with pytest.raises(CheckpointInconsistent):
        follower.poll()  # for good


def test_more_cosignatures_at_the_same_size_replace_the_accepted_text(service: TransparencyService) -> None:
    client, clock = Witnessed(service), Clock()
    follower, _ = _follower(service, client, clock)
    _register(service, 2)
    client.cosign(by=(0, 1))
    follower.poll()
    client.cosign(by=(0, 1, 2))
    follower.poll()
    assert len(parse_note(follower.checkpoint_text).signatures) == 4


def _ignore(entries: Sequence[FollowedEntry]) -> None:
    pass


def test_policy_must_name_the_followed_log_and_the_client_must_read_witnessed_checkpoints(
    service: TransparencyService,
) -> None:
    client = Witnessed(service)
    vkey, keys = parse_vkey(client.real.vkey()), parse_key_set(client.real.key_set())
    other = parse_policy(f"log {ed25519_vkey('other.test/log', bytes(range(32))).encode()}\nquorum none\n")
    with pytest.raises(MalformedPolicy):
        LogFollower(client, vkey, keys, _ignore, policy=other)
    with pytest.raises(ConfigurationError):
        LogFollower(LogReads(client.real), vkey, keys, _ignore, policy=_policy(service))  # no witnessed reads
    LogFollower(LogReads(client.real), vkey, keys, _ignore)  # without a policy it needs no more


def test_gateway_refuses_with_log_unwitnessed(service: TransparencyService) -> None:
    client, clock = Witnessed(service), Clock()
    log = FollowedLog(client, parse_vkey(client.real.vkey()), parse_key_set(client.real.key_set()), clock=clock,
                      policy=_policy(service), witness_grace=3.0)
    _register(service, 2)
    with pytest.raises(LogUnwitnessed):
        log.poll()
    with pytest.raises(LogUnwitnessed) as caught:
        log.position()
    assert problem_status(caught.value) == 503 and caught.value.code == "log-unwitnessed"
    client.cosign()
    assert log.poll().size == 2 and log.position().size == 2
    _register(service, 1)
    log.poll()
    clock.now += 2.0
    log.poll()
    assert log.position().size == 2  # within the grace: decides on the witnessed state
    clock.now += 2.0
    log.poll()
    with pytest.raises(LogUnwitnessed):
        log.position()
    client.cosign()
    log.poll()
    assert log.position().size == 3


def test_gateway_workers_refuse_with_log_unwitnessed_too(service: TransparencyService, tmp_path: Path) -> None:
    """Several workers: the supervisor follows with the policy and publishes (``gateway.shared``); a worker's view
    refuses as the follower does, before any quorum and once a newer checkpoint waited past the grace (real clock:
    the worker measures the wait itself)."""
    client = Witnessed(service)
    publisher = ViewPublisher(tmp_path)
    log = FollowedLog(client, parse_vkey(client.real.vkey()), parse_key_set(client.real.key_set()),
                      policy=_policy(service), witness_grace=0.3, sink=publisher)
    log.publish()
    view = SharedLogView(tmp_path, 60.0, policy=_policy(service), witness_grace=0.3)
    _register(service, 2)
    with pytest.raises(LogUnwitnessed):
        log.poll()
    with pytest.raises(LogUnwitnessed, match="no checkpoint witnessed") as caught:
        view.position()
    assert problem_status(caught.value) == 503
    client.cosign()
    assert log.poll().size == 2 and view.position().size == 2
    _register(service, 1)
    log.poll()
    assert view.position().size == 2  # within the grace: decides on the witnessed state
    time.sleep(0.4)
    with pytest.raises(LogUnwitnessed, match="has waited"):
        view.position()
    with pytest.raises(LogUnwitnessed), view.snapshot():
        pass
    client.cosign()
    log.poll()
    assert view.position().size == 3
    with view.snapshot() as snapshot:
        assert snapshot.position.size == 3  # plain statements: nothing to fold, the state is empty
    view.close()
    publisher.close()
