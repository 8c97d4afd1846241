"""The log's public client for a process that hosts the transparency service itself (the embedded default).

Same reads as ``HttpLogClient`` (so a ``LogFollower`` works over either), answered by the service object
without a network hop. Writes go through the same checks as ``POST /entries``. Call it from the thread
that owns the service (the server's event loop).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas.errors import CheckpointNotWitnessed, RegistrationPending
from schemas.leaf import entry_id, parse_entry_id
from schemas.proofs import ConsistencyProof
from transparency.client.http import LogEntry, Submitted

if TYPE_CHECKING:
    from transparency.service import TransparencyService


class LocalLogClient:
    def __init__(self, service: TransparencyService) -> None:
        self.service = service

    def checkpoint(self, after: int | None = None, wait: float | None = None) -> str:
        """The latest checkpoint (no long poll in-process: the caller follows after its own writes)."""
        return self.service.checkpoint()

    def witnessed_checkpoint(self, after: int | None = None, wait: float | None = None) -> str | None:
        """The newest checkpoint the log's witness quorum cosigned, or ``None`` (no long poll in-process)."""
        try:
            return self.service.witnessed_checkpoint()
        except CheckpointNotWitnessed:
            return None

    def consistency(self, old: int, new: int) -> ConsistencyProof:
        return self.service.consistency(old, new)

    def entries(self, start: int = 0, limit: int = 100) -> list[LogEntry]:
        return [LogEntry(e.index, e.statement, e.receipt) for e in self.service.entries(start, limit)]

    def receipt(self, entry_id: str) -> bytes | None:
        """The entry's receipt; ``None`` while it is being registered; ``EntryNotFound`` if the log has no such
        entry."""
        return self.service.receipt(parse_entry_id(entry_id))

    def vkey(self) -> str:
        return self.service.key.note_key(self.service.settings.origin).encode()

    def key_set(self) -> bytes:
        return self.service.key_set_cbor

    async def submit(self, statement: bytes) -> Submitted:
        """Register ``statement``; ``RegistrationPending`` if the log did not integrate it in time."""
        submission = await self.service.register(statement)
        ident = entry_id(submission.leaf_data)
        if submission.receipt is None:
            raise RegistrationPending(f"entry {ident} is still being registered")
        return Submitted(ident, f"/entries/{ident}", submission.receipt)
