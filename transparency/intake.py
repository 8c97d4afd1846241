"""The intake: registrations are checked (``Registrar.check``: parse, resolve the signer, verify the signature, the
policies) in a thread of their own, off the event loop.

Verifying an Ed25519 signature releases the interpreter lock, so in this thread it runs beside the event loop,
on another core, while the loop reads and answers other requests; on the loop it took about a third of the
loop's time per registration. The loop hands each body over with a ``SimpleQueue`` put (no wake-up of this
thread per body once it is busy), and this thread answers everything it checked in one go with one wake-up of
the loop (``call_soon_threadsafe``), as the sequencer does for its batches. Nothing else changes: each body gets
exactly the checks, in the same order, with the same errors; what passed is then queued for the sequencer by the
loop, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable

from transparency.registration import Checked

Check = Callable[[bytes], Checked]
DRAIN = 64
"""At most this many bodies are checked before their submitters are answered."""


class Intake:
    def __init__(self, check: Check) -> None:
        self._check = check
        self._queue: queue.SimpleQueue[tuple[bytes, asyncio.Future[Checked]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="tabellion-intake", daemon=True)
        self._thread.start()

    def check(self, body: bytes) -> asyncio.Future[Checked]:
        """``check(body)`` in the intake thread; the answer (or the error it raised) comes as a future of the
        running loop."""
        future: asyncio.Future[Checked] = asyncio.get_running_loop().create_future()
        self._queue.put((body, future))
        return future

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _run(self) -> None:
        while True:
            items = [self._queue.get()]
            while len(items) < DRAIN:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = None in items
            answers: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Checked], Checked | Exception]]] = {}
            for item in items:
                if item is None:  # stop, once these are answered
                    continue
                body, future = item
                try:
                    answer: Checked | Exception = self._check(body)
                except Exception as exc:  # noqa: BLE001 - handed to the submitter, who raises it
                    answer = exc
                answers.setdefault(future.get_loop(), []).append((future, answer))
            for loop, answered in answers.items():
                with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits on it any more
                    loop.call_soon_threadsafe(_answer, answered)
            if stop:
                return


def _answer(answered: list[tuple[asyncio.Future[Checked], Checked | Exception]]) -> None:
    for future, answer in answered:
        if future.done():
            continue
        if isinstance(answer, Exception):
            future.set_exception(answer)
        else:
            future.set_result(answer)
