"""TPM 2.0 enrolment end to end, every part real: swtpm manufactured with EK certificates from a local CA and run
as a process, the log (with the issuer) over HTTP, the agent side on tpm2-pytss over the swtpm TCTI, the gateway
as its own process. The agent enrols (six gates), signs its consent and claim with the TPM key (ES256), gets a
passport of tier tpm, and its RFC 9421 ecdsa-p256-sha256 request signed in the TPM passes the gateway; the audit
bundle verifies offline and names the enrolment and the root its EK chained to. Then each gate refuses, with its
code, and nothing is logged."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.signatures import Request, sign_request
from issuer import statements as st
from schemas.base64url import b64url, b64url_decode
from tests.e2e.gateway_deployment import Recorder, started_gateway
from tests.http_stub import serving
from tests.problems import problem_code
from tests.server import ServerUrl, running_server, start_server
from tests.swtpm import LocalCa, SoftwareTpm, manufacture
from tests.tpm_world import COSE, NAMESPACE, Operator, ek_chain, log_signed, operator_with_approver, pin_root
from transparency.client.enrolment import agent_signer, collect, prepare, request_digest, submit
from transparency.client.tpm import AGENT_KEY_ATTRIBUTES, AK_ATTRIBUTES, FIXED_PARENT, FIXED_TPM, Tpm
from verifier.bundles import verify_bundle
from verifier.keys import parse_key_set
from verifier.statements import DidKeyResolver, verify_statement
from verifier.webauthn import FLAG_UP

SCOPE = {"services": ["mail"], "actions": ["read"], "resources": ["inbox/*"]}
BUNDLE = "sha256:" + "cd" * 32
DAY = 24 * 3600


def size(http: httpx.Client) -> int:
    return int(http.get("/checkpoint").text.split("\n")[1])


def test_a_tpm_agent_enrols_signs_and_passes_the_gateway(tmp_path: Path, software_tpm: SoftwareTpm,
                                                         local_ca: LocalCa) -> None:
    Recorder.seen = []
    with running_server(tmp_path / "log") as url, httpx.Client(base_url=url, timeout=30) as http, \
            serving(Recorder) as upstream:
        anchor = pin_root(http, url.data_dir, local_ca.root_pem)
        op = operator_with_approver(http)
        folder = tmp_path / "agent"
        started = time.perf_counter()
        prepared = prepare(url, software_tpm.tcti, folder, operator=op.signer.identity, namespace=NAMESPACE,
                           ek_chain=ek_chain(local_ca))
        before = size(http)
        answer = submit(url, folder, op.passkey.get(prepared.challenge).to_json())
        assert time.perf_counter() - started < 30
        assert answer["trust_anchor"] == anchor and answer["gates"] == ["G1", "G2", "G3", "G4", "G5", "G6"]
        assert size(http) == before + 1 and json.loads((folder / "enrolment.json").read_text())["entry"] == \
            answer["entry"]

        with Tpm(software_tpm.tcti) as tpm:
            agent = st.Signer(agent_signer(tpm, folder))
            assert agent.identity == prepared.agent and agent.identity.startswith("did:key:zDn")
            consent = st.agent_consent(agent, op.signer.identity)  # ES256, signed in the TPM
            verified = verify_statement(consent, DidKeyResolver())  # the offline verifier accepts it
            assert verified.issuer == agent.identity
            assert http.post("/registry/consents", content=consent, headers=COSE).status_code == 201

            # the fold: a tpm passport for this agent; for an agent without an enrolment it is refused
            request = st.PassportRequest(agent.identity, "tpm", answer["machine_fingerprint"], "EU", BUNDLE,
                                         "https://issuer.example/status/1", 0, 7 * DAY)
            passport = http.post("/api/agent/issue", content=st.agent_passport(op.signer, request), headers=COSE)
            assert passport.status_code == 201, passport.text
            software = st.Signer(Ed25519PrivateKey.generate())
            assert http.post("/registry/consents", content=st.agent_consent(software, op.signer.identity),
                             headers=COSE).status_code == 201
            n = size(http)
            fake = replace(request, agent=software.identity, status_index=1)
            refused = http.post("/api/agent/issue", content=st.agent_passport(op.signer, fake), headers=COSE)
            assert (refused.status_code, problem_code(refused)) == (403, "passport-enrolment-missing")
            assert size(http) == n

            # the operator requires hardware: software passports are refused from then on
            policy = op.signer.sign("namespace-policy", {"namespace": NAMESPACE, "require_hardware": True})
            assert http.post("/entries", content=policy, headers=COSE).status_code == 201
            soft = replace(request, agent=software.identity, tier="software", status_index=2, lifetime=DAY)
            refused = http.post("/api/agent/issue", content=st.agent_passport(op.signer, soft), headers=COSE)
            assert (refused.status_code, problem_code(refused)) == (403, "passport-hardware-required")

            # delegation, claim (signed in the TPM), approval: then a request signed in the TPM passes the gateway
            delegation = st.delegation(op.signer, agent.identity, SCOPE, not_after=int(time.time()) + 3600,
                                       max_depth=0)
            assert http.post("/v1/delegations", content=delegation, headers=COSE).status_code == 201
            claim = http.post("/v1/claims", content=st.claim_submission(agent, "mail-1", NAMESPACE, "mail", SCOPE),
                              headers=COSE)
            assert claim.status_code == 201, claim.text
            approve = http.post(f"/v1/claims/{claim.json()['entry']}/approve",
                                content=st.claim_approval(op.signer, claim.json()["entry"]), headers=COSE)
            assert approve.status_code == 201, approve.text

            with started_gateway(tmp_path, url, upstream) as gateway:
                headers = (("Tabellion-Namespace", NAMESPACE), ("Tabellion-Subject", agent.identity),
                           ("Tabellion-Agent-Key", f"{agent.identity}#{agent.identity.removeprefix('did:key:')}"),
                           ("Tabellion-Agent-Passport", passport.json()["entry"]))
                now = int(time.time())
                signed = sign_request(Request("GET", f"{gateway.url}/proxy/mail-api/inbox/1", headers),
                                      key=agent.key, keyid=agent.identity, created=now, expires=now + 60,
                                      nonce=uuid.uuid4().hex)
                assert 'alg="ecdsa-p256-sha256"' in dict(signed.headers)["Signature-Input"]
                passed = httpx.get(signed.target_uri, headers=list(signed.headers), timeout=10)
                assert passed.status_code == 200, passed.text
                assert Recorder.seen[-1].path == "/api/inbox/1"
                wrong = sign_request(Request("GET", f"{gateway.url}/proxy/mail-api/inbox/1", headers),
                                     key=Ed25519PrivateKey.generate(), keyid=agent.identity, created=now,
                                     nonce=uuid.uuid4().hex)
                denied = httpx.get(wrong.target_uri, headers=list(wrong.headers), timeout=10)
                assert (denied.status_code, problem_code(denied)) == (401, "signature-algorithm-mismatch")

        # offline: the bundle names the enrolment and the root the EK chained to
        keys = parse_key_set(http.get("/.well-known/scitt-keys").content)
        bundle = http.get(f"/v1/audit/{agent.identity}").json()
        lines = verify_bundle(bundle, keys).lines()
        text = "\n".join(lines)
        assert f"TPM 2.0 enrolment entry {answer['entry']}" in text, text
        assert f"root sha256:{answer['ek_root_sha256']} pinned by trust-anchor entry {anchor}" in text
        assert "passport: entry" in text and ", tpm, " in text and "REVOKED" not in text
        (tmp_path / "audit.json").write_text(json.dumps(bundle))
        (tmp_path / "log.keys").write_bytes(http.get("/.well-known/scitt-keys").content)
        from cli.commands import verify_bundle_file

        shown = "\n".join(verify_bundle_file(tmp_path / "audit.json", tmp_path / "log.keys"))
        assert f"pinned by trust-anchor entry {anchor}" in shown


# --- each gate refuses with its code, and nothing is logged --------------------------------------------------


@dataclass
class EnrolmentLog:
    url: ServerUrl
    http: httpx.Client
    op: Operator
    tpm: SoftwareTpm
    other: SoftwareTpm
    foreign: SoftwareTpm
    ca: LocalCa
    anchor: str

    def evidence(self, **changes: Any) -> dict[str, Any]:
        with Tpm(self.tpm.tcti) as tpm:
            request, _ = collect(tpm, self.url, operator=self.op.signer.identity, namespace=NAMESPACE,
                                 ek_chain=ek_chain(self.ca))
        request.update(changes)
        return request

    def approve(self, request: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {**request, "webauthn": self.op.passkey.get(request_digest(request), **kwargs).to_json()}

    def refused(self, body: dict[str, Any], code: str) -> str:
        before = size(self.http)
        answer = self.http.post("/v1/enrol/submit", json={k: v for k, v in body.items() if k != "nonce"})
        assert answer.status_code == 403, answer.text
        assert problem_code(answer) == code, answer.json()
        assert size(self.http) == before, "a refused enrolment changed the log"
        return str(answer.json()["detail"])


@pytest.fixture(scope="module")
def enrolment_log(tmp_path_factory: pytest.TempPathFactory, local_ca: LocalCa, manufactured_tpm: Path,
                  other_manufactured_tpm: Path) -> Iterator[EnrolmentLog]:
    import shutil

    base = tmp_path_factory.mktemp("gates")
    foreign_ca = LocalCa.create(base / "foreign-ca", "Unpinned vendor")
    manufacture(foreign_ca, base / "foreign-state")
    tpms = []
    for name, state in (("a", manufactured_tpm), ("b", other_manufactured_tpm), ("f", base / "foreign-state")):
        shutil.copytree(state, base / name, ignore=shutil.ignore_patterns("*.log", ".lock"))
        tpms.append(SoftwareTpm.start(base / name))
    url = start_server(base / "log")
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            anchor = pin_root(http, url.data_dir, local_ca.root_pem)
            yield EnrolmentLog(url, http, operator_with_approver(http), tpms[0], tpms[1], tpms[2], local_ca, anchor)
    finally:
        url.terminate()
        for tpm in tpms:
            tpm.stop()


def test_a_complete_submission_passes_the_gates(enrolment_log: EnrolmentLog) -> None:
    log = enrolment_log
    before = size(log.http)
    answer = log.http.post("/v1/enrol/submit", json=log.approve(log.evidence()))
    assert answer.status_code == 201, answer.text
    assert size(log.http) == before + 1


def test_g1_an_ek_chained_to_an_unpinned_root(enrolment_log: EnrolmentLog) -> None:
    log = enrolment_log
    with Tpm(log.foreign.tcti) as tpm:  # a TPM whose EK certificate comes from another vendor's CA
        request, _ = collect(tpm, log.url, operator=log.op.signer.identity, namespace=NAMESPACE, ek_chain=[])
    detail = log.refused(log.approve(request), "enrolment-ek-chain-untrusted")
    assert "not a root pinned" in detail
    missing = log.evidence(ek_chain=[])  # the pinned CA's EK certificate without its intermediate
    log.refused(log.approve(missing), "enrolment-ek-chain-untrusted")


def test_g2_a_fingerprint_mismatch(enrolment_log: EnrolmentLog) -> None:
    log = enrolment_log
    log.refused(log.approve(log.evidence(machine_fingerprint="sha256:" + "ab" * 32)),
                "enrolment-fingerprint-mismatch")


def test_g3_a_replayed_nonce(enrolment_log: EnrolmentLog) -> None:
    log = enrolment_log
    body = log.approve(log.evidence())
    assert log.http.post("/v1/enrol/submit", json=body).status_code == 201
    assert "a replay" in log.refused(body, "enrolment-quote-invalid")


def test_g3_a_foreign_nonce_and_an_unknown_token(enrolment_log: EnrolmentLog) -> None:
    log = enrolment_log
    with Tpm(log.tpm.tcti) as tpm:
        ak = tpm.create(AK_ATTRIBUTES)
        request, _ = collect(tpm, log.url, operator=log.op.signer.identity, namespace=NAMESPACE,
                             ek_chain=ek_chain(log.ca), ak=ak)
        quote = tpm.quote(tpm.load(ak), os.urandom(32))  # the same AK, over a nonce the service never gave
    swapped = {**request, "quote": {"attest": b64url(quote.attest), "signature": b64url(quote.signature)}}
    assert "nonce" in log.refused(log.approve(swapped), "enrolment-quote-invalid")
    log.refused(log.approve({**log.evidence(), "token": b64url(os.urandom(32))}), "enrolment-quote-invalid")


def test_g3_a_quote_by_another_ak_and_a_tampered_quote(enrolment_log: EnrolmentLog) -> None:
    log = enrolment_log
    with Tpm(log.tpm.tcti) as tpm:
        ak = tpm.create(AK_ATTRIBUTES)
        request, _ = collect(tpm, log.url, operator=log.op.signer.identity, namespace=NAMESPACE,
                             ek_chain=ek_chain(log.ca), ak=ak)
        other_ak = tpm.load(tpm.create(AK_ATTRIBUTES))
        quote = tpm.quote(other_ak, bytes.fromhex(request["nonce"]))
    by_other = {**request, "quote": {"attest": b64url(quote.attest), "signature": b64url(quote.signature)}}
    assert "does not verify" in log.refused(log.approve(by_other), "enrolment-quote-invalid")
    good = log.evidence()
    attest = bytearray(b64url_decode(good["quote"]["attest"], "attest"))
    attest[-40] ^= 0x01  # inside the clock info and firmware version
    tampered = {**good, "quote": {**good["quote"], "attest": b64url(bytes(attest))}}
    log.refused(log.approve(tampered), "enrolment-quote-invalid")


def test_g4_an_ak_not_bound_to_the_ek(enrolment_log: EnrolmentLog) -> None:
    """TPM B's AK, presented with TPM A's EK certificate: B cannot activate A's credential."""
    log = enrolment_log
    with Tpm(log.tpm.tcti) as a:
        ek_certificate = a.ek_certificate()
    with Tpm(log.other.tcti) as b:
        ak_blob, key_blob = b.create(AK_ATTRIBUTES), b.create(AGENT_KEY_ATTRIBUTES)
        start = log.http.post("/v1/enrol/start", json={"ek_certificate": b64url(ek_certificate),
                                                       "ak_public": b64url(ak_blob.public)}).json()
        nonce = b64url_decode(start["nonce"], "nonce")
        ak, key = b.load(ak_blob), b.load(key_blob)
        quote, certify = b.quote(ak, nonce), b.certify(key, ak, nonce)
        b.flush(key)
        with pytest.raises(Exception, match="refused activating"):
            b.activate_credential(ak, b64url_decode(start["credential_blob"], "blob"),
                                  b64url_decode(start["secret"], "secret"))
    template = log.evidence()
    request = {**template, "token": start["token"], "nonce": nonce.hex(), "ak_public": b64url(ak_blob.public),
               "agent_key_public": b64url(key_blob.public), "agent": _did(key_blob.public),
               "quote": {"attest": b64url(quote.attest), "signature": b64url(quote.signature)},
               "certify": {"attest": b64url(certify.attest), "signature": b64url(certify.signature)},
               "activated_credential": b64url(os.urandom(32))}
    assert "not in the TPM that holds the EK" in log.refused(log.approve(request),
                                                             "enrolment-credential-not-activated")


