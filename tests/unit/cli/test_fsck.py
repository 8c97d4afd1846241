"""``tabellion fsck DATA``: exit 0 on a clean log, 3 with one line per problem on a corrupted one, 1 (one error
line) when there is nothing to check; progress on stderr."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from cli.commands import run
from cli.fsck import EXIT_CORRUPTED, ProgressLines
from tests.log_tampering import build_log, copy_log, flip_entry_id, tampered
from tests.unit.cli.cli_runs import Capsys, one_line_error, tabellion


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_log(tmp_path_factory.mktemp("cli-fsck") / "data", 30)


def test_a_clean_log_exits_0_with_a_summary(pristine: Path, capsys: Capsys) -> None:
    ran = tabellion(capsys, "fsck", pristine)
    assert ran.code == 0, ran.err
    assert ran.out == f"fsck: {pristine}: log of size 30: 30 entries, {ran.out.split(', ')[1]}, 56 tree nodes, " \
                      "30 index rows checked: clean\n"


def test_a_corrupted_log_exits_3_with_one_line_per_problem(pristine: Path, tmp_path: Path, capsys: Capsys) -> None:
    data = copy_log(pristine, tmp_path / "data")
    with tampered(data / "log.sqlite") as db:
        flip_entry_id(db, 7)
        flip_entry_id(db, 9)
    ran = tabellion(capsys, "fsck", data, "--max-per-class", "1")
    assert ran.code == EXIT_CORRUPTED
    lines = ran.out.splitlines()
    assert lines[0].startswith("fsck: entry 7: stored entry_id ") and lines[0].endswith(" [entry-id-corrupted]")
    assert lines[1:] == ["fsck: … and 1 more [entry-id-corrupted]",
                         lines[2].split(": 2 problems")[0] + ": 2 problems (entry-id-corrupted 2)"]
    assert "Traceback" not in ran.err


def test_nothing_to_check_is_one_error_line(tmp_path: Path, capsys: Capsys) -> None:
    assert "there is no database" in one_line_error(tabellion(capsys, "fsck", tmp_path / "nowhere"))
    assert not (tmp_path / "nowhere").exists()
    (tmp_path / "empty").mkdir()
    assert "there is no database" in one_line_error(tabellion(capsys, "fsck", tmp_path / "empty"))
    assert list((tmp_path / "empty").iterdir()) == []


def test_a_log_without_its_key_cannot_be_checked(pristine: Path, tmp_path: Path, capsys: Capsys) -> None:
    data = copy_log(pristine, tmp_path / "data")
    (data / "log-key.pem").unlink()
    assert "there is no log key" in one_line_error(tabellion(capsys, "fsck", data))
    assert not (data / "log-key.pem").exists(), "fsck must not create a key"


def test_progress_lines_come_only_after_the_interval() -> None:
    stream = io.StringIO()
    progress = ProgressLines(stream, interval=3600.0)
    progress("entries", 10, 100)
    assert stream.getvalue() == ""
    progress.interval, progress.next_at = 0.0, 0.0
    progress("entries", 50, 200)
    assert stream.getvalue() == "tabellion fsck: entries 50/200 (25%)\n"


def test_fsck_is_listed_in_help(capsys: Capsys) -> None:
    assert run(["--help"]) == 0
    assert "fsck" in capsys.readouterr().out
