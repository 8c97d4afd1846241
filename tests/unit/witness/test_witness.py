"""The witness's add-checkpoint, in-process over a real SQLite file: every status of C2SP tlog-witness, in its
order, and the promise it keeps: never a smaller tree, never another root at the same size."""

from __future__ import annotations

import itertools
import sqlite3
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.checkpoint import Checkpoint
from schemas.errors import MalformedCheckpoint, MalformedNote, MalformedWitnessRequest, NotFound, TabellionError
from schemas.note import Note, NoteSignature, VerifierKey, ed25519_vkey, parse_note
from schemas.witness import AddCheckpoint, origin_hash
from tests.clock import Clock
from tests.witnessing import TestLog, raw_public
from transparency.problem_details import problem_status
from verifier.checkpoints import verify_checkpoint
from verifier.merkle import EMPTY_ROOT
from verifier.notes import verify_cosignature, verify_note
from witness.config import WitnessConfig
from witness.cosigner import Cosigner
from witness.errors import CheckpointNotTrusted, CheckpointRefused, OldSizeConflict, OldSizeInvalid, WitnessLogUnknown
from witness.service import Witness
from witness.store import WitnessStore


def _witness(tmp_path: Path, *logs: TestLog, clock: Clock | None = None, name: str = "witness.test/w1") -> Witness:
    keys: dict[str, list[VerifierKey]] = {}
    for log in logs:
        keys.setdefault(log.origin, []).append(log.vkey)
    config = WitnessConfig(name, tmp_path / "key.pem", tmp_path, {o: tuple(k) for o, k in keys.items()})
    return Witness(config, Cosigner(name, Ed25519PrivateKey.generate()), WitnessStore(config.db_path),
                   clock or Clock(1_700_000_000))


@pytest.fixture
def log() -> TestLog:
    log = TestLog("example.test/log")
    log.append(20)
    return log


def _cosigned(witness: Witness, log: TestLog, body: bytes) -> int:
    """Submit, check the answer is a valid cosignature of the checkpoint, return its timestamp."""
    (line,) = witness.add_checkpoint(body)
    note = parse_note(body.decode().split("\n\n", 1)[1])
    return verify_cosignature(Note(note.text, (*note.signatures, line)), witness.cosigner.vkey)


def test_first_checkpoint_then_growth(tmp_path: Path, log: TestLog) -> None:
    witness = _witness(tmp_path, log)
    assert _cosigned(witness, log, log.add_checkpoint(0, 5)) == 1_700_000_000
    assert _cosigned(witness, log, log.add_checkpoint(5, 13)) > 0
    assert _cosigned(witness, log, log.add_checkpoint(13, 13)) > 0  # the same checkpoint again: cosigned again
    assert _cosigned(witness, log, log.add_checkpoint(13, 20)) > 0
    latest = witness.store.latest(log.origin)
    assert latest is not None and (latest.size, latest.root) == (20, log.checkpoint(20).root_hash)


def test_stored_checkpoint_is_served_with_both_signatures(tmp_path: Path, log: TestLog) -> None:
    witness = _witness(tmp_path, log)
    with pytest.raises(NotFound):
        witness.checkpoint(origin_hash(log.origin))
    witness.add_checkpoint(log.add_checkpoint(0, 7))
    served = witness.checkpoint(origin_hash(log.origin))
    assert verify_checkpoint(served, log.vkey) == log.checkpoint(7)
    verify_cosignature(parse_note(served), witness.cosigner.vkey)
    with pytest.raises(MalformedWitnessRequest):
        witness.checkpoint(origin_hash(log.origin).upper())


def test_only_the_trusted_log_signatures_are_kept(tmp_path: Path, log: TestLog) -> None:
    witness = _witness(tmp_path, log)
    stranger = NoteSignature("stranger.test", b"\x01\x02\x03\x04", bytes(64))
    note = log.sign(log.checkpoint(4), stranger)
    witness.add_checkpoint(AddCheckpoint(0, (), note).encode())
    kept = parse_note(witness.checkpoint(origin_hash(log.origin)))
    assert [s.name for s in kept.signatures] == [log.origin, witness.cosigner.name]


