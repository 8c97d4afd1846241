"""The log's growth, pushed to browsers as server-sent events (``GET /events``).

One watcher per console long-polls the log's checkpoint through the issuer (``GET /checkpoint?after=N&wait=S``)
in a thread of its own; each time the tree grows it tells every open event stream, whose page then reloads its
approvals queue. The stream carries the tree size only: the page asks for the queue itself, with its session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import Final

from schemas.checkpoint import parse_checkpoint
from schemas.errors import TabellionError
from schemas.note import parse_note

log = logging.getLogger(__name__)
LONG_POLL_S: Final = 10
RETRY_S: Final = 1.0
KEEPALIVE_S: Final = 15.0

Checkpoint = Callable[[int | None, float | None], str]


class LiveLog:
    """The latest tree size the console saw, and the event streams waiting for the next one."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        self._checkpoint = checkpoint
        self.size = -1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._streams: set[asyncio.Queue[int]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def streams(self) -> int:
        return len(self._streams)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._watch, name="console-live-log", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        for queue in list(self._streams):
            queue.put_nowait(-1)  # ends each stream

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                text = self._checkpoint(self.size if self.size >= 0 else None, LONG_POLL_S)
                size = parse_checkpoint(parse_note(text).text).size
            except TabellionError as exc:
                log.warning("following the log's checkpoint failed: %s", exc)
                self._stop.wait(RETRY_S)
                continue
            if size != self.size and self._loop is not None:
                self.size = size
                with contextlib.suppress(RuntimeError):  # the loop closed: the console is stopping
                    self._loop.call_soon_threadsafe(self._tell, size)

    def _tell(self, size: int) -> None:
        for queue in self._streams:
            queue.put_nowait(size)

    async def events(self) -> AsyncIterator[str]:
        """One stream: ``event: log`` with the tree size at each growth, a comment to keep it open."""
        queue: asyncio.Queue[int] = asyncio.Queue()
        self._streams.add(queue)
        try:
            yield f"retry: 2000\nevent: log\ndata: {self.size}\n\n"
            while not self._stop.is_set():
                try:
                    size = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if size < 0:
                    return
                yield f"event: log\ndata: {size}\n\n"
        finally:
            self._streams.discard(queue)
