"""The delivery worker against an in-process transport: success, retries with backoff, dead letters, order."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from issuer.outbox import Outbox, log_event_id, open_outbox
from issuer.webhooks import RetryPolicy, WebhookDispatcher, subscribe, verify_delivery
from schemas.errors import ConfigurationError, OutboundTargetRefused
from tests.clock import Clock
from transparency.outbound import AllowedTargets

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
URL = "http://receiver.test/hook"
PUBLIC = "93.184.215.14"


def _public(host: str, port: int) -> list[str]:
    """The resolver of these tests: every host is one public address (no DNS needed; the transport is mocked)."""
    return [PUBLIC]
Handler = Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = open_outbox(tmp_path / "cache.sqlite")
    yield box
    box.close()


def _event_id(n: int) -> str:
    return log_event_id(f"{n:064x}", "claim.approved")


def _run(
    outbox: Outbox, handler: Handler, clock: Clock, policy: RetryPolicy,
    steps: Callable[[WebhookDispatcher], Awaitable[None]], **kwargs: object,
) -> None:
    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            options: dict[str, Any] = {"resolve": _public, **kwargs}
            dispatcher = WebhookDispatcher(outbox, KEY, policy=policy, client=client, clock=clock,
                                           rng=random.Random(7), **options)
            await steps(dispatcher)

    asyncio.run(main())


def _receiver(statuses: list[int], seen: list[tuple[str, int]], clock: Clock, **headers: str) -> Handler:
    """Answers the statuses in turn (then 200); records (webhook-id, status) after checking the signature."""

    async def handler(request: httpx.Request) -> httpx.Response:
        verified = verify_delivery(request.headers, request.content, KEY.public_key(), clock())
        assert request.headers["content-type"] == "application/json"
        assert verified.event["type"] == "claim.approved"
        status = statuses.pop(0) if statuses else 200
        seen.append((verified.webhook_id, status))
        return httpx.Response(status, text="boom" if status >= 300 else "ok", headers=headers)

    return handler


# --- the backoff schedule -------------------------------------------------------------------------------


def test_default_backoff_doubles_from_one_second_up_to_the_cap() -> None:
    policy = RetryPolicy()
    assert [policy.backoff(n) for n in range(1, 15)] == [
        1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3600, 3600
    ]
    assert policy.backoff(10**6) == 3600  # no overflow however many attempts


def test_custom_backoff() -> None:
    policy = RetryPolicy(base_delay=0.5, multiplier=3, max_delay=10)
    assert [policy.backoff(n) for n in range(1, 6)] == [0.5, 1.5, 4.5, 10, 10]
    assert [RetryPolicy(multiplier=1, base_delay=5).backoff(n) for n in (1, 50)] == [5, 5]


def test_jitter_stays_between_the_backoff_and_its_lower_bound() -> None:
    policy = RetryPolicy(jitter=0.25)
    rng = random.Random(1)
    for attempts in range(1, 16):
        delays = [policy.delay(attempts, rng) for _ in range(200)]
        backoff = policy.backoff(attempts)
        assert all(backoff * 0.75 <= d <= backoff for d in delays)
        assert max(delays) - min(delays) > backoff * 0.1  # really spread
    assert RetryPolicy(jitter=0).delay(3, rng) == 4


@pytest.mark.parametrize(
    "kwargs",
    [{"base_delay": 0}, {"base_delay": 10, "max_delay": 5}, {"multiplier": 0.5}, {"max_attempts": 0},
     {"jitter": 1}, {"jitter": -0.1}, {"timeout": 0}],
)
def test_bad_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_backoff_follows_an_attempt() -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy().backoff(0)


# --- deliveries ------------------------------------------------------------------------------------------


def test_a_2xx_marks_the_delivery_delivered(outbox: Outbox) -> None:
    clock = Clock(1_700_000_000.0)
    outbox.subscribe(URL, ["*"])
    outbox.enqueue("claim.approved", {"claim": "c1"}, _event_id(1))
    seen: list[tuple[str, int]] = []

    async def steps(d: WebhookDispatcher) -> None:
        assert await d.deliver_due() == 1
        assert await d.deliver_due() == 0

    _run(outbox, _receiver([202], seen, clock), clock, RetryPolicy(), steps)
    assert seen == [(_event_id(1), 202)]
    (delivery,) = outbox.deliveries()
    assert (delivery.status, delivery.attempts, delivery.last_status, delivery.delivered_at) == (
        "delivered", 1, 202, clock.now
    )


def test_failures_are_retried_on_the_backoff_schedule_then_delivered(outbox: Outbox) -> None:
    clock = Clock(1_700_000_000.0)
    outbox.subscribe(URL, ["*"])
    outbox.enqueue("claim.approved", {}, _event_id(1))
    seen: list[tuple[str, int]] = []
    start = clock.now

    async def steps(d: WebhookDispatcher) -> None:
        assert await d.deliver_due() == 1  # 500
        (row,) = outbox.deliveries()
        assert (row.status, row.attempts, row.next_attempt_at, row.last_status) == ("pending", 1, start + 1, 500)
        assert row.last_error == "HTTP 500: boom"
        clock.now += 0.9
        assert await d.deliver_due() == 0  # not yet due
        clock.now = start + 1
        assert await d.deliver_due() == 1  # 503
        assert outbox.deliveries()[0].next_attempt_at == start + 1 + 2
        clock.now = start + 3
        assert await d.deliver_due() == 1  # 200

    _run(outbox, _receiver([500, 503], seen, clock), clock, RetryPolicy(jitter=0), steps)
    assert seen == [(_event_id(1), 500), (_event_id(1), 503), (_event_id(1), 200)]
    (row,) = outbox.deliveries()
    assert (row.status, row.attempts, row.last_status, row.last_error) == ("delivered", 3, 200, None)


def test_after_max_attempts_the_delivery_is_dead_lettered(outbox: Outbox) -> None:
    clock = Clock(1_700_000_000.0)
    outbox.subscribe(URL, ["*"])
    outbox.enqueue("claim.approved", {}, _event_id(1))
    outbox.enqueue("claim.approved", {}, _event_id(2))
    seen: list[tuple[str, int]] = []

    async def steps(d: WebhookDispatcher) -> None:
        for _ in range(3):
            assert await d.deliver_due() == 1
            clock.now += 1000
        assert await d.deliver_due() == 1  # the next event, now that the first is dead

    _run(outbox, _receiver([500, 500, 410], seen, clock), clock, RetryPolicy(max_attempts=3), steps)
    assert seen == [(_event_id(1), 500), (_event_id(1), 500), (_event_id(1), 410), (_event_id(2), 200)]
    (dead,) = outbox.deliveries("failed")
    assert (dead.event_id, dead.attempts, dead.last_status, dead.last_error) == (
        _event_id(1), 3, 410, "HTTP 410: boom"
    )


def test_connection_errors_and_timeouts_are_retried(outbox: Outbox) -> None:
    clock = Clock(1_700_000_000.0)
    outbox.subscribe(URL, ["*"])
    outbox.enqueue("claim.approved", {}, _event_id(1))
    calls: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers["webhook-id"])
        if len(calls) == 1:
            raise httpx.ConnectError("connection refused", request=request)
        if len(calls) == 2:
            await asyncio.sleep(5)  # longer than the per-attempt timeout
        return httpx.Response(204)

    async def steps(d: WebhookDispatcher) -> None:
        await d.deliver_due()
        row = outbox.deliveries()[0]
        assert (row.status, row.last_status) == ("pending", None)
        assert row.last_error is not None and row.last_error.startswith("ConnectError: connection refused")
        clock.now += 10
        await d.deliver_due()
        row = outbox.deliveries()[0]
        assert row.last_error is not None and row.last_error.startswith("TimeoutError")
        clock.now += 10
        await d.deliver_due()

    _run(outbox, handler, clock, RetryPolicy(timeout=0.1), steps)
    assert len(calls) == 3
    assert outbox.deliveries()[0].status == "delivered"


def test_redirects_are_not_followed(outbox: Outbox) -> None:
    clock = Clock(1_700_000_000.0)
    outbox.subscribe(URL, ["*"])
    outbox.enqueue("claim.approved", {}, _event_id(1))
    seen: list[tuple[str, int]] = []

    async def steps(d: WebhookDispatcher) -> None:
        await d.deliver_due()

    _run(outbox, _receiver([302], seen, clock, location="http://elsewhere.test/"), clock, RetryPolicy(), steps)
    assert seen == [(_event_id(1), 302)]
    assert outbox.deliveries()[0].last_status == 302


@pytest.mark.parametrize(("retry_after", "expected"), [("30", 30.0), ("99999", 600.0), ("soon", 1.0)])
def test_retry_after_is_honoured_up_to_the_cap(outbox: Outbox, retry_after: str, expected: float) -> None:
    clock = Clock(1_700_000_000.0)
    outbox.subscribe(URL, ["*"])
    outbox.enqueue("claim.approved", {}, _event_id(1))
    seen: list[tuple[str, int]] = []

    async def steps(d: WebhookDispatcher) -> None:
        await d.deliver_due()

    policy = RetryPolicy(jitter=0, max_delay=600)
    _run(outbox, _receiver([429], seen, clock, **{"retry-after": retry_after}), clock, policy, steps)
    assert outbox.deliveries()[0].next_attempt_at == clock.now + expected


def test_per_subscription_order_holds_through_retries(outbox: Outbox) -> None:
    clock = Clock(1_700_000_000.0)
    slow = outbox.subscribe(URL + "/slow", ["*"])
    fast = outbox.subscribe(URL + "/fast", ["*"])
    for n in range(1, 4):
        outbox.enqueue("claim.approved", {"n": n}, _event_id(n))
    order: dict[str, list[str]] = {"/slow": [], "/fast": []}
    failures = {"/slow": 2}

    async def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/hook")
        if failures.get(path, 0) > 0:
            failures[path] -= 1
            return httpx.Response(500)
        order[path].append(request.headers["webhook-id"])
        return httpx.Response(200)

    async def steps(d: WebhookDispatcher) -> None:
        for _ in range(20):
            await d.deliver_due()
            clock.now += 100

    _run(outbox, handler, clock, RetryPolicy(), steps)
    expected = [_event_id(n) for n in range(1, 4)]
    assert order == {"/slow": expected, "/fast": expected}
    attempts = {(d.subscription_id, d.event_id): d.attempts for d in outbox.deliveries()}
    assert attempts[(slow.id, _event_id(1))] == 3 and attempts[(fast.id, _event_id(1))] == 1


def test_at_most_max_in_flight_deliveries_at_once(outbox: Outbox) -> None:
    clock = Clock(1_700_000_000.0)
    for n in range(3):
        outbox.subscribe(f"{URL}/{n}", ["*"])
    outbox.enqueue("claim.approved", {}, _event_id(1))
    seen: list[tuple[str, int]] = []

    async def steps(d: WebhookDispatcher) -> None:
        assert await d.deliver_due() == 2
        assert await d.deliver_due() == 1

    _run(outbox, _receiver([], seen, clock), clock, RetryPolicy(), steps, max_in_flight=2)
    assert len(seen) == 3


def test_run_delivers_what_is_enqueued_and_stops(outbox: Outbox) -> None:
    outbox.subscribe(URL, ["*"])
    received: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        received.append(json.loads(request.content)["id"])
        return httpx.Response(200)

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            dispatcher = WebhookDispatcher(outbox, KEY, client=client, resolve=_public)
            stop = asyncio.Event()
            task = asyncio.create_task(dispatcher.run(stop, idle=30))
            await asyncio.sleep(0.05)
            outbox.enqueue("claim.approved", {}, _event_id(1))
            dispatcher.notify()  # woken at once, not after the 30 s idle wait
            for _ in range(100):
                if received:
                    break
                await asyncio.sleep(0.01)
            stop.set()
            await asyncio.wait_for(task, 2)

    asyncio.run(main())
    assert received == [_event_id(1)]
    assert outbox.deliveries()[0].status == "delivered"


def test_max_in_flight_must_be_positive(outbox: Outbox) -> None:
    with pytest.raises(ConfigurationError):
        WebhookDispatcher(outbox, KEY, max_in_flight=0)


# --- targets: checked before every attempt, the checked address connected to --------------------------------------


def test_the_attempt_connects_to_the_address_checked_with_the_name_as_host(outbox: Outbox) -> None:
    outbox.subscribe("https://receiver.test:8443/hook?x=1", ["*"])
    outbox.enqueue("claim.approved", {}, _event_id(1))
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    async def steps(dispatcher: WebhookDispatcher) -> None:
        await dispatcher.deliver_due()

    _run(outbox, handler, Clock(1_700_000_000.0), RetryPolicy(), steps)
    assert [str(r.url) for r in seen] == [f"https://{PUBLIC}:8443/hook?x=1"]
    assert seen[0].headers["host"] == "receiver.test:8443"
    assert seen[0].extensions["sni_hostname"] == "receiver.test"


@pytest.mark.parametrize("address", ["169.254.169.254", "127.0.0.1", "10.1.2.3", "::1", "::ffff:192.168.0.1",
                                     "fd00::1"])
def test_a_name_that_now_resolves_to_a_private_address_is_not_sent_to(outbox: Outbox, address: str) -> None:
    """DNS may change after the subscription was checked: the attempt fails before any request and is retried."""
    outbox.subscribe(URL, ["*"])
    outbox.enqueue("claim.approved", {}, _event_id(1))
    seen: list[tuple[str, int]] = []
    clock = Clock(1_700_000_000.0)

    async def steps(dispatcher: WebhookDispatcher) -> None:
        await dispatcher.deliver_due()

    _run(outbox, _receiver([], seen, clock), clock, RetryPolicy(), steps, resolve=lambda host, port: [PUBLIC, address])
    assert seen == []
    delivery = outbox.deliveries()[0]
    assert delivery.status == "pending" and delivery.attempts == 1 and delivery.last_status is None
    assert (delivery.last_error or "").startswith("outbound-target-refused:")
    assert delivery.next_attempt_at > clock.now


def test_allowed_ranges_are_delivered_to(outbox: Outbox) -> None:
    outbox.subscribe("http://127.0.0.1:9/hook", ["*"])
    outbox.enqueue("claim.approved", {}, _event_id(1))
    seen: list[tuple[str, int]] = []
    clock = Clock(1_700_000_000.0)

    async def steps(dispatcher: WebhookDispatcher) -> None:
        await dispatcher.deliver_due()

    _run(outbox, _receiver([], seen, clock), clock, RetryPolicy(), steps, allow=AllowedTargets.parse("127.0.0.0/8"))
    assert seen == [(_event_id(1), 200)]


def test_subscribing_checks_the_target(outbox: Outbox) -> None:
    with pytest.raises(OutboundTargetRefused):
        subscribe(outbox, "http://169.254.169.254/latest/meta-data", ["*"], allow=AllowedTargets())
    with pytest.raises(OutboundTargetRefused):
        subscribe(outbox, URL, ["*"], allow=AllowedTargets(), resolve=lambda host, port: ["10.0.0.7"])
    assert outbox.subscriptions() == []
    assert subscribe(outbox, URL, ["*"], allow=AllowedTargets(), resolve=_public).url == URL