def test_g5_an_exportable_or_uncertified_agent_key(enrolment_log: EnrolmentLog) -> None:
    log = enrolment_log
    with Tpm(log.tpm.tcti) as tpm:
        exportable = tpm.create(AGENT_KEY_ATTRIBUTES & ~(FIXED_TPM | FIXED_PARENT))
        request, _ = collect(tpm, log.url, operator=log.op.signer.identity, namespace=NAMESPACE,
                             ek_chain=ek_chain(log.ca), key=exportable)
    assert "fixedTPM, fixedParent" in log.refused(log.approve(request), "enrolment-key-not-attested")
    with Tpm(log.tpm.tcti) as tpm:
        request, _ = collect(tpm, log.url, operator=log.op.signer.identity, namespace=NAMESPACE,
                             ek_chain=ek_chain(log.ca))
        other_key = tpm.create(AGENT_KEY_ATTRIBUTES)  # certified by nobody
    uncertified = {**request, "agent_key_public": b64url(other_key.public), "agent": _did(other_key.public)}
    assert "certified another object" in log.refused(log.approve(uncertified), "enrolment-key-not-attested")
    enclave = log.evidence(platform="apple-secure-enclave")
    assert "not supported" in log.refused(log.approve(enclave), "enrolment-key-not-attested")


