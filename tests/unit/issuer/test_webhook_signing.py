"""Standard Webhooks v1a (Ed25519) signatures: what is signed, what a receiver accepts and refuses."""

from __future__ import annotations

import base64
import hmac
from hashlib import sha256

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from issuer.webhooks import (
    parse_public_key,
    public_key_text,
    sign_delivery,
    signed_content,
    verify_delivery,
)
from schemas.errors import (
    MalformedKey,
    WebhookDeliveryMalformed,
    WebhookRefused,
    WebhookSignatureInvalid,
    WebhookTimestampInFuture,
    WebhookTimestampStale,
)
from transparency.problem_details import problem_status

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
ID = "0a1b2c:claim_approved"
NOW = 1_700_000_000
BODY = (
    b'{"created":"2023-11-14T22:13:20.000000Z","data":{"claim":"c1"},'
    b'"id":"0a1b2c:claim_approved","type":"claim.approved"}'
)


def _headers(webhook_id: str = ID, timestamp: int = NOW, body: bytes = BODY,
             key: Ed25519PrivateKey = KEY) -> dict[str, str]:
    return sign_delivery(webhook_id, timestamp, body, key)


def test_signature_is_ed25519_over_id_dot_timestamp_dot_body() -> None:
    headers = _headers()
    assert headers["webhook-id"] == ID
    assert headers["webhook-timestamp"] == str(NOW)
    version, _, value = headers["webhook-signature"].partition(",")
    assert version == "v1a"
    signature = base64.b64decode(value, validate=True)  # standard base64, padded
    assert len(signature) == 64 and value.endswith("==")
    # independently of signed_content: the bytes as the Standard Webhooks spec spells them
    KEY.public_key().verify(signature, f"{ID}.{NOW}.".encode() + BODY)
    assert signed_content(ID, NOW, BODY) == f"{ID}.{NOW}.".encode() + BODY


def test_a_good_delivery_verifies() -> None:
    verified = verify_delivery(_headers(), BODY, KEY.public_key(), NOW)
    assert verified.webhook_id == ID and verified.timestamp == NOW
    assert verified.event["type"] == "claim.approved" and verified.event["data"] == {"claim": "c1"}


def test_header_names_are_case_insensitive() -> None:
    headers = {k.upper(): v for k, v in _headers().items()}
    verify_delivery(headers, BODY, KEY.public_key(), NOW)


@pytest.mark.parametrize(
    "body",
    [
        BODY.replace(b"c1", b"c2"),
        BODY + b" ",
        BODY.replace(b"claim.approved", b"claim.rejected"),
        b"",
    ],
)
def test_a_tampered_body_is_refused(body: bytes) -> None:
    with pytest.raises(WebhookSignatureInvalid):
        verify_delivery(_headers(), body, KEY.public_key(), NOW)


def test_a_changed_id_or_timestamp_is_refused() -> None:
    headers = _headers()
    with pytest.raises(WebhookSignatureInvalid):
        verify_delivery({**headers, "webhook-id": "0a1b2c:claim_rejected"}, BODY, KEY.public_key(), NOW)
    with pytest.raises(WebhookSignatureInvalid):
        verify_delivery({**headers, "webhook-timestamp": str(NOW + 1)}, BODY, KEY.public_key(), NOW)


def test_a_signature_by_another_key_is_refused() -> None:
    with pytest.raises(WebhookSignatureInvalid):
        verify_delivery(_headers(key=OTHER), BODY, KEY.public_key(), NOW)


def test_any_trusted_key_and_any_v1a_signature_is_enough() -> None:
    rotated = " ".join(h["webhook-signature"] for h in (_headers(key=OTHER), _headers()))
    headers = {**_headers(), "webhook-signature": rotated}
    verify_delivery(headers, BODY, KEY.public_key(), NOW)
    verify_delivery(headers, BODY, OTHER.public_key(), NOW)
    verify_delivery(_headers(key=OTHER), BODY, [KEY.public_key(), OTHER.public_key()], NOW)


def test_symmetric_v1_signatures_are_ignored() -> None:
    secret = b"a shared secret of 24 bytes!"
    v1 = base64.b64encode(hmac.new(secret, signed_content(ID, NOW, BODY), sha256).digest()).decode()
    with pytest.raises(WebhookSignatureInvalid):
        verify_delivery({**_headers(), "webhook-signature": f"v1,{v1}"}, BODY, KEY.public_key(), NOW)
    both = f"v1,{v1} {_headers()['webhook-signature']}"
    verify_delivery({**_headers(), "webhook-signature": both}, BODY, KEY.public_key(), NOW)


