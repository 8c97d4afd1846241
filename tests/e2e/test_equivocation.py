"""An equivocating log (one key, fork A shown to one party, fork B to another) against three real witnesses and
``tabellion monitor``: the witnesses refuse the second history (409 or 422), and the monitor that was shown it
exits 3 with both signed checkpoints as evidence, written to a file and POSTed to a webhook."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from cli.commands import run
from schemas.note import VerifierKey, parse_note, parse_vkey
from schemas.witness import AddCheckpoint
from tests.equivocating_log import EquivocatingLog
from tests.http_stub import QuietHandler, serving
from tests.witnessing import WitnessUrl, policy_text, start_witness, witness_vkey
from transparency.client.witness import WitnessClient, WitnessRequestRefused, WitnessSizeConflict
from verifier.checkpoints import verify_checkpoint
from verifier.notes import verify_cosignature

ORIGIN = "evil.test/log"


class Hook(QuietHandler):
    received: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server hook
        Hook.received.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(204)
        self.end_headers()


@contextmanager
def webhook() -> Iterator[str]:
    Hook.received = []
    with serving(Hook) as base:
        yield f"{base}/evidence"


@contextmanager
def three_witnesses(tmp_path: Path, log: EquivocatingLog) -> Iterator[list[WitnessUrl]]:
    witnesses: list[WitnessUrl] = []
    try:
        for i in range(3):
            witnesses.append(start_witness(tmp_path / f"w{i}", f"witness{i}.test/w", [log.a.vkey]))
        yield witnesses
    finally:
        for w in witnesses:
            w.terminate()


def _policy(tmp_path: Path, log: EquivocatingLog, witnesses: list[WitnessUrl] | None) -> Path:
    entries = [(f"w{i}", witness_vkey(w), str(w)) for i, w in enumerate(witnesses or [])]
    path = tmp_path / "monitor.policy"
    text = policy_text(log.a.vkey, entries, 2) if entries else f"log {log.a.vkey.encode()}\nquorum none\n"
    path.write_text(text)
    return path


@pytest.mark.parametrize("size_b", [9, 12], ids=["same size", "fork B larger"])
def test_witnesses_refuse_and_the_monitor_catches_the_second_history(
    tmp_path: Path, size_b: int, capsys: pytest.CaptureFixture[str]
) -> None:
    log = EquivocatingLog(ORIGIN, common=5, size=9, size_b=size_b)
    with three_witnesses(tmp_path, log) as witnesses, log.serving() as (party_a, party_b), webhook() as hook:
        # the log has fork A cosigned: what it shows party A
        for w in witnesses:
            with WitnessClient(str(w), witness_vkey(w)) as client:
                client.add_checkpoint(AddCheckpoint(0, (), log.a.signed()))
        # then asks for fork B: every witness refuses, whatever old size it claims
        for w in witnesses:
            with WitnessClient(str(w), witness_vkey(w)) as client:
                with pytest.raises(WitnessSizeConflict) as conflict:
                    client.add_checkpoint(AddCheckpoint(0, (), log.b.signed()))
                assert conflict.value.known_size == 9
                proof = log.b.proof(9, size_b)
                with pytest.raises(WitnessRequestRefused) as refused:
                    client.add_checkpoint(AddCheckpoint(9, proof, log.b.signed()))
                assert refused.value.answer_status == 422
                assert not isinstance(refused.value, WitnessSizeConflict)

        policy = _policy(tmp_path, log, witnesses)
        # party A's monitor: the log and the witnesses agree
        assert run(["monitor", "--policy", str(policy), "--log", party_a, "--once",
                    "--state", str(tmp_path / "a.state")]) == 0
        # party B's monitor: the witnesses cosigned another history; exit 3, evidence to a file and the webhook
        evidence_file = tmp_path / "evidence.json"
        assert run(["monitor", "--policy", str(policy), "--log", party_b, "--once",
                    "--evidence", str(evidence_file), "--webhook", hook]) == 3
        assert "EQUIVOCATION" in capsys.readouterr().err
        evidence = json.loads(evidence_file.read_text())
        assert json.loads(Hook.received[0]) == evidence
        _check_evidence(evidence, [witness_vkey(w) for w in witnesses])


def test_monitors_compare_notes_with_each_other(tmp_path: Path) -> None:
    """No witness at all: the monitor shown fork B reads what the monitor shown fork A published."""
    log = EquivocatingLog(ORIGIN, common=3, size=7)
    with log.serving() as (party_a, party_b):
        policy = _policy(tmp_path, log, None)
        published = tmp_path / "monitor-a.checkpoint"
        assert run(["monitor", "--policy", str(policy), "--log", party_a, "--once", "--state", str(published)]) == 0
        assert verify_checkpoint(published.read_text(), log.a.vkey) == log.a.checkpoint()
        evidence_file = tmp_path / "evidence.json"
        assert run(["monitor", "--policy", str(policy), "--log", party_b, "--once", "--peer", str(published),
                    "--evidence", str(evidence_file)]) == 3
        _check_evidence(json.loads(evidence_file.read_text()), [])
        # and a monitor kept across runs catches a log that switches the history it shows
        state = tmp_path / "switch.state"
        assert run(["monitor", "--policy", str(policy), "--log", party_a, "--once", "--state", str(state)]) == 0
        assert run(["monitor", "--policy", str(policy), "--log", party_b, "--once", "--state", str(state),
                    "--evidence", str(evidence_file)]) == 3


def _check_evidence(evidence: dict[str, Any], witness_keys: list[VerifierKey]) -> None:
    """What a third party checks offline with nothing but the log's key (and the witnesses' keys)."""
    assert evidence["type"] == "tabellion-log-equivocation" and evidence["origin"] == ORIGIN
    key = parse_vkey(evidence["log_key"])
    first, second = (verify_checkpoint(c["note"], key) for c in evidence["checkpoints"])
    assert first.root_hash != second.root_hash
    if first.size == second.size:
        assert "different roots" in evidence["reason"]
    else:
        assert evidence["consistency"]["old"] == min(first.size, second.size)
    if witness_keys:  # one of the two is what a witness cosigned: its cosignature verifies under its key
        witnessed = next(c for c in evidence["checkpoints"] if c["source"].startswith("witness"))
        note = parse_note(witnessed["note"])
        signer = next(k for k in witness_keys if any(s.key_id == k.key_id for s in note.signatures))
        assert verify_cosignature(note, signer) > 0