def test_unknown_origin_is_404(tmp_path: Path, log: TestLog) -> None:
    witness = _witness(tmp_path, log)
    other = TestLog("other.test/log")
    other.append(3)
    with pytest.raises(WitnessLogUnknown) as caught:
        witness.add_checkpoint(other.add_checkpoint(0))
    assert problem_status(caught.value) == 404


def test_untrusted_signatures_are_403(tmp_path: Path, log: TestLog) -> None:
    witness = _witness(tmp_path, log)
    impostor = TestLog(log.origin)  # same origin, another key
    impostor.leaves = list(log.leaves)
    cases = [
        impostor.add_checkpoint(0, 5),  # no signature by a trusted key
        AddCheckpoint(0, (), _flip_signature(log.signed(5))).encode(),  # the trusted key's signature fails
        # a good signature and a bad one by the same trusted key: the note is refused
        AddCheckpoint(0, (), log.sign(log.checkpoint(5), _bad_line(log))).encode(),
    ]
    for body in cases:
        with pytest.raises(CheckpointNotTrusted) as caught:
            witness.add_checkpoint(body)
        assert problem_status(caught.value) == 403
    assert witness.store.latest(log.origin) is None


def _flip_signature(note_text: str) -> str:
    note = parse_note(note_text)
    (sig,) = note.signatures
    flipped = bytearray(sig.signature)
    flipped[5] ^= 1
    return Note(note.text, (NoteSignature(sig.name, sig.key_id, bytes(flipped)),)).encode()


def _bad_line(log: TestLog) -> NoteSignature:
    return NoteSignature(log.vkey.name, log.vkey.key_id, bytes(64))


def test_malformed_is_400(tmp_path: Path, log: TestLog) -> None:
    witness = _witness(tmp_path, log)
    with pytest.raises(MalformedWitnessRequest):
        witness.add_checkpoint(b"old x\n\n" + log.signed(3).encode())
    with pytest.raises(MalformedNote):
        witness.add_checkpoint(b"old 0\n\n" + log.checkpoint(3).body().encode())
    body = log.checkpoint(3).body().replace("\n3\n", "\n03\n", 1)  # a size with a leading zero, signed
    signed = Note(body, (NoteSignature(log.origin, log.vkey.key_id, log.private.sign(body.encode())),)).encode()
    with pytest.raises(MalformedCheckpoint):
        witness.add_checkpoint(b"old 0\n\n" + signed.encode())


def test_old_size_above_the_checkpoint_is_400(tmp_path: Path, log: TestLog) -> None:
    witness = _witness(tmp_path, log)
    witness.add_checkpoint(log.add_checkpoint(0, 10))
    with pytest.raises(OldSizeInvalid) as caught:
        witness.add_checkpoint(AddCheckpoint(10, (), log.signed(5)).encode())  # a smaller tree than cosigned
    assert problem_status(caught.value) == 400


def test_stale_old_size_is_409_with_the_known_size(tmp_path: Path, log: TestLog) -> None:
    witness = _witness(tmp_path, log)
    with pytest.raises(OldSizeConflict) as caught:
        witness.add_checkpoint(log.add_checkpoint(3, 5))  # the witness has nothing: its size is 0
    assert caught.value.known_size == 0
    witness.add_checkpoint(log.add_checkpoint(0, 8))
    for old, new in ((0, 12), (5, 12), (9, 12), (0, 8), (0, 3)):
        with pytest.raises(OldSizeConflict) as caught:
            witness.add_checkpoint(log.add_checkpoint(old, new))
        assert (caught.value.known_size, problem_status(caught.value)) == (8, 409)
    latest = witness.store.latest(log.origin)
    assert latest is not None and latest.size == 8


def test_inconsistent_checkpoints_are_422_and_a_fork_is_kept_as_evidence(tmp_path: Path, log: TestLog) -> None:
    witness = _witness(tmp_path, log)
    witness.add_checkpoint(log.add_checkpoint(0, 8))
    fork = log.fork(6, "fork")
    fork.append(14)
    good = log.proof(8, 12)
    cases = [
        ("a fork at the same size", fork.add_checkpoint(8, 8)),
        ("a fork that does not extend", AddCheckpoint(8, log.proof(8, 12), fork.signed(12)).encode()),
        ("a proof with a hash changed", AddCheckpoint(8, (good[0], bytes(32), *good[2:]), log.signed(12)).encode()),
        ("a proof too short", AddCheckpoint(8, good[:-1], log.signed(12)).encode()),
        ("a proof at the same size", AddCheckpoint(8, (bytes(32),), log.signed(8)).encode()),
    ]
    for what, body in cases:
        with pytest.raises(CheckpointRefused) as caught:
            witness.add_checkpoint(body)
        assert problem_status(caught.value) == 422, what
    latest = witness.store.latest(log.origin)
    assert latest is not None and (latest.size, latest.root) == (8, log.checkpoint(8).root_hash)
    (evidence,) = witness.store.refused(log.origin)  # only the fork at the cosigned size proves itself
    assert verify_checkpoint(evidence.checkpoint, log.vkey) == fork.checkpoint(8)  # signed by the log: proof


