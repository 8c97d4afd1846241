"""The tabellion command run as a user runs it (``python -m cli.main`` in a subprocess), and the entry it printed."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from tests.server import REPO

TIMEOUT_S = 120.0


def run_cli(
    *args: str | Path, cwd: Path = REPO, input: str | None = None, env: Mapping[str, str] | None = None,
    timeout: float = TIMEOUT_S,
) -> subprocess.CompletedProcess[str]:
    """Run ``tabellion ARGS`` in ``cwd`` (``env``: the whole environment, else this process's) and return what it
    did; the caller checks its exit status."""
    return subprocess.run([sys.executable, "-m", "cli.main", *map(str, args)], cwd=cwd, input=input, env=env,
                          capture_output=True, text=True, check=False, timeout=timeout)


def tabellion(*args: str | Path, ok: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """``run_cli`` that fails the test unless the command succeeded (``ok``) or failed (``ok=False``)."""
    done = run_cli(*args, input=input)
    assert (done.returncode == 0) == ok, (args, done.stdout, done.stderr)
    return done


def entry_of(done: subprocess.CompletedProcess[str]) -> str:
    match = re.search(r"entry ([0-9a-f]{64})", done.stdout)
    assert match, done.stdout
    return match.group(1)
