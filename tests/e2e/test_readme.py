"""The README's two commands exist, and its tour runs as written against a real server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.server import running_server

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def test_readme_opens_with_the_two_commands() -> None:
    first_block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines() if line.strip()]
    assert commands == ["bash scripts/serve.sh", "bash scripts/test.sh"]
    assert README.index(first_block.group(0)) < README.index("## ")
    for script in ("scripts/serve.sh", "scripts/test.sh"):
        assert (REPO / script).is_file()
    assert "scripts/test.sh" in (REPO / ".ci" / "run").read_text()


def _run_tour(name: str, tmp_path: Path) -> tuple[list[str], Path]:
    """Run the README's ``sh <name>`` block line by line against a real server; each line must succeed."""
    tour = re.search(rf"```sh {name}\n(.*?)```", README, re.S)
    assert tour is not None
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    work = tmp_path / "work"
    work.mkdir()
    outputs = []
    with running_server(tmp_path / "server") as url:
        for line in tour.group(1).splitlines():
            command = line.replace("http://127.0.0.1:8000", str(url))
            done = subprocess.run(["bash", "-c", command], cwd=work, env=env, capture_output=True, text=True,
                                  timeout=60)
            assert done.returncode == 0, f"{line}\n{done.stdout}{done.stderr}"
            outputs.append(done.stdout)
    return outputs, work


def test_the_tour_runs_as_written(tmp_path: Path) -> None:
    outputs, _ = _run_tour("tour", tmp_path)
    assert outputs[-1].startswith("OK"), outputs[-1]
    assert any(o.startswith("OK") and "entry 0" in o for o in outputs), outputs


def test_the_identity_tour_runs_as_written(tmp_path: Path) -> None:
    outputs, work = _run_tour("identity-tour", tmp_path)
    operator = (work / "op.did").read_text().strip()
    assert outputs[-1].startswith("OK: audit bundle"), outputs[-1]
    assert f"authorised by {operator}" in outputs[-1] and "approved by" in outputs[-1]
