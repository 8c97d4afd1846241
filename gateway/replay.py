"""Replay protection: each (keyid, nonce) of a signed request is accepted once while its signature is valid.

The store is one SQLite file (WAL, through sqlite-utils) that every gateway worker process on the machine
opens: SQLite's locking makes the check-and-insert atomic across processes, so of two requests racing with
the same nonce exactly one is remembered and the other refused. A nonce is kept until the end of its
signature's validity window (``VerifiedSignature.valid_until``: ``expires`` or ``created + max_age``, plus
the allowed skew); after that the signature itself is refused as expired or stale, so the row can go.
Expired rows are purged opportunistically, a bounded number per call, so no sweeper is needed.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import sqlite_utils

from schemas.errors import ReplayDetected
from transparency.sqlite_files import connect

TABLE = "nonces"
PURGE_BATCH = 256  # expired rows removed per remember(), at most

# One statement, so it is atomic: insert the nonce, or take over its row only if that row has expired.
# A row whose expires_at is before now has expired; at expires_at itself the signature is still valid.
_REMEMBER = (
    f"INSERT INTO {TABLE} (keyid, nonce, expires_at) VALUES (:keyid, :nonce, :expires_at) "  # noqa: S608
    f"ON CONFLICT (keyid, nonce) DO UPDATE SET expires_at = excluded.expires_at "
    f"WHERE {TABLE}.expires_at < :now"
)
_PURGE = (
    f"DELETE FROM {TABLE} WHERE rowid IN "  # noqa: S608
    f"(SELECT rowid FROM {TABLE} WHERE expires_at < :now ORDER BY expires_at LIMIT {PURGE_BATCH})"
)


class NonceStore:
    """The nonces seen by this gateway, in the SQLite file at ``path`` (created on first use)."""

    def __init__(self, path: Path | str, *, timeout: float = 30.0) -> None:
        # WAL + NORMAL: durable against process crashes
        self.db = sqlite_utils.Database(connect(path, synchronous="NORMAL", timeout=timeout))
        self.db.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (keyid TEXT NOT NULL, nonce TEXT NOT NULL, "
            "expires_at INTEGER NOT NULL, PRIMARY KEY (keyid, nonce))"
        )
        self.db.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_expires_at ON {TABLE} (expires_at)")
        self._purged_at: int | None = None

    def remember(self, keyid: str, nonce: str, expires_at: int, now: int) -> None:
        """Record that ``keyid`` used ``nonce`` in a signature valid until ``expires_at`` (Unix seconds).

        Raises ``ReplayDetected`` when that pair was already recorded and has not expired by ``now`` (a nonce is
        kept through its ``expires_at`` second, the last at which its signature can still be accepted).
        """
        params = {"keyid": keyid, "nonce": nonce, "expires_at": expires_at, "now": now}
        cursor = self.db.execute(_REMEMBER, params)
        if cursor.rowcount != 1:
            raise ReplayDetected(f"nonce {nonce[:100]!r} of key {keyid[:200]!r} was already used")
        if now != self._purged_at:  # expired nonces go once a second (a write each request need not pay), and
            purged = self.db.execute(_PURGE, {"now": now}).rowcount  # at every request while a backlog lasts
            if purged < PURGE_BATCH:
                self._purged_at = now

    def count(self) -> int:
        """How many nonces are kept (expired ones not yet purged included)."""
        return int(self.db.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0])  # noqa: S608

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> NonceStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
