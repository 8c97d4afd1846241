"""Webhooks: signed deliveries of the outbox's events, retried with exponential backoff and jitter.

Deliveries follow Standard Webhooks 1.0 (standardwebhooks.com, spec/standard-webhooks.md) with its
asymmetric signature scheme, ``v1a`` = Ed25519:

    POST <subscription url>
    content-type: application/json
    webhook-id: <event id>            the same on every attempt and for every subscription: the
                                      receiver's idempotency key (dedupe on it: delivery is at least once)
    webhook-timestamp: <integer Unix seconds of this attempt>
    webhook-signature: v1a,<standard base64, padded, of the 64-byte Ed25519 signature>

    {"created": ..., "data": {...}, "id": <event id>, "type": "claim.approved"}   (RFC 8785 canonical JSON)

The signature is over the bytes ``{webhook-id}.{webhook-timestamp}.{body}``, the body exactly as sent (so a
receiver verifies the raw body before parsing it). Event ids never contain a full stop, as the scheme
requires. The header may list several space-separated signatures (key rotation); a receiver accepts the
delivery if one ``v1a`` signature verifies under a key it trusts and ignores the other schemes. Receivers
are given the issuer's public key as ``whpk_`` + base64 of its 32 raw bytes. ``verify_delivery`` is the
receiver's check; it refuses a timestamp more than ``tolerance`` seconds old or ahead (a replay).

A delivery succeeds on a 2xx answer. Anything else — another status (redirects are not followed), a
connection error, no answer within the per-attempt timeout, a URL whose host now resolves to an address that is
not public — is retried after ``RetryPolicy.delay`` (``Retry-After`` is honoured when longer), until
``max_attempts``; then the delivery is dead-lettered (``failed``, kept in the outbox with its last status and
error).

Targets: a subscription URL must resolve to public addresses only, unless the operator allows ranges
(``outbound_allow``, ``transparency.outbound``): checked when subscribing (``subscribe``) and again before every
attempt, which connects to the address it checked (DNS can change in between).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import math
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from issuer.outbox import Delivery, Outbox, Subscription
from schemas.errors import (
    ConfigurationError,
    MalformedKey,
    OutboundTargetRefused,
    WebhookDeliveryMalformed,
    WebhookSignatureInvalid,
    WebhookTimestampInFuture,
    WebhookTimestampStale,
)
from transparency.outbound import (
    AllowedTargets,
    PinnedTarget,
    Resolver,
    check_outbound_url,
    pinned_target,
    resolve_host,
)

SIGNATURE_VERSION: Final = "v1a"
PUBLIC_KEY_PREFIX: Final = "whpk_"
DEFAULT_TOLERANCE_S: Final = 300
MAX_SIGNATURES: Final = 16
"""A receiver looks at no more than this many entries of ``webhook-signature``."""

_WEBHOOK_ID: Final = re.compile(r"[A-Za-z0-9_:-]{1,256}", re.ASCII)
_TIMESTAMP: Final = re.compile(r"[0-9]{1,12}", re.ASCII)
_ERROR_SNIPPET: Final = 200
_DELAY_SECONDS: Final = re.compile(r"[0-9]{1,9}", re.ASCII)


def subscribe(outbox: Outbox, url: str, event_types: Sequence[str], *, allow: AllowedTargets,
              resolve: Resolver = resolve_host) -> Subscription:
    """Subscribe ``url`` to ``event_types`` once its host passed the outbound check (``OutboundTargetRefused``)."""
    check_outbound_url(url, allow=allow, resolve=resolve)
    return outbox.subscribe(url, event_types)


# --- signing and verification ----------------------------------------------------------------------


def signed_content(webhook_id: str, timestamp: int, body: bytes) -> bytes:
    """The bytes a ``v1a`` signature covers: ``{id}.{timestamp}.{body}``."""
    return f"{webhook_id}.{timestamp}.".encode("ascii") + body


def sign_delivery(webhook_id: str, timestamp: int, body: bytes, key: Ed25519PrivateKey) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt to deliver ``body``."""
    if not _WEBHOOK_ID.fullmatch(webhook_id):
        raise WebhookDeliveryMalformed(f"webhook id {webhook_id[:80]!r} is not 1-256 of A-Z a-z 0-9 _ : -")
    signature = key.sign(signed_content(webhook_id, timestamp, body))
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"{SIGNATURE_VERSION},{base64.b64encode(signature).decode('ascii')}",
    }


@dataclass(frozen=True)
class VerifiedDelivery:
    webhook_id: str
    timestamp: int
    event: dict[str, Any]
    """The parsed body: ``id`` (= ``webhook_id``), ``type``, ``created``, ``data``."""


