"""Following the log: 503 until a checkpoint is verified, stale state refused, a split view distrusted for good."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.actions import batch_statement, record_payload, record_statement
from gateway.errors import LogTrustFileInvalid
from gateway.state import FollowedLog, changes_identity
from gateway.trust import LogTrust, TrustRecord
from issuer.statements import revocation
from schemas.checkpoint import parse_checkpoint
from schemas.errors import CheckpointInconsistent, LogNotFollowed, LogStale, LogUnreachable, LogUntrusted
from schemas.note import VerifierKey, parse_note, parse_vkey
from tests.clock import Clock
from tests.gateway_world import World, build_world
from tests.log_reads import LogReads
from tests.unit.gateway.allowed_decision import ALLOWED
from transparency.client import did_of, sign_statement
from transparency.client.http import LogEntry
from transparency.client.local import LocalLogClient
from transparency.receipts import sign_checkpoint
from transparency.service import TransparencyService
from transparency.settings import Settings
from transparency.snapshots import decode_snapshot, encode_snapshot
from verifier.fold import IdentityState
from verifier.fold_snapshot import decode_state
from verifier.keys import KeySet, parse_key_set


@pytest.fixture
def service(tmp_path: Path) -> Iterator[TransparencyService]:
    service = TransparencyService(Settings(data_dir=tmp_path, origin="gateway.test/log", batch_max_wait_ms=1.0))
    try:
        yield service
    finally:
        service.close()


def register(service: TransparencyService, *statements: bytes) -> None:
    for statement in statements:
        assert asyncio.run(service.register(statement)).receipt is not None


def followed(service: TransparencyService, clock: Clock | None = None, *, poll_interval: float = 0.15,
             max_staleness: float = 60.0) -> tuple[FollowedLog, LogReads]:
    client = LogReads(LocalLogClient(service))
    log = FollowedLog(client, parse_vkey(client.real.vkey()), parse_key_set(client.real.key_set()),
                      clock=clock or time.monotonic, poll_interval=poll_interval, max_staleness=max_staleness)
    return log, client


def test_nothing_is_decided_before_the_first_verified_checkpoint(service: TransparencyService) -> None:
    world = build_world()
    register(service, *world.statements)
    log, client = followed(service)
    client.down = True
    with pytest.raises(LogNotFollowed), log.snapshot():
        pass
    with pytest.raises(LogUnreachable):
        log.poll()
    client.down = False
    assert log.poll().size == len(world.statements)
    with log.snapshot() as view:
        assert view.state.size == view.position.size == len(world.statements)
        assert world.c.identity in view.state.passports
    assert log.position().origin == "gateway.test/log"


def test_a_state_not_verified_for_too_long_is_refused(service: TransparencyService) -> None:
    clock = Clock()
    log, client = followed(service, clock, max_staleness=5.0)
    log.poll()
    clock.now += 4.9
    assert log.position().age == pytest.approx(4.9)
    clock.now += 0.2
    with pytest.raises(LogStale, match="5.1 s ago"):
        log.position()
    client.down = True
    with pytest.raises(LogUnreachable):
        log.poll()
    client.down = False
    log.poll()
    assert log.position().age == 0


def test_an_inconsistent_checkpoint_is_never_trusted_again(service: TransparencyService) -> None:
    world = build_world()
    register(service, *world.statements[:3])
    log, client = followed(service)
    log.poll()
    register(service, *world.statements[3:])
    real = parse_checkpoint(parse_note(service.checkpoint()).text)
    client.forged = sign_checkpoint(service.key, dataclasses.replace(real, root_hash=bytes(32)))
    with pytest.raises(CheckpointInconsistent):
        log.poll()
    with pytest.raises(LogUntrusted, match="refuses every request"), log.snapshot():
        pass
    client.forged = None  # the log goes back to the truth: still refused, never the old state
    with pytest.raises(CheckpointInconsistent):
        log.poll()
    with pytest.raises(LogUntrusted):
        log.position()


def test_the_thread_folds_new_entries_and_stops_on_a_split_view(
    service: TransparencyService, caplog: pytest.LogCaptureFixture
) -> None:
    world = build_world()
    register(service, *world.statements)
    log, client = followed(service, poll_interval=0.01)
    log.start()
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                if log.position().size == len(world.statements):
                    break
            except LogNotFollowed:
                pass
            time.sleep(0.01)
        register(service, revocation(world.operator, world.c.identity, "privilegeWithdrawn"))
        deadline = time.monotonic() + 5
        while log.position().size <= len(world.statements) and time.monotonic() < deadline:
            time.sleep(0.01)
        with log.snapshot() as view:
            assert world.c.identity in view.state.revoked
        with caplog.at_level(logging.WARNING, logger="gateway.state"):
            client.down = True
            time.sleep(0.1)
            client.down = False
        assert sum("cannot follow the log" in r.getMessage() for r in caplog.records) == 1  # once, not per poll
        real = parse_checkpoint(parse_note(service.checkpoint()).text)
        client.forged = sign_checkpoint(service.key, dataclasses.replace(real, size=real.size - 1))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                log.position()
            except LogUntrusted:
                break
            time.sleep(0.01)
        with pytest.raises(LogUntrusted):
            log.position()
    finally:
        log.stop()


def _fields(state: object) -> dict[str, object]:
    assert isinstance(state, IdentityState)
    return {f.name: getattr(state, f.name) for f in dataclasses.fields(state) if f.name != "outcomes"}


def _six_entries_and_their_snapshot(service: TransparencyService, folder: Path) -> tuple[
        World, LocalLogClient, VerifierKey, KeySet]:
    """The world's first six statements logged, and a gateway's snapshot of them saved in ``folder``."""
    world = build_world()
    register(service, *world.statements[:6])
    client = LocalLogClient(service)
    vkey, keys = parse_vkey(client.vkey()), parse_key_set(client.key_set())
    first = FollowedLog(client, vkey, keys, snapshots=folder)
    assert first.restored_from == 0
    first.poll()
    first.stop()  # saves the state of the 6 entries
    assert len(list(folder.glob("fold-*.cbor"))) == 1
    return world, client, vkey, keys


def test_a_restart_resumes_from_the_gateways_own_snapshot(
    service: TransparencyService, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The gateway keeps snapshots in its data folder: a restart folds only what the log added since; a corrupt one
    is refused in one line and the log folded from its first entry; a split view is not hidden by a snapshot."""
    folder = tmp_path / "gateway-state"
    world, client, vkey, keys = _six_entries_and_their_snapshot(service, folder)

    register(service, *world.statements[6:])
    second = FollowedLog(client, vkey, keys, snapshots=folder)
    assert second.restored_from == 6
    second.poll()
    reference = FollowedLog(client, vkey, keys)
    reference.poll()
    with second.snapshot() as resumed, reference.snapshot() as rebuilt:
        here, there = resumed.position, rebuilt.position
        assert (here.size, here.root_hash) == (there.size, there.root_hash)
        assert _fields(resumed.state) == _fields(rebuilt.state)
    second.stop()

    newest = sorted(folder.glob("fold-*.cbor"))[-1]
    raw = bytearray(newest.read_bytes())
    raw[-40] ^= 1
    newest.write_bytes(bytes(raw))
    with caplog.at_level(logging.INFO, logger="gateway.state"):
        third = FollowedLog(client, vkey, keys, snapshots=folder)
    assert third.restored_from == 6  # the older snapshot, the newer one being corrupt
    for path in folder.glob("fold-*.cbor"):
        path.write_bytes(b"garbage")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="gateway.state"):
        fourth = FollowedLog(client, vkey, keys, snapshots=folder)
    assert fourth.restored_from == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.state"]
    assert len(lines) == 1 and "no usable snapshot" in lines[0] and "digest" in lines[0], lines
    fourth.poll()
    with fourth.snapshot() as view, reference.snapshot() as rebuilt:
        assert _fields(view.state) == _fields(rebuilt.state)


