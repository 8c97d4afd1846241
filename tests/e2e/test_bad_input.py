"""Every class of bad input gets a concise problem naming the reason, and the log does not change."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cbor2
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.cose_builder import default_protected, sign1
from tests.server import running_server

COSE = {"Content-Type": "application/cose"}
PROBLEM = "application/concise-problem-details+cbor"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(tmp_path_factory.mktemp("log"), max_body_bytes=4096) as url:
        yield url


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _size(base_url: str) -> int:
    return int(httpx.get(f"{base_url}/checkpoint").text.split("\n")[1])


def _refused(base_url: str, body: bytes, status: int, title: str, headers: dict[str, str] | None = None) -> Any:
    before = _size(base_url)
    r = httpx.post(f"{base_url}/entries", content=body, headers=COSE if headers is None else headers)
    assert r.status_code == status, r.content
    assert r.headers["content-type"] == PROBLEM
    problem = cbor2.loads(r.content)
    assert problem[-1] == title
    assert problem[-4] == status
    assert isinstance(problem[-2], str) and problem[-2]
    assert _size(base_url) == before, "a refused statement changed the log"
    return problem


def _hdr(key: Ed25519PrivateKey, drop: tuple[Any, ...] = (), **changes: Any) -> dict[Any, Any]:
    hdr = default_protected(key)
    for label in drop:
        hdr.pop(label)
    for name, value in changes.items():
        hdr[int(name.removeprefix("l"))] = value
    return hdr


def test_malformed_cbor(base_url: str) -> None:
    _refused(base_url, b"\xd2\x84\x43\xa1", 400, "Malformed CBOR")
    _refused(base_url, b"\x1c", 400, "Malformed CBOR")  # reserved additional information 28
    _refused(base_url, b"\xff", 400, "Malformed CBOR")  # a break outside an indefinite item


def test_trailing_bytes(base_url: str, key: Ed25519PrivateKey) -> None:
    _refused(base_url, sign1(key, None) + b"\x00", 400, "Malformed CBOR")


def test_wrong_tag(base_url: str, key: Ed25519PrivateKey) -> None:
    p = _refused(base_url, sign1(key, None, tag=98), 400, "Not a COSE_Sign1 message")
    assert "98" in p[-2]
    _refused(base_url, sign1(key, None, tag=None), 400, "Not a COSE_Sign1 message")


def test_not_an_array(base_url: str) -> None:
    _refused(base_url, cbor2.dumps(cbor2.CBORTag(18, {"a": 1})), 400, "Not a COSE_Sign1 message")


@pytest.mark.parametrize(
    ("drop", "needle"),
    [((1,), "alg"), ((4,), "kid"), ((15,), "CWT claims"), ((3,), "content type")],
)
def test_missing_headers(base_url: str, key: Ed25519PrivateKey, drop: tuple[int, ...], needle: str) -> None:
    p = _refused(base_url, sign1(key, _hdr(key, drop)), 400, "Missing protected header")
    assert needle in p[-2]


@pytest.mark.parametrize("claim", [1, 2])
def test_missing_cwt_claims(base_url: str, key: Ed25519PrivateKey, claim: int) -> None:
    hdr = _hdr(key)
    del hdr[15][claim]
    p = _refused(base_url, sign1(key, hdr), 400, "Missing protected header")
    assert ("iss" if claim == 1 else "sub") in p[-2]


def test_bad_signature(base_url: str, key: Ed25519PrivateKey) -> None:
    _refused(base_url, sign1(key, None, sign_payload=b"something else"), 400, "Signature invalid")


def test_signed_by_another_key(base_url: str, key: Ed25519PrivateKey) -> None:
    other = Ed25519PrivateKey.generate()
    _refused(base_url, sign1(other, _hdr(key)), 400, "Signature invalid")


def test_kid_and_issuer_disagree(base_url: str, key: Ed25519PrivateKey) -> None:
    other = default_protected(Ed25519PrivateKey.generate())
    _refused(base_url, sign1(key, _hdr(key, l15=other[15])), 403, "Signer cannot be resolved")


def test_unknown_algorithm(base_url: str, key: Ed25519PrivateKey) -> None:
    p = _refused(base_url, sign1(key, _hdr(key, l1=-35)), 400, "Unsupported algorithm")
    assert "-35" in p[-2]


def test_unknown_critical_header(base_url: str, key: Ed25519PrivateKey) -> None:
    _refused(base_url, sign1(key, _hdr(key, l2=[99], l99=1)), 400, "Invalid protected header")


def test_bad_hash_envelope(base_url: str, key: Ed25519PrivateKey) -> None:
    hdr = _hdr(key, (3,), l258=-16, l259="application/json")
    _refused(base_url, sign1(key, hdr, payload=b"short"), 400, "Invalid hash envelope")


def test_detached_payload(base_url: str, key: Ed25519PrivateKey) -> None:
    _refused(base_url, sign1(key, None, payload=None, sign_payload=b"x"), 400, "Not a COSE_Sign1 message")


def test_oversize_body_declared(base_url: str, key: Ed25519PrivateKey) -> None:
    _refused(base_url, sign1(key, None, payload=b"x" * 5000), 413, "Payload too large")


def test_oversize_body_streamed(base_url: str) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"\x00" * 1024

    before = _size(base_url)
    r = httpx.post(f"{base_url}/entries", content=chunks(), headers=COSE)
    assert r.status_code == 413
    assert cbor2.loads(r.content)[-1] == "Payload too large"
    assert _size(base_url) == before


def test_wrong_media_type(base_url: str, key: Ed25519PrivateKey) -> None:
    _refused(base_url, sign1(key, None), 415, "Unsupported media type", {"Content-Type": "application/json"})


def test_a_repeated_content_type_is_refused(base_url: str, key: Ed25519PrivateKey) -> None:
    """RFC 9110 §5.3: Content-Type is a singleton field. Two lines (even the right type first, as a proxy that
    reads the last one would not see it) are refused, not read as the first."""
    before = _size(base_url)
    for lines in ([("Content-Type", "application/cose"), ("Content-Type", "application/json")],
                  [("Content-Type", "application/cose"), ("Content-Type", "application/cose")]):
        r = httpx.post(f"{base_url}/entries", content=sign1(key, None), headers=lines)
        assert r.status_code == 415, r.content
        assert cbor2.loads(r.content)[-1] == "Unsupported media type"
    assert _size(base_url) == before


def test_expired_statement(base_url: str, key: Ed25519PrivateKey) -> None:
    hdr = _hdr(key)
    hdr[15][4] = 1_000_000
    _refused(base_url, sign1(key, hdr), 403, "Refused by registration policy")


def test_replay_returns_the_existing_entry(base_url: str, key: Ed25519PrivateKey) -> None:
    statement = sign1(key, None, payload=b'{"replay":1}')
    first = httpx.post(f"{base_url}/entries", content=statement, headers=COSE)
    assert first.status_code == 201
    size = _size(base_url)
    again = httpx.post(f"{base_url}/entries", content=statement, headers=COSE)
    same_with_other_unprotected = sign1(key, None, payload=b'{"replay":1}', unprotected={"x": 1})
    third = httpx.post(f"{base_url}/entries", content=same_with_other_unprotected, headers=COSE)
    assert again.status_code == third.status_code == 201
    assert again.headers["location"] == third.headers["location"] == first.headers["location"]
    assert again.content == first.content
    assert _size(base_url) == size


def test_unknown_and_malformed_entry_ids(base_url: str) -> None:
    r = httpx.get(f"{base_url}/entries/{'ab' * 32}")
    assert r.status_code == 404
    assert cbor2.loads(r.content)[-1] == "Entry not found"
    r = httpx.get(f"{base_url}/entries/zz")
    assert r.status_code == 400
    assert cbor2.loads(r.content)[-1] == "Invalid request parameter"


def test_bad_consistency_query_is_json_problem(base_url: str) -> None:
    r = httpx.get(f"{base_url}/proofs/consistency", params={"old": "5", "new": "1"})
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["title"] == "Invalid request parameter"


def test_rate_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    with running_server(tmp_path, rate_per_second=0.5, rate_burst=2) as url:
        codes = []
        for i in range(4):
            r = httpx.post(f"{url}/entries", content=sign1(key, None, payload=b'{"n":%d}' % i), headers=COSE)
            codes.append(r.status_code)
            if r.status_code == 429:
                assert int(r.headers["retry-after"]) >= 1
                assert cbor2.loads(r.content)[-1] == "Too many requests"
        assert codes[:2] == [201, 201]
        assert 429 in codes[2:]
        assert _size(url) == 2


def _map(pairs: list[tuple[Any, Any]]) -> bytes:
    """A CBOR map of these key/value pairs, in this order, repeated keys and all (cbor2 would merge them)."""
    assert len(pairs) < 24
    return bytes((0xA0 | len(pairs),)) + b"".join(cbor2.dumps(k) + _encoded(v) for k, v in pairs)


def _encoded(value: Any) -> bytes:
    return value.encoded if isinstance(value, _Raw) else bytes(cbor2.dumps(value))


def _signed_raw(key: Ed25519PrivateKey, protected: bytes, unprotected: bytes = b"\xa0") -> bytes:
    """A tagged COSE_Sign1 with these header bytes and a valid signature over them."""
    payload = b'{"hello":"world"}'
    signature = key.sign(cbor2.dumps(["Signature1", protected, b"", payload]))
    return b"\xd2\x84" + cbor2.dumps(protected) + unprotected + cbor2.dumps(payload) + cbor2.dumps(signature)


def test_repeated_header_labels(base_url: str, key: Ed25519PrivateKey) -> None:
    """RFC 9052 §3: a label repeated in a header map makes the message malformed, wherever the map is."""
    hdr = _hdr(key)
    pairs = list(hdr.items())
    other_did = default_protected(Ed25519PrivateKey.generate())[15][1]
    cases = {
        "alg twice": _signed_raw(key, _map([(1, -7), *pairs])),
        "iss twice in the CWT claims": _signed_raw(key, _map([
            (label, _Raw(_map([(1, other_did), *value.items()])) if label == 15 else value)
            for label, value in pairs])),
        "a label twice in the unprotected header": _signed_raw(key, cbor2.dumps(hdr), _map([(99, 1), (99, 2)])),
    }
    unique = _signed_raw(key, cbor2.dumps(hdr))
    assert httpx.post(f"{base_url}/entries", content=unique, headers=COSE).status_code in (200, 201, 202)
    for name, body in cases.items():
        p = _refused(base_url, body, 400, "Malformed CBOR")
        assert "repeats a key" in p[-2], name


class _Raw:
    """Bytes that ``_map`` puts in as they are (an already encoded item)."""

    def __init__(self, encoded: bytes) -> None:
        self.encoded = encoded
