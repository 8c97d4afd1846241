"""Starting and stopping the real processes a benchmark measures (servers on 127.0.0.1)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import IO

import httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(
    command: list[str], log: Path, ready: str, env: dict[str, str] | None = None, cwd: Path = REPO
) -> subprocess.Popen[bytes]:
    """Start ``command`` in ``cwd`` (output to ``log``) and wait until GET ``ready`` answers 200."""
    out: IO[bytes]
    with log.open("ab") as out:
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                   env=env or clean_env())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{command[2:4]} exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(ready, timeout=1).status_code in (200, 404):
                return process
        time.sleep(0.05)
    process.kill()
    raise SystemExit(f"{command[2:4]} did not answer {ready} in 30 s:\n{log.read_text()[-2000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TABELLION_")}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of every thread of ``pid``, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14, 15