def test_g6_uv_off_or_the_assertion_of_another_decision(enrolment_log: EnrolmentLog) -> None:
    log = enrolment_log
    detail = log.refused(log.approve(log.evidence(), flags=FLAG_UP), "enrolment-operator-approval-invalid")
    assert "webauthn-user-not-verified" in detail
    first, second = log.evidence(), log.evidence()
    crossed = {**second, "webauthn": log.approve(first)["webauthn"]}
    assert "webauthn-challenge-mismatch" in log.refused(crossed, "enrolment-operator-approval-invalid")


def test_a_stranger_cannot_log_an_enrolment_or_pin_a_root(enrolment_log: EnrolmentLog) -> None:
    log = enrolment_log
    stranger = st.Signer(Ed25519PrivateKey.generate())
    anchor = stranger.sign("trust-anchor", {"anchor": log.ca.root_pem.read_text(), "kind": "x509-root-pem",
                                            "purpose": "tpm-endorsement"})
    before = size(log.http)
    answer = log.http.post("/entries", content=anchor, headers=COSE)
    assert answer.status_code == 403 and size(log.http) == before
    assert b"service-statement-untrusted" in answer.content
    request = log.evidence()
    payload = {"agent": request["agent"], "operator": log.op.signer.identity, "namespace": NAMESPACE,
               "platform": "tpm2", "machine_fingerprint": request["machine_fingerprint"],
               "ek_certificate_sha256": "11" * 32, "ek_root_sha256": "22" * 32, "trust_anchor": log.anchor,
               "ak_name": "000b" + "33" * 32, "quote_sha256": "44" * 32, "quote_pcr_selection": "sha256:0",
               "quote_pcr_digest": "55" * 32, "certify_sha256": "66" * 32, "agent_key_name": "000b" + "77" * 32,
               "nonce": "88" * 32, "enrolment_digest": "99" * 32, "webauthn": log.approve(request)["webauthn"],
               "gates": ["G1", "G2", "G3", "G4", "G5", "G6"], "enrolled_at": int(time.time())}
    forged = stranger.sign("agent-enrolment", payload)
    answer = log.http.post("/entries", content=forged, headers=COSE)
    assert answer.status_code == 403 and size(log.http) == before
    assert b"service-statement-untrusted" in answer.content
    # the log's own key, but no gates: the fold still checks the root, the digest and the operator's approval
    unchecked = log_signed(log.url.data_dir, "agent-enrolment", payload, request["agent"])
    answer = log.http.post("/entries", content=unchecked, headers=COSE)
    assert answer.status_code == 403 and size(log.http) == before
    assert b"agent-enrolment-root-not-pinned" in answer.content


