"""``tabellion fetch`` from a hostile log: an endless answer (a checkpoint, an audit bundle) is refused at the bound
with one readable line and a non-zero exit, and nothing is written — against a real hostile server on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.commands import run
from tests.hostile_server import hostile_server

DID = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"


@pytest.mark.parametrize("args", [["checkpoint"], ["audit", "--did", DID]], ids=["checkpoint", "audit"])
def test_an_endless_answer_is_one_line_and_nothing_written(
    tmp_path: Path, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fetched"
    with hostile_server() as url:
        code = run(["fetch", args[0], f"{url}/endless", "-o", str(out), *args[1:]])
    err = capsys.readouterr().err
    assert code != 0 and not out.exists()
    assert "answer-too-large" in err or "more than" in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