@pytest.mark.parametrize(
    "signature",
    ["", "v1a", "v1a,", "v1a,not base64!", "v1a," + base64.b64encode(bytes(63)).decode(),
     "v1a," + base64.b64encode(bytes(64)).decode(), "V1A," + "A" * 86 + "=="],
)
def test_malformed_or_empty_signatures_are_refused(signature: str) -> None:
    with pytest.raises(WebhookSignatureInvalid):
        verify_delivery({**_headers(), "webhook-signature": signature}, BODY, KEY.public_key(), NOW)


@pytest.mark.parametrize("age", [301, 3600, NOW])
def test_a_stale_timestamp_is_refused(age: int) -> None:
    with pytest.raises(WebhookTimestampStale):
        verify_delivery(_headers(timestamp=NOW - age), BODY, KEY.public_key(), NOW)


@pytest.mark.parametrize("ahead", [301, 3600])
def test_a_future_timestamp_is_refused(ahead: int) -> None:
    with pytest.raises(WebhookTimestampInFuture):
        verify_delivery(_headers(timestamp=NOW + ahead), BODY, KEY.public_key(), NOW)


@pytest.mark.parametrize("offset", [-300, -1, 0, 1, 300])
def test_timestamps_within_the_tolerance_are_accepted(offset: int) -> None:
    verify_delivery(_headers(timestamp=NOW + offset), BODY, KEY.public_key(), NOW)


def test_the_tolerance_is_the_callers() -> None:
    with pytest.raises(WebhookTimestampStale):
        verify_delivery(_headers(timestamp=NOW - 11), BODY, KEY.public_key(), NOW, tolerance=10)
    verify_delivery(_headers(timestamp=NOW - 3000), BODY, KEY.public_key(), NOW, tolerance=3600)


def test_a_replayed_delivery_is_refused_once_stale() -> None:
    headers = _headers()
    verify_delivery(headers, BODY, KEY.public_key(), NOW + 10)
    with pytest.raises(WebhookTimestampStale):
        verify_delivery(headers, BODY, KEY.public_key(), NOW + 301)


@pytest.mark.parametrize(
    "change",
    [
        {"webhook-id": None},
        {"webhook-timestamp": None},
        {"webhook-signature": None},
        {"webhook-id": ""},
        {"webhook-id": "a.b"},  # a full stop would make the signed content ambiguous
        {"webhook-timestamp": "1700000000.5"},
        {"webhook-timestamp": "-1700000000"},
        {"webhook-timestamp": "2023-11-14T22:13:20Z"},
        {"webhook-timestamp": " 1700000000"},
    ],
)
def test_missing_or_malformed_headers_are_refused(change: dict[str, str | None]) -> None:
    headers: dict[str, str] = {}
    for name, value in {**_headers(), **change}.items():
        if value is not None:
            headers[name] = value
    with pytest.raises(WebhookDeliveryMalformed):
        verify_delivery(headers, BODY, KEY.public_key(), NOW)


def test_a_signed_body_that_is_not_this_event_is_refused() -> None:
    for body in (b"not json", b"[1,2]", b'{"id":"another"}'):
        with pytest.raises(WebhookDeliveryMalformed):
            verify_delivery(_headers(body=body), body, KEY.public_key(), NOW)


def test_every_refusal_is_a_webhook_refusal_with_a_code() -> None:
    with pytest.raises(WebhookRefused) as info:
        verify_delivery(_headers(key=OTHER), BODY, KEY.public_key(), NOW)
    assert info.value.code == "webhook-signature-invalid" and problem_status(info.value) == 401


def test_sender_refuses_an_id_with_a_full_stop() -> None:
    with pytest.raises(WebhookDeliveryMalformed):
        sign_delivery("claim.approved", NOW, BODY, KEY)


def test_public_key_text_round_trips() -> None:
    text = public_key_text(KEY.public_key())
    assert text.startswith("whpk_")
    raw = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert base64.b64decode(text[5:]) == raw
    assert parse_public_key(text).public_bytes(Encoding.Raw, PublicFormat.Raw) == raw


@pytest.mark.parametrize(
    "text",
    ["", "whsk_" + base64.b64encode(bytes(32)).decode(), "whpk_" + base64.b64encode(bytes(31)).decode(),
     "whpk_not-base64!", "whpk_" + base64.urlsafe_b64encode(b"\xff" * 32).decode()],
)
def test_bad_public_key_texts_are_refused(text: str) -> None:
    with pytest.raises(MalformedKey):
        parse_public_key(text)
