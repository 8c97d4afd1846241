"""Snapshots of the fold's state (``verifier.fold_snapshot``, ``transparency.snapshots``): a snapshot plus the tail
of the log equals a full rebuild, for random logs and random snapshot points; a corrupt or mismatched snapshot is
detected, and a state body of the wrong shapes is refused.

The random logs are the authority matrix's (``tests/property/authority_matrix.py``): many actors sending
consents, passports, delegations, claims, decisions with passkeys, enrolments and revocations, accepted and
refused. The reference is the fold itself, from entry 0, on the same entries.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.errors import SnapshotUnusable
from tests.property.authority_matrix import Run, steps
from tests.unit.verifier.identity_world import World
from tests.unit.verifier.state_fields import fields_of
from tests.unit.verifier.tpm_enrolment_world import TpmWorld, root_pem
from transparency.snapshots import SnapshotKey, SnapshotStore, decode_snapshot, encode_snapshot
from verifier.did_web import did_web_url
from verifier.fold import Fold, FoldEntry, key_digest
from verifier.fold_snapshot import _NAMES, copy_state, decode_state, encode_state

EXAMPLES = int(os.environ.get("SNAPSHOT_EXAMPLES", "60"))
SIGNERS = frozenset({"did:key:z6MkLogService"})


def random_log(plan: list[tuple[Any, ...]]) -> list[FoldEntry]:
    run = Run()
    for step in plan:
        run.send(step)
    return [FoldEntry(e.index, e.statement) for e in run.world.entries]


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(steps, st.floats(0, 1))
def test_snapshot_plus_tail_equals_a_full_rebuild(plan: list[tuple[Any, ...]], point: float) -> None:
    entries = random_log(plan)
    full = Fold(service_signers=SIGNERS).apply_all(entries)
    k = round(point * len(entries))

    head = Fold(service_signers=SIGNERS)
    head.apply_all(entries[:k])
    saved = encode_state(head.state)
    restored = decode_state(saved)
    assert fields_of(restored) == fields_of(head.state) and restored.outcomes == []
    assert encode_state(restored) == saved  # deterministic: the same state encodes to the same bytes

    tail: list[Any] = []
    resumed = Fold(restored, service_signers=SIGNERS, outcomes=tail.append).apply_all(entries[k:])
    assert fields_of(resumed) == fields_of(full)
    assert encode_state(resumed) == encode_state(full)
    assert tail == full.outcomes[k:]


@settings(max_examples=EXAMPLES // 2, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(steps, st.floats(0, 1, exclude_max=True), st.integers(0, 7), st.floats(0, 1, exclude_max=True))
def test_a_corrupt_snapshot_is_detected(plan: list[tuple[Any, ...]], at: float, bit: int, cut_at: float) -> None:
    """Any change to a snapshot file (a flipped bit anywhere, or bytes cut off its end) is refused by its digest.
    (Positions are drawn as fractions of the length: signatures make the length vary from run to run.)"""
    state = Fold(service_signers=SIGNERS).apply_all(random_log(plan))
    key = SnapshotKey.of("log.example", state.size, b"\x01" * 32, SIGNERS)
    good = encode_snapshot(key, "checkpoint", state)
    assert decode_snapshot(good)[0] == key
    flipped = bytearray(good)
    flipped[int(at * len(good))] ^= 1 << bit
    cut = 1 + int(cut_at * len(good))
    for bad in (bytes(flipped), good[:-cut]):
        with pytest.raises(SnapshotUnusable):
            decode_snapshot(bad)


def _leaves(value: Any, path: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    """The paths to every item that is not an array in a decoded state body (arrays all the way down)."""
    if isinstance(value, list):
        return [leaf for i, item in enumerate(value) for leaf in _leaves(item, (*path, i))]
    return [path]


OTHER_TYPES: list[Any] = [7, -1, "x", b"x", None, True, 1.5, [], ["x"], {"k": 1}]


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(steps, st.floats(0, 1, exclude_max=True), st.sampled_from(OTHER_TYPES))
def test_a_state_of_the_wrong_shapes_is_refused(plan: list[tuple[Any, ...]], at: float, other: Any) -> None:
    """A state body that decodes as CBOR but holds a value of another type somewhere (what a digest computed
    over altered bytes would let through) is refused with ``SnapshotUnusable`` (or, where that type fits there,
    decoded): never another error, never a state with a value of the wrong type in a typed field."""
    state = Fold(service_signers=SIGNERS).apply_all(random_log(plan))
    body = cbor2.loads(encode_state(state))
    leaves = _leaves(body)
    path = leaves[int(at * len(leaves))]
    target = body
    for i in path[:-1]:
        target = target[i]
    if not path or type(target[path[-1]]) is type(other):
        return
    target[path[-1]] = other
    try:
        decoded = decode_state(cbor2.dumps(body, string_referencing=True))
    except SnapshotUnusable:
        return
    _check_types(decoded)


def _check_types(value: Any) -> None:
    """Every field of every dataclass in ``value`` annotated as a str, int, bytes or bool holds exactly one."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        hints = typing.get_type_hints(type(value), _NAMES)
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if hints[f.name] in (str, int, bytes, bool):
                assert type(item) is hints[f.name], f"{type(value).__name__}.{f.name} holds {item!r}"
            elif f.name != "outcomes":
                _check_types(item)
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_types(k)
            _check_types(v)
    elif isinstance(value, list | tuple | set):
        for item in value:
            _check_types(item)


