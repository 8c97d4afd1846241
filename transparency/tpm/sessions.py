"""Enrolment tokens and nonces, kept durably (SQLite) with a short lifetime, used once.

``POST /v1/enrol/start`` opens a session: a random token (given to the agent, stored only as its SHA-256), a random
nonce (the quote's and certification's qualifyingData), the digests of the EK certificate and the AK name the
credential was made for, the SHA-256 of that credential, and the time it expires. ``POST /v1/enrol/submit`` takes
the session *before* any gate runs (``take``: one UPDATE that succeeds once), so a token is spent by its first
submission whatever the gates then decide: a refused enrolment starts again with a new nonce, and a replay of an
accepted or refused submission is refused as such. The file is not part of the log: losing it only ends open
ceremonies (their agents start again). Expired sessions are deleted when new ones open.
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from transparency.tpm.errors import EnrolmentRefused, Gate

_SCHEMA = """
CREATE TABLE IF NOT EXISTS enrolment_sessions (
    token_sha256 BLOB PRIMARY KEY,
    nonce BLOB NOT NULL,
    ek_certificate_sha256 TEXT NOT NULL,
    ak_name TEXT NOT NULL,
    credential_sha256 BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
) WITHOUT ROWID
"""
KEEP_USED_S = 24 * 3600  # a used token is remembered this long, so that its replay is named as one


@dataclass(frozen=True)
class Session:
    nonce: bytes
    ek_certificate_sha256: str
    ak_name: str
    credential_sha256: bytes
    expires_at: int

    def check_credential(self, activated: bytes) -> bool:
        return hmac.compare_digest(hashlib.sha256(activated).digest(), self.credential_sha256)


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class SessionStore:
    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def open(self, token: str, session: Session, now: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM enrolment_sessions WHERE expires_at < ? AND (used_at IS NULL OR used_at < ?)",
                             (now, now - KEEP_USED_S))
            self._db.execute(
                "INSERT INTO enrolment_sessions VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                (token_digest(token), session.nonce, session.ek_certificate_sha256, session.ak_name,
                 session.credential_sha256, now, session.expires_at),
            )

    def take(self, token: str, now: int) -> Session:
        """The session of ``token``, marked used; G3's refusal if it is unknown, expired or used already."""
        key = token_digest(token)
        with self._lock:
            row = self._db.execute(
                "SELECT nonce, ek_certificate_sha256, ak_name, credential_sha256, expires_at, used_at "
                "FROM enrolment_sessions WHERE token_sha256 = ?", (key,)).fetchone()
            if row is None:
                raise EnrolmentRefused(
                    Gate.G3, "the enrolment token is not one this service gave (a foreign or made-up nonce)")
            nonce, ek, ak, credential, expires_at, used_at = row
            if used_at is not None:
                raise EnrolmentRefused(
                    Gate.G3, f"the enrolment token and its nonce were used already (at {used_at}): a replay")
            if now > expires_at:
                raise EnrolmentRefused(
                    Gate.G3, f"the enrolment token and its nonce expired at {expires_at} (now {now}): stale")
            taken = self._db.execute("UPDATE enrolment_sessions SET used_at = ? WHERE token_sha256 = ? AND "
                                     "used_at IS NULL", (now, key)).rowcount
            if taken != 1:
                raise EnrolmentRefused(Gate.G3, "the enrolment token was used by a concurrent submission")
        return Session(nonce, ek, ak, credential, expires_at)
