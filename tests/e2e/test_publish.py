"""``--publish-dir``: the log written as immutable files, served by a plain ``python -m http.server``, followed and
verified from there (the follower, ``tabellion follow``, ``tabellion fetch``/``verify``), on both backends; the
published files are the service's own answers byte for byte, and a tampered one is caught."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest

from schemas.checkpoint import parse_checkpoint
from schemas.errors import CheckpointInconsistent
from schemas.note import parse_note, parse_vkey
from schemas.tiles import entries_path, statements_path, tile_path
from tests.cli_process import run_cli
from tests.server import REPO, running_server
from tests.static_server import static_server
from transparency.client import generate_key, sign_statement
from transparency.client.follower import FollowedEntry, LogFollower
from transparency.client.tiles import TileLogClient
from verifier.keys import parse_key_set

COSE = {"Content-Type": "application/cose"}


async def _register(url: str, statements: Sequence[bytes]) -> None:
    sem = asyncio.Semaphore(16)
    async with httpx.AsyncClient(timeout=30.0) as client:

        async def one(body: bytes) -> None:
            async with sem:
                r = await client.post(f"{url}/entries", content=body, headers=COSE)
                assert r.status_code == 201, r.text

        await asyncio.gather(*(one(s) for s in statements))


def _statements(start: int, count: int) -> list[bytes]:
    key = generate_key()
    return [sign_statement(key, b'{"n":%d}' % i, subject=f"urn:example:{i}", content_type="application/json")
            for i in range(start, start + count)]


def _published_size(folder: Path) -> int:
    path = folder / "checkpoint"
    return parse_checkpoint(parse_note(path.read_text()).text).size if path.exists() else -1


def _wait_published(folder: Path, size: int) -> None:
    deadline = time.monotonic() + 30
    while _published_size(folder) != size:
        assert time.monotonic() < deadline, f"the folder's checkpoint never reached size {size}"
        time.sleep(0.05)


def _tabellion(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """From another folder, with nothing in the environment but the code's path."""
    return run_cli(*args, cwd=cwd, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


def test_a_published_folder_on_a_static_server_is_followed_and_verified(
    tmp_path: Path, log_database: str | None
) -> None:
    folder = tmp_path / "published"
    first, second = 600, 77  # two full bundles and a partial one; then across a tile boundary
    with running_server(tmp_path, database=log_database, publish_dir=folder) as log, static_server(folder) as static:
        asyncio.run(_register(log, _statements(0, first)))
        _wait_published(folder, first)
        vkey_text = httpx.get(f"{log}/log/vkey").text
        vkey, keys = parse_vkey(vkey_text), parse_key_set(httpx.get(f"{log}/.well-known/scitt-keys").content)
        for path in (tile_path(0, 0), tile_path(0, 2, 88), tile_path(1, 0, 2), entries_path(1),
                     entries_path(2, 88), statements_path(0), statements_path(2, 88), "log/vkey",
                     ".well-known/scitt-keys"):
            assert httpx.get(f"{static}/{path}").content == httpx.get(f"{log}/{path}").content, path
        assert httpx.get(f"{static}/checkpoint").text == httpx.get(f"{log}/checkpoint").text
        # the service's statement bundles, asked by anyone: bad paths are refused, not answered with a 5xx
        for path, status in (("statements/abc", 400), ("statements/000.p/0", 400), ("statements/x000/001", 400),
                             ("statements/003", 404), ("statements/002", 404), ("statements/002.p/89", 404)):
            answer = httpx.get(f"{log}/{path}")
            assert answer.status_code == status and answer.headers["content-type"].startswith("application/"), path

        # the follower, reading only the static server
        followed: list[FollowedEntry] = []
        with TileLogClient(static, poll_interval=0.05) as client:
            follower = LogFollower(client, vkey, keys, followed.extend, page=100)
            assert follower.poll().size == first
            asyncio.run(_register(log, _statements(first, second)))
            _wait_published(folder, first + second)
            assert follower.poll(wait=5).size == first + second  # consistency proved from tiles
        assert [e.index for e in followed] == list(range(first + second))
        page = httpx.get(f"{log}/entries", params={"start": 512, "limit": 88}).content
        assert page == httpx.get(f"{static}/{statements_path(2, 88)}").content  # a follower page, as published

        # an auditor with the keys: fetch and verify offline, then check all of it with tabellion follow
        work = tmp_path / "work"
        work.mkdir()
        (work / "log.vkey").write_text(vkey_text)
        (work / "log.keys").write_bytes(httpx.get(f"{static}/.well-known/scitt-keys").content)
        kept = work / "kept.checkpoint"
        kept.write_text(httpx.get(f"{static}/checkpoint").text)
        done = _tabellion("fetch", "checkpoint", static, "-o", "now.checkpoint", cwd=work)
        assert done.returncode == 0, done.stderr
        done = _tabellion("verify", "checkpoint", "now.checkpoint", "--log-key", "log.vkey", cwd=work)
        assert done.returncode == 0 and done.stdout.startswith("OK"), done.stdout + done.stderr
        done = _tabellion("follow", static, "--log-key", "log.vkey", "--log-keys", "log.keys", "--since",
                          str(kept), "-o", "followed.checkpoint", cwd=work)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"OK: tabellion.localhost/log at tree size {first + second}"), done.stdout
        assert (work / "followed.checkpoint").read_text() == kept.read_text()

        # the same command reads the service itself: it answers on the same paths
        done = _tabellion("follow", log, "--log-key", "log.vkey", "--log-keys", "log.keys", cwd=work)
        assert done.returncode == 0 and done.stdout.startswith("OK"), done.stderr

        # a tampered hash tile (a full one, which is never written again): the proofs computed from it fail
        tile = folder / tile_path(0, 1)
        original = tile.read_bytes()
        tile.write_bytes(original[:40] + bytes([original[40] ^ 1]) + original[41:])
        done = _tabellion("follow", static, "--log-key", "log.vkey", "--log-keys", "log.keys", cwd=work)
        assert done.returncode == 1 and "no longer trusted" in done.stderr, done.stdout + done.stderr
        tile.write_bytes(original)
        # a tampered entry bundle (no proof uses it): the check of the tiles against the statements names it
        entries = folder / entries_path(0)
        original = entries.read_bytes()
        entries.write_bytes(original[:40] + bytes([original[40] ^ 1]) + original[41:])
        done = _tabellion("follow", static, "--log-key", "log.vkey", "--log-keys", "log.keys", cwd=work)
        assert done.returncode == 1 and "entry bundle tile/entries/000" in done.stderr, done.stdout + done.stderr
        entries.write_bytes(original)

        # a statement swapped in a statement bundle: its receipt no longer verifies, the follower stops trusting
        bundle = folder / statements_path(0)
        original = bundle.read_bytes()
        at = original.index(b'{"n":7}')
        bundle.write_bytes(original[:at] + b'{"n":8}' + original[at + 7:])
        swapped = pytest.raises(CheckpointInconsistent, match="no longer trusted.*receipt signature")
        with TileLogClient(static) as client, swapped:
            LogFollower(client, vkey, keys, lambda entries: None).poll()
        bundle.write_bytes(original)


def test_a_restarted_service_carries_on_publishing_and_refuses_another_logs_folder(tmp_path: Path) -> None:
    folder = tmp_path / "published"
    with running_server(tmp_path, publish_dir=folder) as log:
        asyncio.run(_register(log, _statements(0, 300)))
        _wait_published(folder, 300)
        data_dir = log.data_dir
    with running_server(tmp_path, data_dir=data_dir, publish_dir=folder) as log:
        asyncio.run(_register(log, _statements(300, 10)))
        _wait_published(folder, 310)
        assert (folder / tile_path(0, 1, 54)).exists()
    with pytest.raises(RuntimeError, match="is not a checkpoint of this log"), \
            running_server(tmp_path / "other", publish_dir=folder):
        pass