@pytest.mark.parametrize(("altered", "why"), [
    (lambda tree: (bytes(32), *tree[1:]), "its compact range does not hash to its root"),
    (lambda tree: tree[1:], "its compact range of 1 subtree roots is not one of 6 leaves"),
])
def test_a_snapshot_whose_compact_range_is_not_its_trees_is_not_used(
    service: TransparencyService, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    altered: Callable[[tuple[bytes, ...]], tuple[bytes, ...]], why: str,
) -> None:
    """The snapshot's digest and signed checkpoint are whole, but the compact range saved with it is not the tree's:
    the gateway says so in one line and folds the log from its first entry."""
    folder = tmp_path / "gateway-state"
    _, client, vkey, keys = _six_entries_and_their_snapshot(service, folder)
    (path,) = folder.glob("fold-*.cbor")
    key, checkpoint, state, tree = decode_snapshot(path.read_bytes())
    assert len(tree) == 2  # 6 leaves: subtrees of 4 and 2
    path.write_bytes(encode_snapshot(key, checkpoint, decode_state(state), altered(tree)))
    with caplog.at_level(logging.INFO, logger="gateway.state"):
        restarted = FollowedLog(client, vkey, keys, snapshots=folder)
    assert restarted.restored_from == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.state"]
    assert lines == [f"no usable snapshot of the log's state ({path.name}: {why}); folding the log from its "
                     "first entry"], lines
    assert restarted.poll().size == 6


