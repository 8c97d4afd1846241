"""A log as a follower reads it, for in-process tests of followers (``transparency.client.follower``,
``gateway.state``): the reads of a real client passed through, except that the latest checkpoint can be replaced
(``forged``: a log that lies) and the log can be made unreachable (``down``). A test that needs more reads (a
witnessed checkpoint) or other answers subclasses it."""

from __future__ import annotations

from schemas.errors import LogUnreachable
from schemas.proofs import ConsistencyProof
from transparency.client.http import LogEntry
from transparency.client.local import LocalLogClient


class LogReads:
    def __init__(self, real: LocalLogClient) -> None:
        self.real = real
        self.forged: str | None = None
        self.down = False

    def checkpoint(self, after: int | None = None, wait: float | None = None) -> str:
        if self.down:
            raise LogUnreachable("connection refused")
        return self.forged if self.forged is not None else self.real.checkpoint()

    def consistency(self, old: int, new: int) -> ConsistencyProof:
        return self.real.consistency(old, new)

    def entries(self, start: int = 0, limit: int = 100) -> list[LogEntry]:
        return self.real.entries(start, limit)