def test_malformed_enrolment_requests_are_4xx_and_log_nothing(enrolment_log: EnrolmentLog) -> None:
    """No input makes a 5xx: every member of a good request replaced by garbage of several kinds."""
    log = enrolment_log
    before = size(log.http)
    good = log.approve(log.evidence())
    junk: list[Any] = [None, 7, "", "!!", b64url(os.urandom(40)), b64url(b"0" * 300), [], {}, {"attest": "AAAA"}]
    for name in sorted(good):
        for value in junk:
            answer = log.http.post("/v1/enrol/submit", json={**good, name: value})
            assert 400 <= answer.status_code < 500, (name, value, answer.text)
    with Tpm(log.tpm.tcti) as tpm:
        ek = b64url(tpm.ek_certificate())
        ak = b64url(tpm.create(AK_ATTRIBUTES).public)
    for body in ({}, {"ek_certificate": ek}, {"ek_certificate": ek, "ak_public": b64url(os.urandom(60))},
                 {"ek_certificate": b64url(os.urandom(300)), "ak_public": ak}, {"ek_certificate": 1, "ak_public": ak}):
        answer = log.http.post("/v1/enrol/start", json=body)
        assert answer.status_code == 400, (body, answer.text)
    for raw in (b"", b"[]", b"{", b'"x"'):
        answer = log.http.post("/v1/enrol/submit", content=raw, headers={"content-type": "application/json"})
        assert answer.status_code == 400, answer.text
    assert log.http.post("/v1/enrol/start", content=b"{}").status_code == 415
    assert size(log.http) == before