def test_proof_from_zero_must_be_empty_and_empty_tree_has_the_empty_root(tmp_path: Path, log: TestLog) -> None:
    witness = _witness(tmp_path, log)
    with pytest.raises(CheckpointRefused):
        witness.add_checkpoint(AddCheckpoint(0, (bytes(32),), log.signed(5)).encode())
    bad_empty = log.sign(Checkpoint(log.origin, 0, bytes(32)))
    with pytest.raises(CheckpointRefused):
        witness.add_checkpoint(AddCheckpoint(0, (), bad_empty).encode())
    witness.add_checkpoint(log.add_checkpoint(0, 0))  # the real empty tree is cosigned
    latest = witness.store.latest(log.origin)
    assert latest is not None and (latest.size, latest.root) == (0, EMPTY_ROOT)


def test_extension_lines_are_cosigned(tmp_path: Path, log: TestLog) -> None:
    witness = _witness(tmp_path, log)
    note = log.sign(log.checkpoint(5, ("ext one", "ext two")))
    (line,) = witness.add_checkpoint(AddCheckpoint(0, (), note).encode())
    parsed = parse_note(note)
    verify_cosignature(Note(parsed.text, (line,)), witness.cosigner.vkey)


def test_two_keys_for_one_log(tmp_path: Path, log: TestLog) -> None:
    rotated = TestLog(log.origin)
    rotated.leaves = list(log.leaves)
    witness = _witness(tmp_path, log, rotated)
    witness.add_checkpoint(log.add_checkpoint(0, 5))
    witness.add_checkpoint(rotated.add_checkpoint(5, 9))


def test_timestamps_never_go_back(tmp_path: Path, log: TestLog) -> None:
    clock = Clock(1_700_000_100)
    witness = _witness(tmp_path, log, clock=clock)
    assert _cosigned(witness, log, log.add_checkpoint(0, 5)) == 1_700_000_100
    clock.now = 1_600_000_000  # the machine's clock jumps back
    assert _cosigned(witness, log, log.add_checkpoint(5, 9)) == 1_700_000_100


def test_persisted_across_reopen(tmp_path: Path, log: TestLog) -> None:
    witness = _witness(tmp_path, log)
    witness.add_checkpoint(log.add_checkpoint(0, 11))
    witness.store.close()
    again = _witness(tmp_path, log)
    with pytest.raises(OldSizeConflict) as caught:
        again.add_checkpoint(log.add_checkpoint(0, 12))
    assert caught.value.known_size == 11


def test_the_store_itself_refuses_a_rollback(tmp_path: Path, log: TestLog) -> None:
    witness = _witness(tmp_path, log)
    witness.add_checkpoint(log.add_checkpoint(0, 11))
    for sql in ("UPDATE cosigned SET size = 10", "UPDATE cosigned SET root = zeroblob(32)", "DELETE FROM cosigned"):
        with pytest.raises(sqlite3.IntegrityError):
            witness.store.conn.execute(sql)


def test_concurrent_submissions_of_one_old_size_cosign_once(tmp_path: Path, log: TestLog) -> None:
    """Check and write are one transaction: of many racing requests from size 4, exactly one is cosigned."""
    witness = _witness(tmp_path, log)
    witness.add_checkpoint(log.add_checkpoint(0, 4))
    bodies = [log.add_checkpoint(4, size) for size in range(5, 21)]
    outcomes: list[str] = []
    lock = threading.Lock()

    def submit(body: bytes) -> None:
        try:
            witness.add_checkpoint(body)
            result = "ok"
        except OldSizeConflict:
            result = "409"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=submit, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["409"] * (len(bodies) - 1) + ["ok"]


