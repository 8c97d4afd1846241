"""A webhook target that answers without end — a 2xx body that never stops, a length of 1 TiB, an endless error
page — costs the dispatcher one attempt within its timeout and no memory: a 2xx is delivered without its body
being read, an error keeps 200 bytes of it. A real hostile server on 127.0.0.1 (allowed by the operator's range)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from issuer.outbox import log_event_id, open_outbox
from issuer.webhooks import RetryPolicy, WebhookDispatcher
from tests.hostile_server import hostile_server
from transparency.outbound import AllowedTargets

KEY = Ed25519PrivateKey.generate()


def test_endless_answers_cost_one_bounded_attempt(tmp_path: Path) -> None:
    outbox = open_outbox(tmp_path / "cache.sqlite")
    try:
        with hostile_server({"/refuse/hook": (500, b"x" * 100_000)}) as url:
            for kind in ("endless", "declared", "refuse"):
                outbox.subscribe(f"{url}/{kind}/hook", ["*"])
            outbox.enqueue("claim.approved", {"claim": "c1"}, log_event_id("ab" * 32, "claim.approved"))

            async def main() -> int:
                async with WebhookDispatcher(outbox, KEY, policy=RetryPolicy(timeout=5.0),
                                             allow=AllowedTargets.parse("127.0.0.0/8")) as dispatcher:
                    return await dispatcher.deliver_due()

            started = time.monotonic()
            assert asyncio.run(main()) == 3
            assert time.monotonic() - started < 5
        by_url = {d.url.rsplit("/", 2)[-2]: d for d in outbox.deliveries()}
        assert by_url["endless"].status == "delivered" and by_url["declared"].status == "delivered"
        refused = by_url["refuse"]
        assert refused.status == "pending" and refused.last_status == 500
        assert refused.last_error is not None and len(refused.last_error) < 300
    finally:
        outbox.close()
