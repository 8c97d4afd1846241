"""A log ready for TPM enrolments, over real HTTP: the local CA's root pinned by the log's own key (a trust-anchor
statement of purpose tpm-endorsement), an operator with its namespace, and the operator's passkey enrolled as an
approver of that namespace (both WebAuthn ceremonies, with the software authenticator)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from issuer.passkeys import add_consent, consent_options, enrolment_registration_options, verify_registration
from issuer.statements import Signer, approver_enrolment, operator_registration
from schemas import cose_labels as L
from schemas.identity_statements import content_type, encode_payload
from schemas.leaf import entry_id, leaf_data
from schemas.statement import parse_statement
from tests.swtpm import LocalCa
from tests.webauthn_authenticator import ORIGIN, RP_ID, SoftwareAuthenticator
from transparency.client import did_of, sign_statement
from transparency.client.signing import load_ed25519_key
from verifier.webauthn import b64url_decode

COSE = {"content-type": "application/cose"}
NAMESPACE = "acme"


def der_of(pem: Path) -> bytes:
    return x509.load_pem_x509_certificate(pem.read_bytes()).public_bytes(serialization.Encoding.DER)


def log_signed(data_dir: Path, stype: str, payload: dict[str, Any], subject: str, iat: int | None = None) -> bytes:
    """A statement signed with the log's own key (what only the service may say), read from its data folder."""
    key = load_ed25519_key(data_dir / "log-key.pem", "log key")
    extra = {L.CWT_IAT: iat} if iat is not None else None
    return sign_statement(key, encode_payload(stype, payload), subject=subject, content_type=content_type(stype),
                          issuer=did_of(key), extra_claims=extra)


def register(http: httpx.Client, statement: bytes) -> str:
    answer = http.post("/entries", content=statement, headers=COSE)
    assert answer.status_code == 201, answer.content
    return entry_id(leaf_data(parse_statement(statement).message))


def pin_root(http: httpx.Client, data_dir: Path, root_pem: Path) -> str:
    """Pin ``root_pem`` as a TPM endorsement root: a trust-anchor signed by the log's key, over SCRAPI."""
    payload = {"anchor": root_pem.read_text(), "kind": "x509-root-pem", "purpose": "tpm-endorsement",
               "note": "the test's local CA (swtpm_localca)"}
    return register(http, log_signed(data_dir, "trust-anchor", payload, "tpm-endorsement"))


@dataclass
class Operator:
    signer: Signer
    passkey: SoftwareAuthenticator
    approver_entry: str


def operator_with_approver(http: httpx.Client, namespace: str = NAMESPACE) -> Operator:
    owner = Signer(Ed25519PrivateKey.generate())
    answer = http.post("/registry/operators", headers=COSE,
                       content=operator_registration(owner, namespace, Ed25519PrivateKey.generate()))
    assert answer.status_code == 201, answer.text
    key = SoftwareAuthenticator()
    options = enrolment_registration_options(namespace=namespace, approver=None, rp_id=RP_ID, origin=ORIGIN,
                                             rp_name="Acme approvals", user_name="alice")
    created = key.create(b64url_decode(options["challenge"], "challenge"))
    unconsented = verify_registration(created, namespace=namespace, approver=None, rp_id=RP_ID, origin=ORIGIN)
    challenge = b64url_decode(consent_options(unconsented, owner=owner.identity)["challenge"], "challenge")
    payload = add_consent(unconsented, key.get(challenge).to_json(), owner=owner.identity)
    answer = http.post("/registry/approvers", content=approver_enrolment(owner, payload), headers=COSE)
    assert answer.status_code == 201, answer.text
    return Operator(owner, key, answer.json()["entry"])


def ek_chain(ca: LocalCa) -> list[bytes]:
    return [der_of(ca.intermediate_pem)]
