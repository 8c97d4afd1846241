"""Pages of entries are read off the event loop: while followers read large pages, GET /checkpoint still answers
in milliseconds (before, each page of 1000 entries with receipts held the loop for 100+ ms)."""

from __future__ import annotations

import asyncio
import json
import statistics
import threading
import time
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.server import running_server
from transparency.client.signing import did_of, sign_statement
from transparency.service import TransparencyService
from transparency.settings import load_settings

ENTRIES = 1200


def _log_of(data_dir: Path, entries: int) -> None:
    """A log of ``entries`` statements, written in process (faster than over HTTP)."""
    key = Ed25519PrivateKey.generate()
    did = did_of(key)
    bodies = [sign_statement(key, json.dumps({"n": i, "operator": did}).encode(), subject="did:example:pages",
                             content_type="application/json") for i in range(entries)]

    async def register() -> None:
        service = TransparencyService(load_settings({"data_dir": data_dir}, env={}))
        try:
            await asyncio.gather(*(service.register(body) for body in bodies))
        finally:
            service.close()

    asyncio.run(register())


def test_checkpoint_answers_while_pages_are_read(tmp_path: Path) -> None:
    _log_of(tmp_path / "data", ENTRIES)
    with running_server(tmp_path, data_dir=tmp_path / "data") as url:
        stop = threading.Event()
        pages: list[float] = []

        def follower(n: int) -> None:
            with httpx.Client(base_url=url, timeout=60) as client:
                while not stop.is_set():
                    t0 = time.perf_counter()
                    answer = client.get("/entries", params={"start": n * 50, "limit": 1000})
                    assert answer.status_code == 200
                    pages.append(time.perf_counter() - t0)

        readers = [threading.Thread(target=follower, args=(n,)) for n in range(4)]
        for reader in readers:
            reader.start()
        try:
            with httpx.Client(base_url=url, timeout=60) as client:
                while len(pages) < 4:
                    time.sleep(0.01)
                latencies = []
                for _ in range(40):
                    t0 = time.perf_counter()
                    assert client.get("/checkpoint").status_code == 200
                    latencies.append(time.perf_counter() - t0)
                    time.sleep(0.01)
        finally:
            stop.set()
            for reader in readers:
                reader.join(60)
        assert statistics.median(pages) > 0.05, "pages too cheap to tell"
        assert statistics.median(latencies) < statistics.median(pages) / 4, (latencies, pages)