def verify_delivery(
    headers: Mapping[str, str],
    body: bytes,
    public_key: Ed25519PublicKey | Sequence[Ed25519PublicKey],
    now: float,
    tolerance: int = DEFAULT_TOLERANCE_S,
) -> VerifiedDelivery:
    """Check a received delivery (headers and the raw body) against the issuer's key(s); raise if refused."""
    fields = {name.lower(): value for name, value in headers.items()}
    webhook_id, timestamp_text, signatures = (
        fields.get(name) for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
    )
    if webhook_id is None or timestamp_text is None or signatures is None:
        raise WebhookDeliveryMalformed("webhook-id, webhook-timestamp and webhook-signature are all required")
    if not _WEBHOOK_ID.fullmatch(webhook_id):
        raise WebhookDeliveryMalformed(f"webhook-id {webhook_id[:80]!r} is not 1-256 of A-Z a-z 0-9 _ : -")
    if not _TIMESTAMP.fullmatch(timestamp_text):
        raise WebhookDeliveryMalformed(f"webhook-timestamp {timestamp_text[:40]!r} is not integer Unix seconds")
    timestamp = int(timestamp_text)
    if now - timestamp > tolerance:
        raise WebhookTimestampStale(f"webhook-timestamp {timestamp} is {now - timestamp:.0f}s old (> {tolerance}s)")
    if timestamp - now > tolerance:
        raise WebhookTimestampInFuture(
            f"webhook-timestamp {timestamp} is {timestamp - now:.0f}s ahead (> {tolerance}s)"
        )
    keys = [public_key] if isinstance(public_key, Ed25519PublicKey) else list(public_key)
    content = signed_content(webhook_id, timestamp, body)
    if not any(_verifies(sig, content, keys) for sig in _v1a_signatures(signatures)):
        raise WebhookSignatureInvalid(f"no v1a signature of delivery {webhook_id} verifies under a trusted key")
    try:
        event = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WebhookDeliveryMalformed(f"the body of delivery {webhook_id} is not JSON: {exc}") from exc
    if not isinstance(event, dict) or event.get("id") != webhook_id:
        raise WebhookDeliveryMalformed(f"the body of delivery {webhook_id} is not an event with that id")
    return VerifiedDelivery(webhook_id, timestamp, event)


def public_key_text(key: Ed25519PublicKey) -> str:
    """The key as receivers are given it: ``whpk_`` + base64 of its 32 raw bytes."""
    return PUBLIC_KEY_PREFIX + base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode("ascii")


