"""``tabellion witness`` as a real process over HTTP: the statuses and bodies of C2SP tlog-witness, the stranger's
attempts, and a crash right after a cosignature (kill -9: what it answered 200 to is on disk)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from schemas import media_types
from schemas.note import Note, parse_note
from schemas.witness import TLOG_SIZE, AddCheckpoint, origin_hash, parse_cosignatures
from tests.witnessing import TestLog, WitnessUrl, running_witness, start_witness, witness_vkey
from verifier.checkpoints import verify_checkpoint
from verifier.notes import verify_cosignature


def _post(url: str, body: bytes) -> httpx.Response:
    return httpx.post(f"{url}/add-checkpoint", content=body, timeout=10)


def _problem(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == media_types.PROBLEM_JSON
    assert json.loads(answer.text)["type"] == f"urn:tabellion:error:{code}"


def _cosignature_of(url: WitnessUrl, answer: httpx.Response, note_text: str) -> int:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    (line,) = parse_cosignatures(answer.content)
    note = parse_note(note_text)
    return verify_cosignature(Note(note.text, (*note.signatures, line)), witness_vkey(url))


def test_add_checkpoint_over_http(tmp_path: Path) -> None:
    log = TestLog("log.test/a")
    log.append(30)
    with running_witness(tmp_path / "w1", "witness.test/w1", [log.vkey]) as url:
        assert _cosignature_of(url, _post(url, log.add_checkpoint(0, 10)), log.signed(10)) > 0
        conflict = _post(url, log.add_checkpoint(4, 20))
        assert conflict.status_code == 409
        assert conflict.headers["content-type"] == TLOG_SIZE
        assert conflict.content == b"10\n"
        assert _cosignature_of(url, _post(url, log.add_checkpoint(10, 20)), log.signed(20)) > 0

        other = TestLog("log.test/unknown")
        other.append(2)
        _problem(_post(url, other.add_checkpoint(0)), 404, "witness-log-unknown")
        stranger = TestLog("log.test/a")  # a stranger with a fresh key, claiming the known origin
        stranger.append(25)
        _problem(_post(url, stranger.add_checkpoint(20, 25)), 403, "witness-checkpoint-untrusted")
        fork = log.fork(15, "fork")
        fork.append(10)
        _problem(_post(url, AddCheckpoint(20, (), fork.signed(20)).encode()), 422, "witness-checkpoint-inconsistent")
        _problem(_post(url, AddCheckpoint(25, (), log.signed(20)).encode()), 400, "witness-old-size-invalid")
        _problem(_post(url, b"old zero\n\n"), 400, "malformed-witness-request")
        _problem(_post(url, b"old 0\n\n" + b"x" * 70_000), 413, "payload-too-large")
        _problem(httpx.get(f"{url}/add-checkpoint"), 405, "method-not-allowed")
        _problem(httpx.get(f"{url}/nothing/here"), 404, "not-found")

        served = httpx.get(f"{url}/{origin_hash(log.origin)}/checkpoint")
        assert served.status_code == 200
        assert verify_checkpoint(served.text, log.vkey) == log.checkpoint(20)  # none of the refused ones
        verify_cosignature(parse_note(served.text), witness_vkey(url))
        _problem(httpx.get(f"{url}/{origin_hash(other.origin)}/checkpoint"), 404, "witness-checkpoint-not-found")
        _problem(httpx.get(f"{url}/NOT-A-HASH/checkpoint"), 400, "malformed-witness-request")


def test_kill9_after_a_cosignature_keeps_it(tmp_path: Path) -> None:
    log = TestLog("log.test/crash")
    log.append(12)
    folder = tmp_path / "w"
    url = start_witness(folder, "witness.test/crash", [log.vkey])
    try:
        assert _post(url, log.add_checkpoint(0, 7)).status_code == 200
        url.kill9()
        url = start_witness(folder, "witness.test/crash", [log.vkey])
        conflict = _post(url, log.add_checkpoint(0, 12))
        assert (conflict.status_code, conflict.content) == (409, b"7\n")
        assert _post(url, log.add_checkpoint(7, 12)).status_code == 200
    finally:
        url.terminate()


def test_vkey_command_prints_the_cosigner_key_and_did(tmp_path: Path) -> None:
    from cli.commands import run

    log = TestLog("log.test/v")
    with running_witness(tmp_path / "w", "witness.test/v", [log.vkey]) as url:
        vkey = witness_vkey(url)
        assert vkey.sig_type == 0x04 and vkey.name == "witness.test/v"
        assert run(["witness", "--config", str(url.config_path), "--vkey"]) == 0


@pytest.mark.parametrize("config", ["name = 'a b'\n[[logs]]\nvkey = 'x'\n", "name = 'w'\n", "name = 'w'\nport = 'x'\n"])
def test_bad_configuration_is_one_line(tmp_path: Path, config: str, capsys: pytest.CaptureFixture[str]) -> None:
    from cli.commands import run

    path = tmp_path / "witness.toml"
    path.write_text(config)
    assert run(["witness", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tabellion: error: ") and err.count("\n") == 1