def world_with_every_field() -> tuple[list[FoldEntry], frozenset[str]]:
    """A log whose state has every field non-empty: the authority matrix's prelude, then did:web evidence signed
    by the log service and the registration it allows."""
    run = Run()
    run.send(("revoke-entry", "rightful", "delegation", 0))
    world: World = run.world
    did = "did:web:bank.example"
    evidence = {"did": did, "url": did_web_url(did), "document_sha256": "ab" * 32, "fetched_at": 1_700_000_000,
                "key": world.mk("bank"), "method": f"{did}#key-1", "relationship": "assertionMethod"}
    world.add("log", "did-web-evidence", evidence, iat=1_700_000_000)
    registration = {"operator": did, "namespace": "bank", "key": world.mk("bank"),
                    "next_key_digest": key_digest(world.mk("bank+1")), "witnesses": [], "witness_threshold": 0}
    world.add("bank", "operator-registration", registration, iss=did, iat=1_700_000_100)
    # hardware-rooted agents: a pinned TPM root, an enrolment under it, a namespace requiring hardware
    world.register("hwop", "hw")
    world.enrol("hwhuman", "hw")
    pem = root_pem()
    world.keys["tpm-agent"] = ec.generate_private_key(ec.SECP256R1())  # type: ignore[assignment]  # as a TPM makes
    anchor = TpmWorld.anchor(world, pem)  # type: ignore[arg-type]
    enrolment = TpmWorld.enrolment_payload(world, anchor, pem, agent="tpm-agent", operator="hwop",  # type: ignore[arg-type]
                                           human="hwhuman", namespace="hw")
    world.add("log", "agent-enrolment", enrolment)
    world.add("hwop", "namespace-policy", {"namespace": "hw", "require_hardware": True})
    return [FoldEntry(e.index, e.statement) for e in world.entries], frozenset({world.did("log")})


def test_every_field_round_trips() -> None:
    entries, signers = world_with_every_field()
    state = Fold(service_signers=signers).apply_all(entries)
    empty = [name for name, value in fields_of(state).items() if not value]
    assert not empty, f"the test log leaves {empty} empty: extend it so that every field is exercised"
    restored = decode_state(encode_state(state))
    assert fields_of(restored) == fields_of(state)
    assert dataclasses.replace(restored, outcomes=state.outcomes) == state
    copied = copy_state(state)
    assert fields_of(copied) == fields_of(state)
    Fold(state, service_signers=signers).apply_all([])  # the copy is independent of later changes:
    state.delegations_to[next(iter(state.delegations_to))].append("x")
    state.delegation_contents.add(b"x")
    assert fields_of(copied) != fields_of(state)


def test_a_snapshot_of_another_log_code_or_signers_is_refused(tmp_path: Path) -> None:
    entries, signers = world_with_every_field()
    state = Fold(service_signers=signers).apply_all(entries)
    store = SnapshotStore(tmp_path)
    key = SnapshotKey.of("log.example", state.size, b"\x02" * 32, signers)
    store.save(key, "checkpoint", state)

    def accept(_key: SnapshotKey, _checkpoint: str) -> None:
        return None

    loaded = store.load(store.files()[0], key, accept)
    assert fields_of(loaded.state) == fields_of(state) and loaded.key == key
    for other, why in (
        (dataclasses.replace(key, origin="other.example"), "of the log"),
        (dataclasses.replace(key, verifier="00" * 32), "other verifier code"),
        (SnapshotKey.of("log.example", state.size, b"\x02" * 32, SIGNERS), "other service signers"),
    ):
        snapshot, reason = store.newest(other, accept)
        assert snapshot is None and why in reason, reason

    def other_head(_key: SnapshotKey, _checkpoint: str) -> None:
        raise SnapshotUnusable("the log has no signed tree head of that size with its root")

    snapshot, reason = store.newest(key, other_head)
    assert snapshot is None and "no signed tree head" in reason
    # saving keeps the newest two, largest tree size first; a temporary file never lingers, not even one that a
    # killed writer left behind
    (tmp_path / ".fold-killed.tmp").write_bytes(b"half a snapshot")
    for size in (state.size + 1, state.size + 2):
        store.save(dataclasses.replace(key, tree_size=size), "checkpoint", state)
    assert [int(p.name.split("-")[1]) for p in store.files()] == [state.size + 2, state.size + 1]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in store.files())
