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

Synchronous = Literal["FULL", "NORMAL"]


def connect(path: Path | str, *, synchronous: Synchronous = "FULL", timeout: float = 30.0) -> sqlite3.Connection:
    """Open (and on first use create, with its folder) the database file at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=timeout)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    return conn
