"""The log's did:web fetch (transparency.did_web) against a local HTTPS host with a test CA: the evidence it signs,
and each way a DID document is refused (unreachable, untrusted certificate, redirects, size, type, content)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from issuer.statements import Signer, multikey_of, operator_registration
from schemas.errors import (
    ConfigurationError,
    DidWebCertificateInvalid,
    DidWebDocumentInvalid,
    DidWebEvidenceStale,
    DidWebInvalid,
    DidWebKeyNotListed,
    DidWebRegistrationStale,
    DidWebUnreachable,
    OutboundTargetRefused,
    TabellionError,
)
from schemas.identity_statements import parse_payload, statement_type_of
from schemas.statement import SignedStatement, parse_statement
from tests.did_web_host import DidWebHost, TestCa, did_document, did_web_host
from tests.server import free_port
from transparency.client import did_of
from transparency.did_web import MAX_DOCUMENT_BYTES, DidWebClock, DidWebProver
from transparency.outbound import AllowedTargets
from verifier.did_web import EVIDENCE_MAX_AGE_S
from verifier.statements import DidKeyResolver, verify_statement

LOG_KEY = Ed25519PrivateKey.generate()
LOOPBACK = AllowedTargets.parse("127.0.0.0/8, ::1")  # the test host is on loopback, which only tests allow


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCa:
    return TestCa.create(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def host(ca: TestCa) -> Iterator[DidWebHost]:
    with did_web_host(ca) as running:
        yield running


def _prover(ca: TestCa, timeout_s: float = 5.0) -> DidWebProver:
    return DidWebProver(LOG_KEY, ca.cert_path, timeout_s, allow=LOOPBACK)


def _registration(did: str, key: Ed25519PrivateKey | None = None, issued_at: int | None = None) -> SignedStatement:
    signer = Signer(key or Ed25519PrivateKey.generate(), did)
    if issued_at is None:
        return parse_statement(operator_registration(signer, "acme", Ed25519PrivateKey.generate()))
    payload = parse_payload("operator-registration", parse_statement(
        operator_registration(signer, "acme", Ed25519PrivateKey.generate())).payload)
    return parse_statement(signer.sign("operator-registration", payload, issued_at=issued_at))


def _evidence(prover: DidWebProver, registration: SignedStatement) -> bytes:
    return asyncio.run(prover.evidence(registration))


def _refused(prover: DidWebProver, registration: SignedStatement, error: type[TabellionError]) -> TabellionError:
    with pytest.raises(error) as refused:
        _evidence(prover, registration)
    assert type(refused.value) is error, refused.value
    return refused.value


def test_evidence_names_the_document_the_key_and_the_log(ca: TestCa, host: DidWebHost) -> None:
    key = Ed25519PrivateKey.generate()
    did = host.did("ok")
    document = did_document(did, multikey_of(key))
    host.put(did, document)
    before = int(time.time())
    statement = verify_statement(_evidence(_prover(ca), _registration(did, key)), DidKeyResolver())
    assert statement.issuer == did_of(LOG_KEY)
    assert statement_type_of(statement.content_type) == "did-web-evidence"
    payload = parse_payload("did-web-evidence", statement.payload)
    assert payload == {
        "did": did, "url": f"https://localhost:{host.port}/ok/did.json",
        "document_sha256": hashlib.sha256(json.dumps(document).encode()).hexdigest(),
        "fetched_at": payload["fetched_at"], "key": multikey_of(key), "method": f"{did}#key-1",
        "relationship": "assertionMethod",
    }
    assert before <= payload["fetched_at"] <= int(time.time()) and statement.issued_at == payload["fetched_at"]


def test_a_did_on_a_non_public_address_is_refused_unless_allowed(ca: TestCa, host: DidWebHost) -> None:
    """The test host is on loopback: a log that allows no private range refuses to fetch from it (as it would
    refuse 169.254.169.254 or 10.0.0.1), before any connection."""
    key = Ed25519PrivateKey.generate()
    did = host.did("private")
    host.put(did, did_document(did, multikey_of(key)))
    strict = DidWebProver(LOG_KEY, ca.cert_path, 5.0)
    with pytest.raises(OutboundTargetRefused):
        _evidence(strict, _registration(did, key))
    assert "/private/did.json" not in host.requests


def test_a_same_host_redirect_is_followed_another_host_is_not(ca: TestCa, host: DidWebHost) -> None:
    key = Ed25519PrivateKey.generate()
    did = host.did("moved")
    host.put(did, b"", status=301, headers={"Location": "/elsewhere/did.json"})
    host.put("/elsewhere/did.json", did_document(did, multikey_of(key)))
    _evidence(_prover(ca), _registration(did, key))
    away = host.did("away")
    host.put(away, b"", status=302, headers={"Location": f"https://127.0.0.1:{host.port}/away/did.json"})
    assert "not on the same host" in _refused(_prover(ca), _registration(away), DidWebUnreachable).detail
    loop = host.did("loop")
    host.put(loop, b"", status=302, headers={"Location": "/loop/did.json"})
    assert "redirects" in _refused(_prover(ca), _registration(loop), DidWebUnreachable).detail


def test_the_squatter_key_is_not_listed(ca: TestCa, host: DidWebHost) -> None:
    did = host.did("bank")
    host.put(did, did_document(did, multikey_of(Ed25519PrivateKey.generate())))
    _refused(_prover(ca), _registration(did), DidWebKeyNotListed)
    key = Ed25519PrivateKey.generate()
    host.put(did, did_document(did, multikey_of(key), relationship="authentication"))
    assert "only in" in _refused(_prover(ca), _registration(did, key), DidWebKeyNotListed).detail


@pytest.mark.parametrize(
    ("body", "content_type", "status", "error"),
    [
        (b"{}", "application/json", 404, DidWebUnreachable),
        (b"<html></html>", "text/html", 200, DidWebDocumentInvalid),
        (b"not json", "application/json", 200, DidWebDocumentInvalid),
        (b'{"id": "x", "id": "y"}', "application/json", 200, DidWebDocumentInvalid),
        (b" " * (MAX_DOCUMENT_BYTES + 1), "application/json", 200, DidWebDocumentInvalid),
        (b"[" * 50_000, "application/json", 200, DidWebDocumentInvalid),
    ],
)
def test_answers_that_are_not_a_did_document(ca: TestCa, host: DidWebHost, body: bytes, content_type: str,
                                             status: int, error: type[TabellionError]) -> None:
    did = host.did("bad")
    host.put(did, body, content_type=content_type, status=status)
    _refused(_prover(ca), _registration(did), error)


def test_a_document_of_another_did_is_invalid(ca: TestCa, host: DidWebHost) -> None:
    key = Ed25519PrivateKey.generate()
    did = host.did("other")
    host.put(did, did_document(host.did("someone"), multikey_of(key)))
    assert "id is" in _refused(_prover(ca), _registration(did, key), DidWebDocumentInvalid).detail


def test_an_unknown_ca_is_refused(tmp_path: Path, host: DidWebHost) -> None:
    key = Ed25519PrivateKey.generate()
    did = host.did("ok2")
    host.put(did, did_document(did, multikey_of(key)))
    other = TestCa.create(tmp_path / "other", "another CA")
    _refused(_prover(other), _registration(did, key), DidWebCertificateInvalid)
    _refused(DidWebProver(LOG_KEY, allow=LOOPBACK), _registration(did, key), DidWebCertificateInvalid)


def test_unreachable_and_slow_hosts(ca: TestCa, host: DidWebHost) -> None:
    _refused(_prover(ca), _registration(f"did:web:localhost%3A{free_port()}"), DidWebUnreachable)
    did = host.did("slow")
    default = DidWebProver(LOG_KEY).timeout_s
    host.put(did, did_document(did, "z6Mk"), delay_s=2 * default)  # slower than the default timeout
    started = time.monotonic()
    refused = _refused(_prover(ca, timeout_s=0.3), _registration(did), DidWebUnreachable)
    # the configured timeout, not the default's or the host's pace: named in the detail, and well under both
    assert "within 0.3 s" in refused.detail
    assert time.monotonic() - started < default / 2


def test_a_did_that_names_no_url_is_refused_before_any_fetch(ca: TestCa, host: DidWebHost) -> None:
    asked = len(host.requests)
    _refused(_prover(ca), _registration(f"did:web:localhost%3A{host.port}:a%2Fb"), DidWebInvalid)
    assert len(host.requests) == asked


def test_the_fetch_must_be_close_to_the_registration(ca: TestCa, host: DidWebHost) -> None:
    key = Ed25519PrivateKey.generate()
    did = host.did("late")
    host.put(did, did_document(did, multikey_of(key)))
    _refused(_prover(ca), _registration(did, key, int(time.time()) - EVIDENCE_MAX_AGE_S - 60), DidWebEvidenceStale)


def test_the_clock_policy_refuses_did_web_registrations_far_from_now() -> None:
    clock = DidWebClock(lambda: 1_800_000_000.0)
    did = "did:web:bank.example"
    clock.check(_registration(did, issued_at=1_800_000_000 - EVIDENCE_MAX_AGE_S))
    key = Ed25519PrivateKey.generate()
    clock.check(_registration(did_of(key), key, issued_at=0))  # only did:web registrations
    for issued_at in (1_800_000_000 - EVIDENCE_MAX_AGE_S - 1, 1_800_000_000 + EVIDENCE_MAX_AGE_S + 1):
        with pytest.raises(DidWebRegistrationStale):
            clock.check(_registration(did, issued_at=issued_at))


def test_an_unreadable_ca_bundle_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        DidWebProver(LOG_KEY, tmp_path / "missing.pem")