def parse_public_key(text: str) -> Ed25519PublicKey:
    if not text.startswith(PUBLIC_KEY_PREFIX):
        raise MalformedKey(f"a webhook public key starts with {PUBLIC_KEY_PREFIX!r}")
    try:
        raw = base64.b64decode(text[len(PUBLIC_KEY_PREFIX):], validate=True)
    except binascii.Error as exc:
        raise MalformedKey(f"the webhook public key is not base64: {exc}") from exc
    if len(raw) != 32:
        raise MalformedKey(f"an Ed25519 public key has 32 bytes, not {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def _v1a_signatures(header: str) -> list[bytes]:
    found = []
    for entry in header.split(" ")[:MAX_SIGNATURES]:
        version, _, value = entry.partition(",")
        if version != SIGNATURE_VERSION:
            continue  # another scheme (v1 is HMAC) or an empty entry
        try:
            signature = base64.b64decode(value, validate=True)
        except binascii.Error:
            continue
        if len(signature) == 64:
            found.append(signature)
    return found


def _verifies(signature: bytes, content: bytes, keys: list[Ed25519PublicKey]) -> bool:
    for key in keys:
        try:
            key.verify(signature, content)
        except InvalidSignature:
            continue
        return True
    return False


# --- retries ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """When to try again: ``base_delay * multiplier ** (n - 1)`` after the n-th failed attempt, capped.

    Each delay is drawn uniformly from ``[d * (1 - jitter), d]``, so retries of many deliveries that failed
    together spread out and the cap stays a bound. After ``max_attempts`` attempts a delivery is dead-lettered.
    ``timeout`` bounds one attempt (connect, send, answer).
    """

    base_delay: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 3600.0
    max_attempts: int = 20
    jitter: float = 0.25
    timeout: float = 15.0

    def __post_init__(self) -> None:
        if not 0 < self.base_delay <= self.max_delay:
            raise ConfigurationError("webhook retries need 0 < base_delay <= max_delay")
        if self.multiplier < 1 or self.max_attempts < 1 or not 0 <= self.jitter < 1 or self.timeout <= 0:
            raise ConfigurationError("webhook retries need multiplier >= 1, max_attempts >= 1, 0 <= jitter < 1, "
                                     "timeout > 0")

    def backoff(self, attempts: int) -> float:
        """The delay (before jitter) after ``attempts`` failed attempts (1, 2, 4 … with the defaults)."""
        if attempts < 1:
            raise ConfigurationError(f"a backoff follows at least one attempt, not {attempts}")
        if self.multiplier > 1 and attempts - 1 >= math.log(self.max_delay / self.base_delay, self.multiplier):
            return self.max_delay
        return min(self.max_delay, self.base_delay * self.multiplier ** (attempts - 1))

    def delay(self, attempts: int, rng: random.Random) -> float:
        backoff = self.backoff(attempts)
        return backoff - backoff * self.jitter * rng.random()


# --- the delivery worker ---------------------------------------------------------------------------


class WebhookDispatcher:
    """Delivers due outbox rows over HTTP, one in flight per subscription, up to ``max_in_flight`` at once.

    Run it as a task (``await dispatcher.run(stop)``) in the issuer's lifespan; ``notify()`` after an
    enqueue wakes it at once instead of at the next poll. The outbox's SQLite calls run on the event loop's
    thread: they are short, and the outbox must stay on one thread.
    """

    def __init__(
        self,
        outbox: Outbox,
        signing_key: Ed25519PrivateKey,
        *,
        policy: RetryPolicy | None = None,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        max_in_flight: int = 8,
        lease_slack: float = 5.0,
        allow: AllowedTargets | None = None,
        resolve: Resolver = resolve_host,
    ) -> None:
        if max_in_flight < 1:
            raise ConfigurationError("a webhook dispatcher needs max_in_flight >= 1")
        self.outbox = outbox
        self.policy = policy or RetryPolicy()
        self._key = signing_key
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(follow_redirects=False, trust_env=False)
        self._clock = clock
        self._rng = rng or random.SystemRandom()
        self._max_in_flight = max_in_flight
        self._lease = self.policy.timeout + lease_slack
        self._wake = asyncio.Event()
        self._allow = allow or AllowedTargets()
        self._resolve = resolve

    async def __aenter__(self) -> WebhookDispatcher:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    def notify(self) -> None:
        """Something was enqueued: look for due deliveries now."""
        self._wake.set()

    async def deliver_due(self) -> int:
        """Attempt every delivery due now (one per subscription, at most ``max_in_flight``); the number tried."""
        now = self._clock()
        claimed = self.outbox.claim_due(now, now + self._lease, self._max_in_flight)
        await asyncio.gather(*(self._attempt(delivery) for delivery in claimed))
        return len(claimed)

    async def run(self, stop: asyncio.Event, idle: float = 1.0) -> None:
        """Deliver until ``stop`` is set, sleeping until the next due time (at most ``idle`` s) when idle."""
        while not stop.is_set():
            self._wake.clear()
            if await self.deliver_due():
                continue
            next_due = self.outbox.next_due_at()
            wait = idle if next_due is None else min(idle, max(0.0, next_due - self._clock()))
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            try:
                await asyncio.wait(waiters, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()

    async def _attempt(self, delivery: Delivery) -> None:
        headers = sign_delivery(delivery.event_id, int(self._clock()), delivery.body, self._key)
        headers["content-type"] = "application/json"
        try:
            addresses = await asyncio.to_thread(check_outbound_url, delivery.url, allow=self._allow,
                                                resolve=self._resolve)
        except OutboundTargetRefused as exc:
            self._failed(delivery, None, f"{exc.code}: {exc.detail}"[:_ERROR_SNIPPET * 2], None)
            return
        target = pinned_target(delivery.url, addresses[0])
        try:
            status, snippet, retry_after = await asyncio.wait_for(
                self._post(target, delivery.body, {**headers, **target.headers}), self.policy.timeout
            )
        except (httpx.HTTPError, httpx.InvalidURL, OSError, TimeoutError) as exc:
            self._failed(delivery, None, f"{type(exc).__name__}: {exc}"[:_ERROR_SNIPPET * 2], None)
            return
        if 200 <= status < 300:
            self.outbox.mark_delivered(delivery.subscription_id, delivery.seq, self._clock(), status)
        else:
            self._failed(delivery, status, f"HTTP {status}: {snippet}", retry_after)

    async def _post(self, target: PinnedTarget, body: bytes, headers: dict[str, str]) -> tuple[int, str, float | None]:
        async with self._client.stream("POST", target.url, content=body, headers=headers, extensions=target.extensions,
                                       timeout=self.policy.timeout) as response:
            snippet = b""
            if not 200 <= response.status_code < 300:
                async for chunk in response.aiter_bytes():
                    snippet += chunk
                    if len(snippet) >= _ERROR_SNIPPET:
                        break
            return (response.status_code, snippet[:_ERROR_SNIPPET].decode("utf-8", "replace"),
                    _retry_after(response.headers.get("retry-after")))

    def _failed(self, delivery: Delivery, status: int | None, error: str, retry_after: float | None) -> None:
        if delivery.attempts >= self.policy.max_attempts:
            self.outbox.mark_failed(delivery.subscription_id, delivery.seq, status, error)
            return
        delay = self.policy.delay(delivery.attempts, self._rng)
        if retry_after is not None:
            delay = min(max(delay, retry_after), self.policy.max_delay)
        self.outbox.mark_retry(delivery.subscription_id, delivery.seq, self._clock() + delay, status, error)


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` in delay-seconds (an HTTP date is ignored: the backoff applies)."""
    if value is None or not _DELAY_SECONDS.fullmatch(value.strip()):
        return None
    return float(value.strip())