def test_g3_a_stale_nonce(tmp_path: Path, software_tpm: SoftwareTpm, local_ca: LocalCa) -> None:
    with running_server(tmp_path / "log", enrolment_token_ttl_s=1) as url, \
            httpx.Client(base_url=url, timeout=30) as http:
        pin_root(http, url.data_dir, local_ca.root_pem)
        op = operator_with_approver(http)
        with Tpm(software_tpm.tcti) as tpm:
            request, _ = collect(tpm, url, operator=op.signer.identity, namespace=NAMESPACE,
                                 ek_chain=ek_chain(local_ca))
        time.sleep(2.1)
        before = size(http)
        body = {**request, "webauthn": op.passkey.get(request_digest(request)).to_json()}
        answer = http.post("/v1/enrol/submit", json=body)
        assert (answer.status_code, problem_code(answer)) == (403, "enrolment-quote-invalid")
        assert "stale" in answer.json()["detail"] and size(http) == before


def _did(public: bytes) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec

    from transparency.tpm.structures import parse_public
    from verifier.did_key import did_key_from_public

    key = parse_public(public).public_key
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return did_key_from_public(key)


def test_tabellion_enrol_from_the_command_line(tmp_path: Path, software_tpm: SoftwareTpm, local_ca: LocalCa) -> None:
    """``tabellion enrol prepare`` / ``submit`` as a user runs them, then ``tabellion consent --tpm``: the agent's
    consent signed in the TPM; a refusal is one line."""
    from tests.cli_process import entry_of, tabellion

    with running_server(tmp_path / "log") as url, httpx.Client(base_url=url, timeout=30) as http:
        anchor = entry_of(tabellion("enrol", "pin-root", url, "--data", str(url.data_dir), "--root",
                                    str(local_ca.root_pem), "--note", "the test's local CA"))
        op = operator_with_approver(http)
        agent_dir = tmp_path / "agent"
        prepared = tabellion("enrol", "prepare", url, "--tcti", software_tpm.tcti, "--dir", str(agent_dir),
                             "--operator", op.signer.identity, "--namespace", NAMESPACE,
                             "--ek-chain", str(local_ca.intermediate_pem))
        lines = dict(line.split(": ", 1) for line in prepared.stdout.splitlines() if ": " in line)
        challenge = b64url_decode(lines["challenge"], "challenge")
        (tmp_path / "assertion.json").write_text(json.dumps(op.passkey.get(challenge).to_json()))
        done = tabellion("enrol", "submit", url, "--dir", str(agent_dir), "--assertion",
                         str(tmp_path / "assertion.json"))
        assert f"trust anchor {anchor}" in done.stdout and "G1 G2 G3 G4 G5 G6" in done.stdout
        entry_of(done)
        again = tabellion("enrol", "submit", url, "--dir", str(agent_dir), "--assertion",
                          str(tmp_path / "assertion.json"), ok=False)
        assert len(again.stderr.strip().splitlines()) == 1 and "enrolment-quote-invalid" not in again.stdout
        assert "used already" in again.stderr
        consent = tabellion("consent", url, "--tpm", str(agent_dir), "--tcti", software_tpm.tcti, "--operator",
                            op.signer.identity)
        entry_of(consent)
        assert lines["agent"] in http.get(f"/v1/audit/{lines['agent']}").text


