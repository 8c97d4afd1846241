"""Webhooks end to end: a real HTTP receiver on 127.0.0.1 that verifies every v1a signature (the dispatchers allow
127.0.0.0/8 explicitly: it is refused by default, see transparency.outbound).

- The receiver fails the first deliveries with 500: the dispatcher retries with backoff until it accepts.
- A crash: the dispatcher runs in a subprocess and is killed with SIGKILL while a delivery is in flight;
  after a restart every event is delivered, at least once (the receiver dedupes by ``webhook-id``).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from issuer.outbox import Outbox, log_event_id, open_outbox
from issuer.webhooks import RetryPolicy, WebhookDispatcher, sign_delivery
from tests.e2e.webhook_receiver import Receiver, receiving
from tests.server import REPO
from tests.waiting import DEADLINE_S, wait_for
from transparency.outbound import AllowedTargets

LOOPBACK = AllowedTargets.parse("127.0.0.0/8")


def _event_ids(n: int) -> list[str]:
    return [log_event_id(f"{i:064x}", "claim.submitted") for i in range(1, n + 1)]


def _enqueue(outbox: Outbox, ids: list[str]) -> None:
    for n, event_id in enumerate(ids, 1):
        outbox.enqueue("claim.submitted", {"claim": f"c{n}", "n": n}, event_id)


def test_failed_deliveries_are_retried_until_the_receiver_accepts(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    receiver = Receiver(key.public_key(), fail_first=2)
    ids = _event_ids(3)
    with receiving(receiver) as url:
        outbox = open_outbox(tmp_path / "issuer-cache.sqlite")
        outbox.subscribe(url, ["claim.*"])
        _enqueue(outbox, ids)

        async def dispatch() -> None:
            policy = RetryPolicy(base_delay=0.2, max_delay=1.0, timeout=5.0)
            async with WebhookDispatcher(outbox, key, policy=policy, allow=LOOPBACK) as dispatcher:
                stop = asyncio.Event()
                task = asyncio.create_task(dispatcher.run(stop, idle=0.1))
                started = time.monotonic()
                while len(outbox.deliveries("delivered")) < len(ids):
                    assert time.monotonic() - started < DEADLINE_S, outbox.deliveries()
                    await asyncio.sleep(0.02)
                stop.set()
                await task

        started = time.monotonic()
        asyncio.run(dispatch())
        elapsed = time.monotonic() - started

        # the receiver checks signatures: a tampered delivery is refused
        headers = sign_delivery(ids[0], int(time.time()), b'{"id":"%s"}' % ids[0].encode(), key)
        assert httpx.post(url, content=b'{"id":"forged"}', headers=headers).status_code == 401
        body = b'{"id":"%s"}' % ids[0].encode()
        other = sign_delivery(ids[0], int(time.time()), body, Ed25519PrivateKey.generate())
        assert httpx.post(url, content=body, headers=other).status_code == 401

    assert receiver.attempts == [(ids[0], 500), (ids[0], 500), (ids[0], 200), (ids[1], 200), (ids[2], 200)]
    assert receiver.refused == ["webhook-signature-invalid", "webhook-signature-invalid"]
    assert receiver.order == ids
    rows = {d.event_id: d for d in outbox.deliveries()}
    assert [rows[i].attempts for i in ids] == [3, 1, 1]
    assert {d.status for d in rows.values()} == {"delivered"}
    assert elapsed >= 0.15 + 0.3  # two backoffs (0.2 s, then 0.4 s, each with up to 25 % jitter) were waited
    outbox.close()


_DISPATCHER = """
import asyncio, sys
from pathlib import Path
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from issuer.outbox import open_outbox
from issuer.webhooks import RetryPolicy, WebhookDispatcher
from transparency.outbound import AllowedTargets

async def main() -> None:
    outbox = open_outbox(Path(sys.argv[1]))
    key = Ed25519PrivateKey.from_private_bytes(Path(sys.argv[2]).read_bytes())
    policy = RetryPolicy(base_delay=0.1, max_delay=0.5, timeout=2.0)
    async with WebhookDispatcher(outbox, key, policy=policy, lease_slack=0.5,
                                 allow=AllowedTargets.parse("127.0.0.0/8")) as dispatcher:
        await dispatcher.run(asyncio.Event(), idle=0.1)

asyncio.run(main())
"""


def _start_dispatcher(db: Path, key_file: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-c", _DISPATCHER, str(db), str(key_file)], cwd=REPO,
                                stdout=out, stderr=subprocess.STDOUT)


def test_kill9_mid_delivery_then_restart_delivers_every_event(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    key_file = tmp_path / "webhook.key"
    key_file.write_bytes(key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))
    db = tmp_path / "issuer-cache.sqlite"
    log = tmp_path / "dispatcher.log"
    receiver = Receiver(key.public_key(), hold_nth=6, hold_s=5.0)
    ids = _event_ids(20)
    with receiving(receiver) as url:
        outbox = open_outbox(db)
        outbox.subscribe(url, ["*"])
        _enqueue(outbox, ids)
        outbox.close()

        first = _start_dispatcher(db, key_file, log)
        try:
            wait_for(receiver.in_flight.is_set, "the 6th delivery")
            first.kill()  # SIGKILL while the receiver holds a delivery it has taken
            first.wait(10)
            with receiver.lock:
                taken_at_kill = list(receiver.order)
        finally:
            if first.poll() is None:
                first.kill()
        assert taken_at_kill == ids[:6]
        outbox = open_outbox(db)
        unconfirmed = taken_at_kill[-1]
        pending = {d.event_id for d in outbox.deliveries("pending")}
        assert unconfirmed in pending  # the receiver took it, the dispatcher never heard back
        outbox.close()

        second = _start_dispatcher(db, key_file, log)
        try:
            wait_for(lambda: set(receiver.received) == set(ids), f"every event; log:\n{log.read_text()}")
            outbox = open_outbox(db)
            wait_for(lambda: len(outbox.deliveries("delivered")) == len(ids), "every row marked delivered")
        finally:
            second.kill()
            second.wait(10)

    assert receiver.refused == []
    assert receiver.order == ids  # first receipts in event sequence, across the crash
    assert receiver.received[unconfirmed] == 2  # at least once: the unconfirmed one came again
    assert all(receiver.received[i] == 1 for i in ids if i != unconfirmed)
    rows = {d.event_id: d for d in outbox.deliveries()}
    assert rows[unconfirmed].attempts == 2
    assert {d.status for d in rows.values()} == {"delivered"}
    outbox.close()
