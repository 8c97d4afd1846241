"""A webhook receiver on 127.0.0.1 that verifies every delivery's signature."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from issuer.webhooks import verify_delivery
from schemas.errors import WebhookRefused
from tests.http_stub import QuietHandler, serving


class Receiver:
    """A webhook endpoint: verifies each delivery, fails the first ``fail_first`` with 500, dedupes by id.

    With ``hold_nth`` it takes the n-th distinct event (1-based) and holds its answer back for ``hold_s``.
    """

    def __init__(
        self, public_key: Ed25519PublicKey, *, fail_first: int = 0, hold_nth: int = 0, hold_s: float = 0.0
    ) -> None:
        self.public_key = public_key
        self.fail_first = fail_first
        self.hold_nth = hold_nth
        self.hold_s = hold_s
        self.lock = threading.Lock()
        self.attempts: list[tuple[str, int]] = []  # (webhook-id, status answered), every request
        self.refused: list[str] = []
        self.received: dict[str, int] = {}  # webhook-id -> times received (verified)
        self.order: list[str] = []  # first receipt of each id, in order
        self.in_flight = threading.Event()

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        try:
            delivery = verify_delivery(headers, body, self.public_key, time.time())
        except WebhookRefused as exc:
            with self.lock:
                self.refused.append(exc.code)
            return 401
        with self.lock:
            if self.fail_first > 0:
                self.fail_first -= 1
                self.attempts.append((delivery.webhook_id, 500))
                return 500
            self.received[delivery.webhook_id] = self.received.get(delivery.webhook_id, 0) + 1
            hold = False
            if self.received[delivery.webhook_id] == 1:
                self.order.append(delivery.webhook_id)
                hold = len(self.order) == self.hold_nth
            self.attempts.append((delivery.webhook_id, 200))
        if hold:
            self.in_flight.set()
            time.sleep(self.hold_s)  # the event is taken; the answer is not sent yet
        return 200


@contextmanager
def receiving(receiver: Receiver) -> Iterator[str]:
    class Handler(QuietHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            status = receiver.handle(dict(self.headers.items()), body)
            try:
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()
            except OSError:
                pass  # the sender died while we held its request

    with serving(Handler) as base:
        yield f"{base}/hooks/tabellion"

