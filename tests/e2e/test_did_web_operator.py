"""did:web proof of control end to end: the log (a real process) fetches the operator's did.json from a local HTTPS
host with a test CA, logs its evidence, then the registration; every failure is refused with its code and the log
unchanged. Squatters, strangers' evidence and stale registrations get nowhere."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from issuer.statements import (
    PassportRequest,
    Signer,
    agent_consent,
    agent_passport,
    multikey_of,
    operator_registration,
)
from schemas import cbor
from schemas import cose_labels as L
from schemas.errors import (
    DidWebCertificateInvalid,
    DidWebDocumentInvalid,
    DidWebEvidenceUntrusted,
    DidWebKeyNotListed,
    DidWebRegistrationStale,
    DidWebUnreachable,
    TabellionError,
)
from schemas.identity_statements import content_type, encode_payload, parse_payload, statement_type_of
from schemas.statement import parse_statement
from tests.did_web_host import DidWebHost, TestCa, did_document, did_web_host
from tests.e2e.issuer_log import COSE, Log
from tests.server import ServerUrl, free_port, running_server
from transparency.client import did_of, sign_statement
from transparency.problem_details import status_of_class
from verifier.bundles import verify_bundle
from verifier.did_web import EVIDENCE_MAX_AGE_S, did_web_url, service_signers
from verifier.fold import key_digest
from verifier.keys import parse_key_set

FINGERPRINT = "sha256:" + "ab" * 32
BUNDLE = "sha256:" + "cd" * 32


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCa:
    return TestCa.create(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def host(ca: TestCa) -> Iterator[DidWebHost]:
    with did_web_host(ca) as running:
        yield running


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory, ca: TestCa) -> Iterator[ServerUrl]:
    with running_server(tmp_path_factory.mktemp("log"), did_web_ca_file=ca.cert_path,
                        outbound_allow="127.0.0.0/8") as running:
        yield running


def _passport(operator: Signer, agent: str, index: int) -> bytes:
    return agent_passport(operator, PassportRequest(agent, "software", FINGERPRINT, "EU", BUNDLE,
                                                    "https://bank.example/status/1", index))


def _entry(log: Log, index: int) -> tuple[str | None, dict[str, Any] | None, str]:
    """The statement type, payload and issuer of log entry ``index``."""
    page = cbor.decode(log.http.get(f"/entries?start={index}&limit=1").content)
    statement = parse_statement(page[0][1])
    stype = statement_type_of(statement.content_type)
    return stype, parse_payload(stype, statement.payload) if stype else None, statement.issuer


def _refused(log: Log, path: str, statement: bytes, error: type[TabellionError]) -> str:
    """``statement`` is refused with ``error``'s code (problem+json from the issuer, concise CBOR from
    ``/entries``) and the log is unchanged; the problem's detail."""
    before = log.size()
    answer = log.post(path, statement)
    assert answer.status_code == status_of_class(error), answer.text
    assert log.size() == before, "a refused statement changed the log"
    if path == "/entries":
        problem = cbor.decode(answer.content)
        assert problem.get(error("").type_uri) == {"code": error.code}, problem
        detail: str = problem[-2]
        return detail
    body = answer.json()
    assert body["type"] == error("").type_uri, body
    return str(body["detail"])


def test_a_did_web_operator_whose_did_json_lists_its_key_registers(url: ServerUrl, host: DidWebHost) -> None:
    log = Log(url)
    operator = Signer(Ed25519PrivateKey.generate(), host.did("bank"))
    host.put(operator.identity, did_document(operator.identity, multikey_of(operator.key)))
    registered = log.ok("/registry/operators", operator_registration(operator, "bank", Ed25519PrivateKey.generate()))

    # the entry before the registration is the log's evidence: the document it fetched and the key it found
    stype, evidence, signer = _entry(log, registered["index"] - 1)
    assert stype == "did-web-evidence" and evidence is not None
    keys = parse_key_set(log.http.get("/.well-known/scitt-keys").content)
    assert signer in service_signers(keys)  # the log's own did:key
    assert (evidence["did"], evidence["key"], evidence["relationship"]) == (
        operator.identity, multikey_of(operator.key), "assertionMethod")
    assert evidence["url"] == did_web_url(operator.identity) == f"https://localhost:{host.port}/bank/did.json"
    assert host.requests.count("/bank/did.json") == 1

    # the fold shows the operator, which then acts with its key
    document = log.http.get(f"/1.0/identifiers/{quote(operator.identity)}").json()["didDocument"]  # %3A -> %253A
    assert document["verificationMethod"][0]["publicKeyMultibase"] == multikey_of(operator.key)
    agent = Signer(Ed25519PrivateKey.generate())
    log.ok("/registry/consents", agent_consent(agent, operator.identity))
    log.ok("/api/agent/issue", _passport(operator, agent.identity, 0))

    # an audit bundle carries the evidence, and verifies offline with the log's keys alone
    report = verify_bundle(log.http.get(f"/v1/audit/{agent.identity}").json(), keys)
    assert report.rejected == () and report.passport is not None and operator.identity in report.passport

    # the DID is taken: another key cannot register it, nor sign for it
    squatter = Signer(Ed25519PrivateKey.generate(), operator.identity)
    log.refused("/registry/operators", operator_registration(squatter, "bank2", Ed25519PrivateKey.generate()))
    log.refused("/api/agent/issue", _passport(squatter, agent.identity, 1))


