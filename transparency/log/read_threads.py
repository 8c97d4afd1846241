"""Reading the log off the event loop: a few threads, each with its own read connection.

A ``sqlite3`` connection must not be used by two threads at once, nor may the Merkle tree's cache of subtree
roots (pymerkle keeps it in a ``cachetools.LRUCache``, which is not thread-safe); a PostgreSQL connection runs
one query at a time. So every thread that reads the log gets its own ``ReadView`` — connection (either backend,
``transparency.log.storage``), ``LogReader``, ``PersistentMerkleTree``, ``LogResources`` — opened on its first
read (``ReadViews.current``). The event loop's thread has one too, for the reads it still makes itself (the latest
checkpoint: one indexed row). Reads that cost more — a page of entries with their receipts, a receipt, a
proof, a tile — run in a ``ReadPool`` thread (``await pool.run(fn, *args)``), at most ``threads`` at a time,
so the loop keeps answering while they run.

Snapshots: ``ReadView.snapshot()`` holds one read transaction (SQLite: ``BEGIN`` … ``COMMIT``, WAL readers never
block the writer nor wait for it; PostgreSQL: ``REPEATABLE READ READ ONLY``, MVCC readers neither), so a read of
several statements — a page and the receipts of its entries — sees one state of the log even while the sequencer
commits. Snapshots nest (the outermost one counts).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from transparency.log.merkle_tree import PersistentMerkleTree
from transparency.log.reader import LogReader
from transparency.log.resources import LogResources
from transparency.log.storage import LogDatabase, LogLocation, open_database

P = ParamSpec("P")
T = TypeVar("T")


class ReadView:
    """One thread's read connection, with the reader and the Merkle tree over it."""

    def __init__(self, db: LogDatabase, page_limit: int = 1000) -> None:
        self.db = db
        self.reader = LogReader(db)
        self.tree = PersistentMerkleTree(db)
        self.resources = LogResources(self.reader, self.tree, page_limit)
        self._depth = 0

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One read transaction for the block (and the blocks nested in it)."""
        if self._depth == 0:
            self.db.begin_snapshot()
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self.db.commit()


class ReadViews:
    """A ``ReadView`` per thread, opened on the thread's first read; ``close`` closes them all."""

    def __init__(self, location: LogLocation, page_limit: int = 1000) -> None:
        self.location = location
        self.page_limit = page_limit
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[ReadView] = []

    def current(self) -> ReadView:
        view: ReadView | None = getattr(self._local, "view", None)
        if view is None:
            view = ReadView(open_database(self.location, create=False), self.page_limit)
            with self._lock:
                self._opened.append(view)
            self._local.view = view
        return view

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for view in opened:
            view.db.close()


class ReadPool:
    """At most ``threads`` reads at a time off the event loop; the others wait their turn (in order).

    With ``nice`` (Linux), the pool's threads run at that lower scheduling priority: bulk reads then give way to
    the event loop's thread when both want a core (the loop is then also sooner in a position to take the GIL).
    """

    def __init__(self, threads: int, *, nice: int = 0, name: str = "log-read") -> None:
        def lower_priority() -> None:
            if nice and sys.platform == "linux":  # a thread's own nice value: Linux only
                with contextlib.suppress(OSError):
                    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)

        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name, initializer=lower_priority)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        """Wait for the reads running; drop those not started."""
        self._executor.shutdown(wait=True, cancel_futures=True)
