"""The tabellion CLI run in process: its exit code and output, checked as a success or as exactly one error line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from cli.commands import run

Capsys = pytest.CaptureFixture[str]


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


def tabellion(capsys: Capsys, *argv: str | Path) -> Ran:
    code = run([str(a) for a in argv])
    captured = capsys.readouterr()
    return Ran(code, captured.out, captured.err)


def ok(ran: Ran) -> str:
    assert ran.code == 0, ran.err
    return ran.out


def one_line_error(ran: Ran, code: int = 1) -> str:
    """The message of a failed command, after checking it is exactly one line."""
    assert ran.code == code, (ran.out, ran.err)
    assert ran.err.startswith("tabellion: error: "), ran.err
    assert ran.err.count("\n") == 1 and ran.err.endswith("\n"), ran.err
    return ran.err[len("tabellion: error: "):-1]
