"""The tabellion command run as a user runs it (``python -m cli.main`` in a subprocess), and the entry it printed."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.server import REPO


def tabellion(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=REPO, capture_output=True, text=True,
                          check=False, timeout=120)
    assert (done.returncode == 0) == ok, (args, done.stdout, done.stderr)
    return done


def entry_of(done: subprocess.CompletedProcess[str]) -> str:
    match = re.search(r"entry ([0-9a-f]{64})", done.stdout)
    assert match, done.stdout
    return match.group(1)
