"""The service's start from a snapshot (``transparency.identity``, ``transparency.snapshots``): it folds only the
entries after its newest usable snapshot and ends in the state a full rebuild gives; a missing, corrupt, stale or
foreign snapshot (or outcome store) is rebuilt from the log, and the start says so in one line."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.errors import TabellionError
from tests.property.authority_matrix import PRELUDE, Run
from tests.unit.verifier.state_fields import fields_of
from transparency.client import sign_statement
from transparency.service import TransparencyService
from transparency.settings import Settings
from verifier.did_web import service_signers
from verifier.fold import Fold, FoldEntry, IdentityState

ORIGIN = "snapshots.example/log"


RUN = Run()  # the authority matrix's populated world: accepted and refused statements of every kind


def _statements() -> list[bytes]:
    return [e.statement for e in RUN.world.entries]


def _more() -> list[bytes]:
    """More statements in the same world (its prelude's steps again: new claims, passports, refusals)."""
    before = len(RUN.world.entries)
    for step in PRELUDE:
        RUN.send(step)
    return [e.statement for e in RUN.world.entries[before:]]


@pytest.fixture
def statements() -> list[bytes]:
    return _statements()


def _service(data: Path, every: int = 10_000) -> TransparencyService:
    return TransparencyService(Settings(data_dir=data, origin=ORIGIN, snapshot_every=every, batch_max_wait_ms=0))


def _register(service: TransparencyService, bodies: list[bytes]) -> None:
    async def go() -> None:
        for body in bodies:
            with contextlib.suppress(TabellionError):  # refused by the policy: not logged
                await service.register(body)
    asyncio.run(go())


def _rebuilt(service: TransparencyService) -> IdentityState:
    """The reference: the whole log folded from entry 0."""
    rows = service.reader.entries(0, 1_000_000)
    return Fold(service_signers=service_signers(service.key_set)).apply_all(
        FoldEntry(r.index, r.statement) for r in rows)


@pytest.fixture
def logged(tmp_path: Path, statements: list[bytes]) -> Iterator[Path]:
    """A data folder with a stopped log (its snapshot written at the stop)."""
    data = tmp_path / "data"
    service = _service(data)
    _register(service, statements)
    assert service.identity.size > 10
    service.close()
    yield data


def _start(data: Path, caplog: pytest.LogCaptureFixture) -> tuple[TransparencyService, list[str]]:
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="transparency.identity"):
        service = _service(data)
    return service, [r.getMessage() for r in caplog.records if r.name == "transparency.identity"]


def test_a_restart_folds_nothing_and_keeps_the_state(logged: Path, caplog: pytest.LogCaptureFixture) -> None:
    service, lines = _start(logged, caplog)
    try:
        size = service.identity.size
        assert service.identity.restored_from == size
        assert any(f"snapshot of tree size {size} loaded" in line and "folding the 0 entries" in line for line in lines)
        assert fields_of(service.identity.snapshot()) == fields_of(_rebuilt(service))
        outcomes = _rebuilt(service).outcomes
        assert [service.identity.outcome(i) for i in range(size)] == outcomes
    finally:
        service.close()


def test_an_older_snapshot_plus_the_tail_equals_a_rebuild(
    logged: Path, tmp_path: Path, statements: list[bytes], caplog: pytest.LogCaptureFixture
) -> None:
    older = tmp_path / "older-state"
    shutil.copytree(logged / "state", older)
    service = _service(logged)
    first = service.identity.size
    _register(service, _more())
    grown = service.identity.size
    service.close()
    assert grown > first
    shutil.rmtree(logged / "state")
    shutil.copytree(older, logged / "state")  # the state of the earlier stop, and its outcomes

    service, lines = _start(logged, caplog)
    try:
        assert service.identity.restored_from == first and service.identity.size == grown
        assert any(f"folding the {grown - first} entries" in line for line in lines)
        rebuilt = _rebuilt(service)
        assert fields_of(service.identity.snapshot()) == fields_of(rebuilt)
        assert [service.identity.outcome(i) for i in range(grown)] == rebuilt.outcomes
    finally:
        service.close()


def _flip_a_byte(data: Path) -> None:
    snapshot = sorted((data / "state").glob("fold-*.cbor"))[-1]
    raw = bytearray(snapshot.read_bytes())
    raw[len(raw) // 2] ^= 0x40
    snapshot.write_bytes(bytes(raw))


def _plain() -> bytes:
    """A general SCITT statement by a fresh did:key."""
    key = Ed25519PrivateKey.generate()
    return sign_statement(key, b"{}", subject="did:example:x", content_type="application/json")


def _take_state(data: Path, other: Path) -> None:
    shutil.rmtree(data / "state")
    shutil.copytree(other / "state", data / "state")


def _drop_outcomes(data: Path) -> None:
    for path in (data / "state").glob("outcomes.sqlite*"):
        path.unlink()


@pytest.mark.parametrize(("damage", "says"), [
    (lambda data, other: shutil.rmtree(data / "state"), "no snapshot in"),
    (lambda data, other: _flip_a_byte(data), "SHA-256 digest does not match"),
    (lambda data, other: _drop_outcomes(data), "outcome store holds 0 of the"),
    (lambda data, other: _take_state(data, other / "same-key"), "no signed tree head of size"),
    (lambda data, other: _take_state(data, other / "own-key"), "other service signers"),
])
def test_a_missing_corrupt_or_foreign_snapshot_is_rebuilt_in_one_line(
    logged: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: object, says: str
) -> None:
    other = tmp_path / "other"
    (other / "same-key").mkdir(parents=True)
    shutil.copy(logged / "log-key.pem", other / "same-key" / "log-key.pem")
    for folder in ("same-key", "own-key"):  # other logs of the same origin: the log's key, or their own
        service = _service(other / folder)
        _register(service, [_plain(), *_statements()[:7]])
        service.close()
    damage(logged, other)  # type: ignore[operator]
    service, lines = _start(logged, caplog)
    try:
        assert service.identity.restored_from == 0
        warnings = [line for line in lines if "rebuilding it from the" in line]
        assert len(warnings) == 1 and says in warnings[0], lines
        rebuilt = _rebuilt(service)
        assert fields_of(service.identity.snapshot()) == fields_of(rebuilt)
        assert [service.identity.outcome(i) for i in range(rebuilt.size)] == rebuilt.outcomes
    finally:
        service.close()
    service, lines = _start(logged, caplog)  # and the stop saved a good one again
    try:
        assert service.identity.restored_from == service.identity.size
    finally:
        service.close()


def test_snapshots_are_written_in_the_background_every_k_entries(tmp_path: Path, statements: list[bytes]) -> None:
    data = tmp_path / "data"
    service = _service(data, every=5)
    try:
        _register(service, statements)
        assert service.identity._writer is not None
        service.identity._writer.wait()
        sizes = [int(p.name.split("-")[1]) for p in sorted((data / "state").glob("fold-*.cbor"))]
        assert sizes and all(0 < s <= service.identity.size for s in sizes) and len(sizes) <= 2
    finally:
        service.close()
