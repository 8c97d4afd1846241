"""A real transparency service for tests: ``tabellion serve`` in a subprocess on a free 127.0.0.1 port.

    with running_server(tmp_path, registration_timeout_s=0.5) as url:
        httpx.get(f"{url}/checkpoint")
        url.kill9()          # a crash: SIGKILL, no clean shut-down

``url`` is a ``str`` (the base URL, e.g. ``http://127.0.0.1:41234``) that also carries the ``Popen``
(``url.process``), the data folder (``url.data_dir``) and the server's stderr log (``url.log_path``).
Settings are ``transparency.settings.Settings`` field names; they reach the server as ``TABELLION_*``
environment variables (``data_dir``, ``host`` and ``port`` as flags; a setting of ``None`` is left out, so
``database=None`` is the SQLite default). On leaving the block the server gets
SIGTERM, then SIGKILL after 5 s; leaving after ``kill9()`` is fine.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import httpx
import psycopg

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0


class ServerUrl(str):
    """The base URL of a running server, with a handle on its process."""

    process: subprocess.Popen[bytes]
    data_dir: Path
    log_path: Path
    database: str | None  # the PostgreSQL URL, or None: the SQLite file in the data folder

    def __new__(
        cls, url: str, process: subprocess.Popen[bytes], data_dir: Path, log_path: Path, database: str | None = None
    ) -> ServerUrl:
        self = super().__new__(cls, url)
        self.process = process
        self.data_dir = data_dir
        self.log_path = log_path
        self.database = database
        return self

    def kill9(self) -> None:
        """SIGKILL the server (a crash) and reap it."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(STOP_TIMEOUT_S)

    def terminate(self) -> int:
        """SIGTERM (clean shut-down), SIGKILL after 5 s; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_S)
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class HeldCommits:
    """The log's write lock held from outside until ``release()``: a writer's transaction on the SQLite file, or
    an EXCLUSIVE lock on PostgreSQL's ``entries`` (reads go on). The server's next batch waits for it, as it
    would behind a slow disk; a registration meanwhile is still running (202, then 204 on its location)."""

    def __init__(self, url: ServerUrl) -> None:
        self._sqlite: sqlite3.Connection | None = None
        self._pg: psycopg.Connection[tuple[Any, ...]] | None = None
        if url.database is None:
            self._sqlite = sqlite3.connect(url.data_dir / "log.sqlite", isolation_level=None, timeout=30,
                                           check_same_thread=False)
            self._sqlite.execute("BEGIN IMMEDIATE")
        else:
            self._pg = psycopg.connect(url.database)  # a transaction is open until commit or rollback
            self._pg.execute("LOCK TABLE entries IN EXCLUSIVE MODE")

    def release(self) -> None:
        """Roll back and close (from any thread; again is harmless)."""
        if self._sqlite is not None:
            self._sqlite.execute("ROLLBACK")
            self._sqlite.close()
            self._sqlite = None
        if self._pg is not None:
            self._pg.rollback()
            self._pg.close()
            self._pg = None


@contextmanager
def commits_held(url: ServerUrl) -> Iterator[HeldCommits]:
    """``HeldCommits`` for the length of the block."""
    held = HeldCommits(url)
    try:
        yield held
    finally:
        held.release()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_server(tmp_path: Path, **settings: Any) -> ServerUrl:
    """Start a server and wait until GET /checkpoint answers 200; the caller must stop it."""
    data_dir = Path(settings.pop("data_dir", tmp_path / "data"))
    port = int(settings.pop("port", free_port()))
    host = str(settings.pop("host", "127.0.0.1"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TABELLION_")}
    env.update({f"TABELLION_{name.upper()}": str(value) for name, value in settings.items() if value is not None})
    tmp_path.mkdir(parents=True, exist_ok=True)
    log_path = tmp_path / f"server-{port}.log"
    command = [sys.executable, "-m", "cli.main", "serve", "--data", str(data_dir), "--host", host,
               "--port", str(port)]
    log: IO[bytes]
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    database = settings.get("database")
    url = ServerUrl(f"http://{host}:{port}", process, data_dir, log_path, None if database is None else str(database))
    wait_until_answering(process, f"{url}/checkpoint", "the server", url.log, url.terminate)
    return url


def wait_until_answering(
    process: subprocess.Popen[bytes], probe: str, name: str, log: Callable[[], str], stop: Callable[[], object]
) -> None:
    """Wait until GET ``probe`` answers 200; if ``process`` exits first, or ``START_TIMEOUT_S`` passes (then
    ``stop`` is called), raise with ``name`` and its log."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode} before answering:\n{log()}")
        try:
            if httpx.get(probe, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            stop()
            raise RuntimeError(f"{name}: no answer to GET {probe} in {START_TIMEOUT_S}s:\n{log()}")
        time.sleep(0.05)


@contextmanager
def running_server(tmp_path: Path, **settings: Any) -> Iterator[ServerUrl]:
    """A server for the length of the block (see the module docstring)."""
    url = start_server(tmp_path, **settings)
    try:
        yield url
    finally:
        url.terminate()
