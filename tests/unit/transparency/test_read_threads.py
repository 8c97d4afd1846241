"""Reads off the event loop: a connection per thread, snapshots, pages read from threads while the log grows."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from transparency.client.signing import did_of, sign_statement
from transparency.log.read_threads import ReadViews
from transparency.service import TransparencyService
from transparency.settings import load_settings
from verifier.receipts import verify_receipt


def _statements(n: int, tag: str) -> list[bytes]:
    key = Ed25519PrivateKey.generate()
    return [sign_statement(key, json.dumps({"tag": tag, "n": i, "operator": did_of(key)}).encode(),
                           subject="did:example:reads", content_type="application/json") for i in range(n)]


def test_each_thread_reads_through_its_own_connection(tmp_path: Path) -> None:
    service = TransparencyService(load_settings({"data_dir": tmp_path}, env={}))
    views = ReadViews(service.settings.db_path)
    try:
        mine = views.current()
        assert views.current() is mine
        theirs: list[object] = []
        thread = threading.Thread(target=lambda: theirs.append(views.current()))
        thread.start()
        thread.join()
        assert theirs[0] is not mine and theirs[0].db.conn is not mine.db.conn  # type: ignore[attr-defined]
    finally:
        views.close()
        service.close()


def test_a_snapshot_sees_one_state_of_the_log(tmp_path: Path) -> None:
    service = TransparencyService(load_settings({"data_dir": tmp_path}, env={}))
    views = ReadViews(service.settings.db_path)
    try:
        view = views.current()
        with view.snapshot():
            before = view.reader.latest_head()
            assert before is not None
            with view.snapshot():  # nested: the same transaction
                asyncio.run(service.register(_statements(1, "snapshot")[0]))
                assert view.reader.latest_head() == before
            assert view.reader.entries(0, 10) == []
        after = view.reader.latest_head()
        assert after is not None and after.tree_size == before.tree_size + 1
    finally:
        views.close()
        service.close()


def test_pages_read_from_threads_while_the_log_grows_carry_valid_receipts(tmp_path: Path) -> None:
    service = TransparencyService(load_settings({"data_dir": tmp_path, "batch_max_entries": 16}, env={}))
    statements = _statements(400, "grow")
    pages: list[list[tuple[int, bytes, bytes]]] = []

    async def main() -> None:
        async def follow() -> None:
            for _ in range(3000):  # until the page holds every statement
                page = await service.read_pages(service.entries, 0, 1000)
                pages.append([(e.index, e.statement, e.receipt) for e in page])
                if len(page) == len(statements):
                    return
                await asyncio.sleep(0.005)

        async def point_reads() -> None:
            for _ in range(30):
                size = service.latest_head().tree_size
                if size:
                    await service.read(service.consistency, 1, size)
                await asyncio.sleep(0)

        async def register() -> None:  # in waves, so that the pages see the log grow whatever its speed
            for start in range(0, len(statements), 25):
                await asyncio.gather(*(service.register(s) for s in statements[start:start + 25]))
                await asyncio.sleep(0.01)

        await asyncio.gather(register(), follow(), follow(), point_reads())

    try:
        asyncio.run(main())
        keys = service.key_set
        assert len({len(p) for p in pages}) > 2  # the pages saw the log grow
        for page in pages:
            assert [index for index, _, _ in page] == list(range(len(page)))  # a prefix of the log, no gaps
            for _, statement, receipt in page[:: max(1, len(page) // 10)]:
                verify_receipt(receipt, statement, keys)
        assert len(service.entries(0, 1000)) == len(statements)
    finally:
        service.close()