# --- what the data folder remembers (gateway.trust) ------------------------------------------------------


def test_the_pinned_checkpoint_and_a_fork_verdict_survive_a_restart(service: TransparencyService,
                                                                     tmp_path: Path) -> None:
    world = build_world()
    register(service, *world.statements)
    vkey = parse_vkey(LocalLogClient(service).vkey())
    trust = LogTrust(tmp_path / "gw", vkey)

    def restarted() -> tuple[FollowedLog, LogReads]:
        client = LogReads(LocalLogClient(service))
        return FollowedLog(client, vkey, parse_key_set(client.real.key_set()), trust=trust), client

    log, _ = restarted()
    log.poll()
    assert trust.load().checkpoint == service.checkpoint()  # pinned as soon as verified

    # restarted, the log now serves another tree of the same size: caught at the first poll, and written down
    log, client = restarted()
    real = parse_checkpoint(parse_note(service.checkpoint()).text)
    client.forged = sign_checkpoint(service.key, dataclasses.replace(real, root_hash=bytes(32)))
    with pytest.raises(CheckpointInconsistent, match="two different roots"):
        log.poll()
    verdict = trust.load().fork
    assert verdict is not None and "two different roots" in verdict.detail

    # every later start refuses before asking the log anything, even when the log tells the truth again
    log, client = restarted()
    client.forged, client.down = None, True
    with pytest.raises(LogUntrusted, match="found forked"):
        log.position()
    with pytest.raises(CheckpointInconsistent):
        log.poll()
    log.start()  # no thread: nothing the log says is believed
    assert log._thread is None

    event = trust.reset("reviewed: the forged checkpoint came from a test", operator="tester")
    assert event["cleared_fork"]["detail"] == verdict.detail and trust.events() == [event]
    assert trust.load().fork is None and trust.load().checkpoint is None
    log, client = restarted()
    assert log.poll().size == len(world.statements)


def test_a_trust_file_of_another_log_or_unreadable_stops_the_start(service: TransparencyService,
                                                                  tmp_path: Path) -> None:
    other = TransparencyService(Settings(data_dir=tmp_path / "other", origin="other.test/log"))
    try:
        other_vkey = parse_vkey(LocalLogClient(other).vkey())
    finally:
        other.close()
    trust = LogTrust(tmp_path / "gw", parse_vkey(LocalLogClient(service).vkey()))
    trust.pin(service.checkpoint())
    with pytest.raises(LogTrustFileInvalid, match="does not verify"):
        LogTrust(tmp_path / "gw", other_vkey).load()
    trust.path.write_text("{not json")
    with pytest.raises(LogTrustFileInvalid, match="cannot read"):
        trust.load()
    with pytest.raises(LogTrustFileInvalid, match="needs a reason"):
        trust.reset("  ")
    trust.reset("moved to another log")
    assert trust.load() == TrustRecord()


def test_entries_are_checked_against_the_tree_and_action_records_are_not_folded(
    service: TransparencyService, tmp_path: Path
) -> None:
    world = build_world()
    register(service, *world.statements)
    log, client = followed(service)

    class Swapping(LogReads):
        """Serves another (validly signed) statement in place of entry 3."""

        def entries(self, start: int = 0, limit: int = 100) -> list[LogEntry]:
            page = self.real.entries(start, limit)
            return [e._replace(statement=world.statements[0]) if e.leaf_index == 3 else e for e in page]

    swapped = FollowedLog(Swapping(client.real), parse_vkey(client.real.vkey()),
                          parse_key_set(client.real.key_set()))
    with pytest.raises(CheckpointInconsistent, match="do not hash to the checkpoint's root"):
        swapped.poll()
    # a gateway's own action records are on the log; the state folds only what can change identity
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from gateway.actions import record_statement
    payload = {"agent": world.c.identity, "delegation_chain": [], "resource": "inbox/1", "action": "read",
               "decision": "ALLOW", "policy_id": "tabellion:log-state", "request_digest": "sha-256:00", "at": 1}
    register(service, record_statement(Ed25519PrivateKey.generate(), 1, payload))
    checkpoint = log.poll()
    with log.snapshot() as view:
        assert view.position.size == checkpoint.size == len(world.statements) + 1
        assert view.state.size == len(world.statements)  # the record was skipped, not folded


