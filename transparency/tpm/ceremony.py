"""The enrolment ceremony of a TPM-rooted agent: ``POST /v1/enrol/start`` and ``POST /v1/enrol/submit``.

``start`` takes the agent's EK certificate and AK public area, and answers a single-use token, a fresh nonce and a
credential made for that EK and the AK's Name (``transparency.tpm.credential``: the service needs no TPM); the
session is kept in SQLite (``transparency.tpm.sessions``) for ``enrolment_token_ttl_s`` seconds.

``submit`` spends the token, runs the six gates (``transparency.tpm.gates``) against the identity state of the log,
and only if all pass signs an ``agent-enrolment`` statement with the log's own key (its did:key is one of the
fold's ``service_signers``) and registers it through the ordinary path (registration policy, sequencer): the
answer carries its entry id and receipt. A refused submission answers the gate's problem and logs nothing.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from schemas import cose_labels as L
from schemas.base64url import b64url, b64url_decode
from schemas.identity_statements import content_type, encode_payload
from schemas.leaf import entry_id
from transparency.client.signing import did_of, sign_statement
from transparency.service import TransparencyService
from transparency.settings import Settings
from transparency.tpm.credential import EndorsementKey, make_credential
from transparency.tpm.errors import EnrolmentRequestInvalid
from transparency.tpm.gates import Submission, run_gates
from transparency.tpm.sessions import Session, SessionStore
from transparency.tpm.structures import TpmPublic, parse_public

Clock = Callable[[], float]
CREDENTIAL_BYTES = 32


class EnrolmentCeremony:
    def __init__(self, service: TransparencyService, settings: Settings, clock: Clock = time.time) -> None:
        self.service = service
        self.ttl_s = settings.enrolment_token_ttl_s
        self.sessions = SessionStore(settings.enrolments_path)
        self.clock = clock

    def close(self) -> None:
        self.sessions.close()

    def start(self, body: dict[str, Any]) -> dict[str, Any]:
        """A token, a nonce and the credential for the EK and AK in ``body`` (module docstring)."""
        ek_der = b64url_decode(body.get("ek_certificate"), "ek_certificate", EnrolmentRequestInvalid)
        try:
            ek_key = x509.load_der_x509_certificate(ek_der).public_key()
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise EnrolmentRequestInvalid(f"ek_certificate is not a DER X.509 certificate: {exc}") from exc
        ak: TpmPublic = parse_public(b64url_decode(body.get("ak_public"), "ak_public", EnrolmentRequestInvalid),
                                     "the AK's TPMT_PUBLIC")
        credential = os.urandom(CREDENTIAL_BYTES)
        made = make_credential(EndorsementKey.from_certificate_key(ek_key), ak.name, credential)
        now = int(self.clock())
        token, nonce = b64url(os.urandom(32)), os.urandom(32)
        session = Session(nonce, hashlib.sha256(ek_der).hexdigest(), ak.name.hex(),
                          hashlib.sha256(credential).digest(), now + self.ttl_s)
        self.sessions.open(token, session, now)
        return {"token": token, "nonce": b64url(nonce), "expires_at": session.expires_at,
                "credential_blob": b64url(made.credential_blob), "secret": b64url(made.secret)}

    async def submit(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Spend the token, run the gates, log the verdict; (HTTP status, answer)."""
        submission = Submission.from_json(body)
        now = int(self.clock())
        session = self.sessions.take(submission.token, now)
        with self.service.identity.reading() as state:
            payload = run_gates(submission, session, state, now)
        key = self.service.key.private
        signer = did_of(key)
        statement = sign_statement(key, encode_payload("agent-enrolment", payload), subject=submission.agent,
                                   content_type=content_type("agent-enrolment"), issuer=signer,
                                   extra_claims={L.CWT_IAT: now})
        logged = await self.service.register(statement)
        answer: dict[str, Any] = {
            "entry": entry_id(logged.leaf_data), "agent": submission.agent, "trust_anchor": payload["trust_anchor"],
            "ek_root_sha256": payload["ek_root_sha256"], "gates": payload["gates"],
            "machine_fingerprint": payload["machine_fingerprint"], "statement": b64url(statement),
        }
        if logged.receipt is None:
            return 202, answer
        return 201, {**answer, "receipt": b64url(logged.receipt)}