def test_the_log_service_unpins_a_root_from_the_command_line(tmp_path: Path, software_tpm: SoftwareTpm,
                                                             local_ca: LocalCa) -> None:
    """``tabellion revoke`` with the log's own key, on its host, revokes a pinned root's trust-anchor entry: later
    enrolments whose EK chains to it are refused (G1). A stranger cannot unpin it."""
    from tests.cli_process import entry_of, tabellion

    with running_server(tmp_path / "log") as url, httpx.Client(base_url=url, timeout=30) as http:
        anchor = entry_of(tabellion("enrol", "pin-root", url, "--data", str(url.data_dir), "--root",
                                    str(local_ca.root_pem)))
        op = operator_with_approver(http)
        stranger = tmp_path / "stranger.pem"
        tabellion("keygen", "-o", str(stranger))
        before = size(http)
        refused = tabellion("revoke", url, "--key", str(stranger), "--target", anchor, "--reason", "cACompromise",
                            ok=False)
        assert "can be revoked (unpinned) only by the log service" in refused.stderr, refused.stderr
        assert size(http) == before
        entry_of(tabellion("revoke", url, "--key", str(url.data_dir / "log-key.pem"), "--target", anchor,
                           "--reason", "cACompromise"))

        agent_dir = tmp_path / "agent"
        prepared = tabellion("enrol", "prepare", url, "--tcti", software_tpm.tcti, "--dir", str(agent_dir),
                             "--operator", op.signer.identity, "--namespace", NAMESPACE,
                             "--ek-chain", str(local_ca.intermediate_pem))
        lines = dict(line.split(": ", 1) for line in prepared.stdout.splitlines() if ": " in line)
        (tmp_path / "assertion.json").write_text(json.dumps(
            op.passkey.get(b64url_decode(lines["challenge"], "challenge")).to_json()))
        before = size(http)
        unpinned = tabellion("enrol", "submit", url, "--dir", str(agent_dir), "--assertion",
                             str(tmp_path / "assertion.json"), ok=False)
        assert unpinned.stderr.startswith("tabellion: error: G1: EK certificate not chained to a pinned root: no TPM "
                                          "endorsement root is pinned"), unpinned.stderr
        assert size(http) == before