def test_a_snapshot_older_than_the_pinned_checkpoint_resumes_towards_the_pin(service: TransparencyService,
                                                                           tmp_path: Path) -> None:
    """The snapshot says where the fold is; the pinned checkpoint, when newer, is what the log must extend: the
    entries after the snapshot are proved consistent with it, and a tree of the pin's size with another root is a
    fork even though the snapshot predates it."""
    world = build_world()
    register(service, *world.statements[:6])
    client = LocalLogClient(service)
    vkey, keys = parse_vkey(client.vkey()), parse_key_set(client.key_set())
    folder, trust = tmp_path / "gateway-state", LogTrust(tmp_path / "gw", vkey)
    first = FollowedLog(client, vkey, keys, snapshots=folder, trust=trust)
    first.poll()
    first.stop()  # a snapshot of 6 entries, and the pin at 6
    register(service, *world.statements[6:])
    without_snapshots = FollowedLog(client, vkey, keys, trust=trust)
    without_snapshots.poll()  # pins the checkpoint of every entry
    pinned = parse_checkpoint(parse_note(service.checkpoint()).text)
    assert trust.load().checkpoint == service.checkpoint() and pinned.size > 6

    resumed = FollowedLog(client, vkey, keys, snapshots=folder, trust=trust)
    assert resumed.restored_from == 6 and resumed._follower.checkpoint == pinned
    resumed.poll()
    with resumed.snapshot() as view, without_snapshots.snapshot() as rebuilt:
        assert view.position.size == pinned.size
        assert _fields(view.state) == _fields(rebuilt.state)

    lying = LogReads(client)
    lying.forged = sign_checkpoint(service.key, dataclasses.replace(pinned, root_hash=bytes(32)))
    forked = FollowedLog(lying, vkey, keys, snapshots=folder, trust=trust)
    assert forked.restored_from == 6
    with pytest.raises(CheckpointInconsistent, match="two different roots"):  # compared with the pin itself
        forked.poll()


def test_only_statements_that_can_change_identity_are_folded() -> None:
    """Action records, one or a batch of them, and plain SCITT statements are skipped; every identity statement
    is folded (the gateway must not pay to fold its own records back)."""
    world = build_world()
    assert world.statements and all(changes_identity(s) for s in world.statements)
    key = Ed25519PrivateKey.generate()
    payload = record_payload(ALLOWED)
    assert payload is not None
    assert not changes_identity(record_statement(key, 1, payload))
    assert not changes_identity(batch_statement(key, did_of(key), [(1, payload), (2, payload)]))
    assert not changes_identity(sign_statement(key, b"{}", subject="x", content_type="application/json"))
    assert changes_identity(b"not a statement")  # the fold records why it is refused


def test_the_first_poll_after_a_start_does_not_wait_for_the_log_to_grow(service: TransparencyService,
                                                                       tmp_path: Path) -> None:
    """Resumed from a snapshot of the log's current size, a long poll would be held until the log grows: the first
    poll of a start asks for the checkpoint at once, the next ones long-poll."""
    world = build_world()
    register(service, *world.statements)
    client = LocalLogClient(service)
    vkey, keys = parse_vkey(client.vkey()), parse_key_set(client.key_set())
    folder = tmp_path / "gateway-state"
    first = FollowedLog(client, vkey, keys, snapshots=folder)
    first.poll()
    first.stop()

    class Recording(LogReads):
        waits: list[float | None] = []

        def checkpoint(self, after: int | None = None, wait: float | None = None) -> str:
            self.waits.append(wait)
            return super().checkpoint(after, wait)

    recording = Recording(client)
    resumed = FollowedLog(recording, vkey, keys, snapshots=folder, long_poll=5)
    assert resumed.restored_from == len(world.statements)
    resumed.poll()
    resumed.poll()
    assert recording.waits == [None, 5]
