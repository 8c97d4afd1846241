"""A real PostgreSQL server for tests and benchmarks: Debian's binaries (``scripts/apt-packages.txt``:
postgresql), ``initdb`` into a temporary folder, listening on 127.0.0.1 on a free port, stopped at the end.

    with postgres_server() as server:
        url = server.create_database()      # a fresh, empty database: postgresql://tabellion@127.0.0.1:PORT/t1

``initdb`` refuses to run as root: as root, the folder is given to the ``postgres`` user (the Debian package
creates it) and the server runs as that user (``runuser``). Authentication is ``trust`` on 127.0.0.1 only.
Tests never crash the PostgreSQL server itself (they kill ``serve`` processes, whose commits PostgreSQL has
then received), so by default it runs without ``fsync`` (each test creates databases, which would otherwise be
written to disk again and again); ``durable=True`` keeps PostgreSQL's durable defaults (``fsync``,
``synchronous_commit=on``, full page writes), as the benchmarks do.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psycopg

from tests.server import free_port

SUPERUSER = "tabellion"
START_TIMEOUT_S = 60


def postgres_bindir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with ``initdb``."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        raise RuntimeError("PostgreSQL's server binaries are not installed: run bash scripts/setup.sh "
                           "(it installs the postgresql package listed in scripts/apt-packages.txt)")
    return Path(found[-1]).parent


class PostgresServer:
    def __init__(self, folder: Path, port: int, *, durable: bool = False) -> None:
        self.folder = folder
        self.durable = durable
        self.data = folder / "data"
        self.port = port
        self.bindir = postgres_bindir()
        self._names = itertools.count(1)

    def _run(self, *command: str) -> subprocess.CompletedProcess[bytes]:
        argv = [str(self.bindir / command[0]), *command[1:]]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        return subprocess.run(argv, check=True, capture_output=True, timeout=START_TIMEOUT_S)  # noqa: S603

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", SUPERUSER, "-E", "UTF8", "--no-sync",
                  "--no-instructions")
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c max_connections=200 "
                   "-c shared_buffers=64MB")
        if not self.durable:
            options += " -c fsync=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.folder / "server.log"), "-w",
                  "-t", str(START_TIMEOUT_S), "start")

    def stop(self) -> None:
        with suppress(subprocess.CalledProcessError):
            # immediate: no shut-down checkpoint, the folder is deleted next (a durable server checkpoints)
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast" if self.durable else "immediate", "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database on this server; its URL."""
        name = f"t{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def log(self) -> str:
        path = self.folder / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def postgres_server(*, durable: bool = False) -> Iterator[PostgresServer]:
    folder = Path(tempfile.mkdtemp(prefix="tabellion-pg-"))
    server = PostgresServer(folder, free_port(), durable=durable)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
