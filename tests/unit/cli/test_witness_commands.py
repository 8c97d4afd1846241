"""The witnessing commands' refusals: one line on stderr, exit 2 for a usage error, 1 for a bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.commands import run
from tests.witnessing import TestLog


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.startswith("tabellion: error: ") and err.count("\n") == 1, err
    return err


def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = TestLog("cli.test/log")
    log.append(3)
    checkpoint = tmp_path / "cp.txt"
    checkpoint.write_text(log.signed())
    assert run(["verify", "checkpoint", str(checkpoint)]) == 2
    assert "--log-key" in _one_line(capsys)
    keys = tmp_path / "keys"
    keys.write_bytes(b"")
    assert run(["verify", "receipt", "--log-keys", str(keys), "x.cose", "--checkpoint", str(checkpoint)]) == 2
    assert "go with --policy" in _one_line(capsys)
    assert run(["verify", "receipt", "--log-keys", str(keys), "x.cose", "--policy", str(checkpoint)]) == 2
    assert "--checkpoint" in _one_line(capsys)


def test_bad_policies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = TestLog("cli.test/log")
    log.append(3)
    checkpoint = tmp_path / "cp.txt"
    checkpoint.write_text(log.signed())
    policy = tmp_path / "p.policy"
    policy.write_text("quorum nobody\n")
    assert run(["verify", "checkpoint", str(checkpoint), "--policy", str(policy)]) == 1
    assert "line 1" in _one_line(capsys)
    policy.write_text("quorum none\n")  # no log line and no --log-key
    assert run(["verify", "checkpoint", str(checkpoint), "--policy", str(policy)]) == 1
    _one_line(capsys)
    assert run(["verify", "checkpoint", str(checkpoint), "--policy", str(policy), "--log-key", log.vkey.encode()]) == 0
    assert run(["monitor", "--policy", str(policy), "--once"]) == 1
    assert "lists no log" in _one_line(capsys)
    policy.write_text(f"log {log.vkey.encode()}\nquorum none\n")
    assert run(["monitor", "--policy", str(policy), "--once"]) == 1  # no URL anywhere
    assert "--log" in _one_line(capsys)