def test_registration_through_post_entries_gets_its_evidence_too(url: ServerUrl, host: DidWebHost) -> None:
    log = Log(url)
    operator = Signer(Ed25519PrivateKey.generate(), host.did("people", "carol"))
    host.put(operator.identity, did_document(operator.identity, multikey_of(operator.key)))
    before = log.size()
    answer = log.http.post("/entries", content=operator_registration(operator, "carol", Ed25519PrivateKey.generate()),
                           headers=COSE)
    assert answer.status_code == 201, answer.text
    assert log.size() == before + 2
    assert _entry(log, before)[0] == "did-web-evidence" and _entry(log, before + 1)[0] == "operator-registration"


def test_the_squatter_whose_key_the_did_json_does_not_list(url: ServerUrl, host: DidWebHost) -> None:
    log = Log(url)
    did = host.did()  # did:web:localhost%3APORT: the domain itself
    host.put(did, did_document(did, multikey_of(Ed25519PrivateKey.generate())))  # the owner's key
    squatter = Signer(Ed25519PrivateKey.generate(), did)
    registration = operator_registration(squatter, "squat", Ed25519PrivateKey.generate())
    detail = _refused(log, "/registry/operators", registration, DidWebKeyNotListed)
    assert multikey_of(squatter.key)[:60] in detail


def test_an_unreachable_domain(url: ServerUrl) -> None:
    operator = Signer(Ed25519PrivateKey.generate(), f"did:web:localhost%3A{free_port()}")
    _refused(Log(url), "/registry/operators", operator_registration(operator, "gone", Ed25519PrivateKey.generate()),
             DidWebUnreachable)


def test_a_certificate_from_an_unknown_ca(url: ServerUrl, tmp_path: Path) -> None:
    with did_web_host(TestCa.create(tmp_path / "rogue", "rogue CA")) as rogue:
        operator = Signer(Ed25519PrivateKey.generate(), rogue.did())
        rogue.put(operator.identity, did_document(operator.identity, multikey_of(operator.key)))
        _refused(Log(url), "/registry/operators",
                 operator_registration(operator, "rogue", Ed25519PrivateKey.generate()), DidWebCertificateInvalid)


def test_a_document_whose_id_differs(url: ServerUrl, host: DidWebHost) -> None:
    operator = Signer(Ed25519PrivateKey.generate(), host.did("mirror"))
    host.put(operator.identity, did_document(host.did("original"), multikey_of(operator.key)))
    _refused(Log(url), "/registry/operators", operator_registration(operator, "mirror", Ed25519PrivateKey.generate()),
             DidWebDocumentInvalid)


def test_evidence_from_a_stranger_is_refused_and_makes_nothing_acceptable(url: ServerUrl, host: DidWebHost) -> None:
    log = Log(url)
    did = host.did("victim")
    host.put(did, did_document(did, multikey_of(Ed25519PrivateKey.generate())))
    squatter = Signer(Ed25519PrivateKey.generate(), did)
    stranger = Ed25519PrivateKey.generate()
    forged = {"did": did, "url": did_web_url(did), "document_sha256": "00" * 32, "fetched_at": int(time.time()),
              "key": multikey_of(squatter.key), "method": f"{did}#key-1", "relationship": "assertionMethod"}
    evidence = sign_statement(stranger, encode_payload("did-web-evidence", forged), subject=did,
                              content_type=content_type("did-web-evidence"), issuer=did_of(stranger),
                              extra_claims={L.CWT_IAT: forged["fetched_at"]})
    _refused(log, "/entries", evidence, DidWebEvidenceUntrusted)
    _refused(log, "/registry/operators", operator_registration(squatter, "victim", Ed25519PrivateKey.generate()),
             DidWebKeyNotListed)


def test_a_registration_too_old_for_fresh_evidence(url: ServerUrl, host: DidWebHost) -> None:
    operator = Signer(Ed25519PrivateKey.generate(), host.did("stale"))
    host.put(operator.identity, did_document(operator.identity, multikey_of(operator.key)))
    payload = {"operator": operator.identity, "namespace": "stale", "key": multikey_of(operator.key),
               "next_key_digest": key_digest(multikey_of(Ed25519PrivateKey.generate())), "witnesses": [],
               "witness_threshold": 0}
    stale = operator.sign("operator-registration", payload, issued_at=int(time.time()) - 2 * EVIDENCE_MAX_AGE_S)
    _refused(Log(url), "/registry/operators", stale, DidWebRegistrationStale)
    assert "/stale/did.json" not in host.requests  # refused before any fetch