def test_a_log_key_that_is_also_named_as_another_origin_is_not_trusted_for_it(tmp_path: Path) -> None:
    """The key for origin A signs a checkpoint for origin B: B's keys decide, so it is refused."""
    a = TestLog("a.test/log")
    b = TestLog("b.test/log")
    witness = _witness(tmp_path, a, b)
    forged = TestLog("b.test/log", a.private)
    forged.append(3)
    with pytest.raises(CheckpointNotTrusted):
        witness.add_checkpoint(forged.add_checkpoint(0))
    assert ed25519_vkey("b.test/log", raw_public(a.private)) != b.vkey


def test_answer_is_a_single_cosignature_line_verifiable_with_note_tools(tmp_path: Path, log: TestLog) -> None:
    witness = _witness(tmp_path, log)
    note = log.signed(6)
    (line,) = witness.add_checkpoint(AddCheckpoint(0, (), note).encode())
    parsed = parse_note(note)
    merged = Note(parsed.text, (*parsed.signatures, line)).encode()
    # the log key alone, the witness key alone, both: signed-note verification ignores unknown keys
    for keys in ([log.vkey], [witness.cosigner.vkey], [log.vkey, witness.cosigner.vkey]):
        assert verify_note(merged, keys).text == parsed.text


_RUNS = itertools.count()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(4, 20), kind=st.integers(0, 3), data=st.data())
def test_no_input_is_a_server_error(tmp_path: Path, log: TestLog, size: int, kind: int, data: st.DataObject) -> None:
    """Random bodies, and real ones cut or with a byte changed: every refusal is a TabellionError below 500,
    and nothing refused changes what the witness holds."""
    real = log.add_checkpoint(4, size)
    if kind == 0:
        body = data.draw(st.binary(max_size=400))
    elif kind == 1:
        body = real[:data.draw(st.integers(0, len(real)))]
    elif kind == 2:
        i = data.draw(st.integers(0, len(real) - 1))
        body = real[:i] + bytes([data.draw(st.integers(0, 255))]) + real[i + 1:]
    else:
        body = f"old {data.draw(st.integers(0, 2**64 + 5))}\n\n".encode() + real.split(b"\n\n", 1)[1]
    witness = _witness(tmp_path / f"run{next(_RUNS)}", log)
    witness.add_checkpoint(log.add_checkpoint(0, 4))
    try:
        witness.add_checkpoint(body)
    except TabellionError as exc:
        assert problem_status(exc) < 500, exc
        latest = witness.store.latest(log.origin)
        assert latest is not None and latest.size == 4
    finally:
        witness.store.close()


def test_a_stranger_cannot_flush_the_evidence_of_a_fork(
    tmp_path: Path, log: TestLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anyone may replay a checkpoint the log signed, with a proof of its own making. Such a refusal proves nothing
    about the log (the proof, not the checkpoint, may be wrong), so it is not kept: else a stranger (or the log
    hiding its fork) could push a fork's signed checkpoint out of the bounded evidence with junk proofs, and the
    log's honest checkpoints would stand there as if they were forks."""
    monkeypatch.setattr("witness.store.MAX_REFUSED", 3)
    witness = _witness(tmp_path, log)
    witness.add_checkpoint(log.add_checkpoint(0, 8))
    fork = log.fork(6, "fork")
    fork.append(14)
    with pytest.raises(CheckpointRefused):
        witness.add_checkpoint(fork.add_checkpoint(8, 8))  # another root at the cosigned size: proof by itself
    good = log.proof(8, 12)
    for junk in range(5):  # the log's own checkpoints, each with a junk proof
        with pytest.raises(CheckpointRefused):
            witness.add_checkpoint(AddCheckpoint(8, (bytes([junk]) * 32, *good[1:]), log.signed(12 + junk)).encode())
        with pytest.raises(CheckpointRefused):
            witness.add_checkpoint(AddCheckpoint(8, (bytes([junk]) * 32,), log.signed(8)).encode())
    evidence = witness.store.refused(log.origin)
    assert [verify_checkpoint(e.checkpoint, log.vkey) for e in evidence] == [fork.checkpoint(8)]
    latest = witness.store.latest(log.origin)
    assert latest is not None and (latest.size, latest.root) == (8, log.checkpoint(8).root_hash)
