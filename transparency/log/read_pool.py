"""Reads of a PostgreSQL log off the event loop: a few threads, each with its own connection.

Every query to PostgreSQL waits for a round trip to the server; made on the event loop, that wait stops every
other request (measured under load: the loop spent about 40% of its time waiting on the registration's two
reads). Here the registration's reads run in a small thread pool, each thread with its own connection and
``LogResources``, while the loop carries on parsing and verifying other requests. On SQLite the reads stay
on the loop: they are in-process and take microseconds, less than a hop to a thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from transparency.log.merkle_tree import PersistentMerkleTree
from transparency.log.reader import LogReader
from transparency.log.resources import LogResources
from transparency.log.storage import LogDatabase, LogLocation, open_database

T = TypeVar("T")
THREADS = 4


class ReadPool:
    def __init__(self, location: LogLocation, page_limit: int, threads: int = THREADS) -> None:
        self.location = location
        self.page_limit = page_limit
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="tabellion-read")
        self._local = threading.local()
        self._opened: list[LogDatabase] = []
        self._lock = threading.Lock()

    async def run(self, read: Callable[[LogResources], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._in_thread, read)

    def _in_thread(self, read: Callable[[LogResources], T]) -> T:
        resources: LogResources | None = getattr(self._local, "resources", None)
        if resources is None:
            db = open_database(self.location, create=False)
            with self._lock:
                self._opened.append(db)
            resources = LogResources(LogReader(db), PersistentMerkleTree(db), self.page_limit)
            self._local.resources = resources
        return read(resources)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        with self._lock:
            for db in self._opened:
                db.close()
            self._opened.clear()
