"""Opening the SQLite files of the service, the issuer and the gateway: one place for the settings.

Every file is in WAL mode (readers never block the writer), opened in autocommit mode (transactions are
explicit) and usable from the threads of one process. ``synchronous`` is the durability choice of each
file: ``FULL`` fsyncs every commit (the log, the webhook outbox: a receipt or an accepted event must
survive a power loss); ``NORMAL`` survives a crash of the process, not of the machine.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from schemas.errors import ConfigurationError

Synchronous = Literal["FULL", "NORMAL"]


def connect(path: Path | str, *, synchronous: Synchronous = "FULL", timeout: float = 30.0) -> sqlite3.Connection:
    """Open (and on first use create, with its folder) the database file at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=timeout)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    return conn


def connect_read_only(path: Path | str) -> sqlite3.Connection:
    """Open an existing database file read-only (``mode=ro``), creating no file.

    With no ``-wal`` file next to it, no connection has it open and every commit is in the file itself: it
    is opened ``immutable`` (a read-only connection to a WAL database would otherwise create ``-wal`` and
    ``-shm`` files and leave them behind). With its ``-wal`` and ``-shm`` files (a service running, or one
    that stopped without closing) it is read through the WAL as any reader does, which updates the shared
    memory index in ``-shm`` but never the database or its WAL.
    """
    path = Path(path).absolute()
    if not path.is_file():
        raise ConfigurationError(f"there is no database {path}")
    wal, shm = (path.with_name(path.name + suffix).exists() for suffix in ("-wal", "-shm"))
    if wal and not shm:
        raise ConfigurationError(f"{path} has a -wal file but no -shm file; open it once read-write to recover it")
    options = "mode=ro" if wal else "mode=ro&immutable=1"
    conn = sqlite3.connect(f"file:{quote(str(path))}?{options}", uri=True, isolation_level=None,
                           check_same_thread=False)
    conn.execute("PRAGMA query_only=ON")
    conn.execute("PRAGMA temp_store=MEMORY")  # sorts and temporary tables in memory: no temporary files
    return conn
