"""The intake: registrations are checked (``Registrar.check``: parse, resolve the signer, verify the signature, the
policies) in a thread of their own, off the event loop, and what passed goes from that thread straight to the
sequencer.

Verifying an Ed25519 signature releases the interpreter lock, so in this thread it runs beside the event loop,
on another core, while the loop reads and answers other requests; on the loop it took about a third of the
loop's time per registration. The loop hands the bodies over with one ``SimpleQueue`` put per loop iteration
(all the bodies of the requests it read at once: no wake-up of this thread per body). A statement that passed
is handed to the sequencer from here (``Submit``), with the submitter's future, which the sequencer settles
after its batch's COMMIT (one wake-up of the loop per batch): the loop is not woken between the check and the
sequencer. After each group of bodies, ``handed_over`` tells the sequencer that nothing more is on its way from
here, so its batch need not wait ``batch_max_wait_ms`` for more. A refusal (or anything the check or the
hand-over raised) is answered from here, one wake-up of the loop for all the refusals of a group. Nothing else
changes: each body gets exactly the checks, in the same order, with the same errors, and nothing reaches the
sequencer unless every check passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from transparency.registration import Checked

R = TypeVar("R")
Check = Callable[[bytes], Checked]
DRAIN = 64
"""Groups of bodies (each what a loop registered in one of its iterations) are taken until this many bodies are
taken (or none is left), checked, then handed to the sequencer."""


class Registration(Generic[R]):
    """One body in the intake: ``future`` (of the submitter's loop) is settled with the sequencer's answer, or
    with the error that refused the body; ``checked`` is set, in the intake thread, once the body passed."""

    def __init__(self, future: asyncio.Future[R]) -> None:
        self.future = future
        self.checked: Checked | None = None
        self._lock = threading.Lock()
        self._waiter: asyncio.Future[None] | None = None

    def passed(self, checked: Checked) -> None:
        """In the intake thread: the body passed its checks (before it is handed to the sequencer)."""
        with self._lock:
            self.checked = checked
            waiter = self._waiter
        if waiter is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits on it any more
                waiter.get_loop().call_soon_threadsafe(_wake, waiter)

    async def wait_checked(self) -> None:
        """On the submitter's loop: until the body has passed its checks, or ``future`` is settled (a refusal).
        Checks never wait on anything outside the process, so this is short."""
        with self._lock:
            if self.checked is not None or self.future.done():
                return
            self._waiter = waiter = self.future.get_loop().create_future()
        await asyncio.wait((self.future, waiter), return_when=asyncio.FIRST_COMPLETED)


class Intake(Generic[R]):
    def __init__(self, check: Check, submit: Callable[[Checked, asyncio.Future[R]], None],  # in this thread
                 handed_over: Callable[[], None] = lambda: None) -> None:
        self._check = check
        self._submit = submit
        self._handed_over = handed_over
        self._queue: queue.SimpleQueue[list[tuple[bytes, Registration[R]]] | None] = queue.SimpleQueue()
        self._waiting: dict[asyncio.AbstractEventLoop, list[tuple[bytes, Registration[R]]]] = {}  # by loop
        self._thread = threading.Thread(target=self._run, name="tabellion-intake", daemon=True)
        self._thread.start()

    def register(self, body: bytes) -> Registration[R]:
        """Check ``body`` in the intake thread, then hand it to the sequencer; the registration's future (of the
        running loop) is settled with the sequencer's answer or with the error that refused the body. The bodies
        a loop registers in one of its iterations are handed over together, at its end (``call_soon``): one
        put, and at most one wake-up of this thread, for all the requests the loop read at once."""
        loop = asyncio.get_running_loop()
        registration: Registration[R] = Registration(loop.create_future())
        waiting = self._waiting.get(loop)
        if waiting is None:
            self._waiting[loop] = waiting = []
            loop.call_soon(self._hand_over, loop)
        waiting.append((body, registration))
        return registration

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        self._queue.put(self._waiting.pop(loop))

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _run(self) -> None:
        while True:
            groups = [self._queue.get()]
            while sum(len(g) for g in groups if g is not None) < DRAIN:
                try:
                    groups.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = None in groups
            items = [item for group in groups if group is not None for item in group]
            refused: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[R], Exception]]] = {}
            passed: list[tuple[Checked, Registration[R]]] = []
            for body, registration in items:
                try:
                    passed.append((self._check(body), registration))
                except Exception as exc:  # noqa: BLE001 - handed to the submitter, who raises it
                    refused.setdefault(registration.future.get_loop(), []).append((registration.future, exc))
            for checked, registration in passed:  # the group at once: the sequencer takes it in one batch
                registration.passed(checked)
                try:
                    self._submit(checked, registration.future)
                except Exception as exc:  # noqa: BLE001 - the sequencer's queue is full (Overloaded)
                    refused.setdefault(registration.future.get_loop(), []).append((registration.future, exc))
            if passed:
                self._handed_over()
            for loop, answered in refused.items():
                with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits on it any more
                    loop.call_soon_threadsafe(_refuse, answered)
            if stop:
                return


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _refuse(answered: list[tuple[asyncio.Future[R], Exception]]) -> None:
    for future, exc in answered:
        if not future.done():
            future.set_exception(exc)
