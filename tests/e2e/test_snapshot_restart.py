"""A real server killed with kill -9 after a snapshot restarts from it: it folds only the entries logged since,
and its issuer answers as before the crash."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.gateway_world import build_world
from tests.server import start_server
from transparency.client import sign_statement

COSE = {"content-type": "application/cose"}


def _plain(n: int) -> bytes:
    key = Ed25519PrivateKey.generate()
    return sign_statement(key, b'{"n": %d}' % n, subject="did:example:x", content_type="application/json")


def _answers(url: str, agents: list[str]) -> list[object]:
    with httpx.Client(base_url=url, timeout=30) as http:
        return [http.get(f"/1.0/identifiers/{did}").json()["didDocument"] for did in agents]


def test_a_crash_after_a_snapshot_restarts_from_it(tmp_path: Path) -> None:
    world = build_world()
    server = start_server(tmp_path, snapshot_every=5, batch_max_wait_ms=0)
    try:
        with httpx.Client(base_url=server, timeout=30) as http:
            for statement in world.statements:
                assert http.post("/entries", content=statement, headers=COSE).status_code == 201
        state = server.data_dir / "state"
        deadline = time.monotonic() + 30
        while not list(state.glob("fold-*.cbor")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(state.glob("fold-*.cbor")), "no snapshot was written in the background"
        with httpx.Client(base_url=server, timeout=30) as http:
            for n in range(3):  # fewer than snapshot_every: no snapshot covers them
                assert http.post("/entries", content=_plain(n), headers=COSE).status_code == 201
            size = int(http.get("/checkpoint").text.splitlines()[1])
        agents = [world.a.identity, world.b.identity, world.c.identity]
        before = _answers(server, agents)
    finally:
        server.kill9()
    saved = int(sorted(state.glob("fold-*.cbor"))[-1].name.split("-")[1])  # the newest the crash left whole
    assert 5 <= saved <= size

    restarted = start_server(tmp_path, data_dir=server.data_dir, snapshot_every=5)
    try:
        assert f"snapshot of tree size {saved} loaded" in restarted.log()
        assert f"ready at tree size {size} " in restarted.log()
        assert f"({size - saved} entries folded)" in restarted.log()
        assert _answers(restarted, agents) == before
    finally:
        restarted.terminate()
