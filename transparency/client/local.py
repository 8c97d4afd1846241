"""The log's public client for a process that hosts the transparency service itself (the embedded default).

Same reads as ``HttpLogClient`` (so a ``LogFollower`` works over either), answered by the service object
without a network hop. Writes go through the same checks as ``POST /entries``. Call it from the thread
that owns the service (the server's event loop).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from schemas.errors import CheckpointNotWitnessed, LogCorrupted, RegistrationPending
from schemas.leaf import entry_id, parse_entry_id
from schemas.proofs import ConsistencyProof
from transparency.client.http import LogEntry, Submitted
from verifier.fold import IdentityState, Outcome

if TYPE_CHECKING:
    from transparency.service import TransparencyService


class SharedFold:
    """The log's own identity fold (``transparency.identity``), for an issuer hosted in the same process: one fold
    of the log per process instead of two. The service folds each batch before any submitter hears back, from
    the entries it stored and checked, so this state is always that of the latest signed tree head. Read it
    inside ``reading()``: no batch is folded meanwhile."""

    def __init__(self, service: TransparencyService) -> None:
        self.service = service

    @contextmanager
    def reading(self) -> Iterator[IdentityState]:
        with self.service.identity.reading() as state:
            yield state

    @property
    def size(self) -> int:
        return self.service.identity.size

    def checkpoint(self) -> str:
        """The signed checkpoint of the tree head the state is folded up to."""
        size = self.size
        head = self.service.reader.head(size)
        if head is None:
            raise LogCorrupted(f"the log has no signed tree head of size {size}, the size of its folded state")
        return head.checkpoint

    def outcome(self, index: int) -> Outcome | None:
        return self.service.identity.outcome(index)

    def statements(self, start: int, limit: int) -> list[tuple[int, bytes]]:
        """The logged statements from ``start`` (at most ``limit``), without receipts."""
        return [(r.index, r.statement) for r in self.service.reader.entries(start, limit) if r.index < self.size]


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

    def shared_fold(self) -> SharedFold:
        return SharedFold(self.service)

    async def submit(self, statement: bytes) -> Submitted:
        """Register ``statement``; ``RegistrationPending`` if the log did not integrate it in time."""
        submission = await self.service.register(statement)
        ident = entry_id(submission.leaf_data)
        if submission.receipt is None:
            raise RegistrationPending(f"entry {ident} is still being registered")
        return Submitted(ident, f"/entries/{ident}", submission.receipt)
