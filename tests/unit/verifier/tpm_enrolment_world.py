"""An identity-fold world for TPM enrolments (P-256 agents, trust anchors, passkey-approved enrolments) and a root."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.unit.verifier.identity_world import FINGERPRINT, T0, World
from verifier.enrolments import GATES, enrolment_digest
from verifier.fold import Fold, IdentityState


def root_pem(name: str = "Test TPM Root") -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                   .serial_number(1).not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=9))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


class TpmWorld(World):
    """A World whose agents named ``tpm…`` have P-256 keys (as a TPM makes them) and whose fold trusts ``log``."""

    def key(self, name: str) -> Any:
        if name.startswith("tpm") and name not in self.keys:
            self.keys[name] = ec.generate_private_key(ec.SECP256R1())  # type: ignore[assignment]
        return super().key(name)

    def fold(self) -> IdentityState:
        return Fold(service_signers=frozenset({self.did("log")})).apply_all(self.entries)

    def anchor(self, pem: str, signer: str = "log") -> str:
        return self.add(signer, "trust-anchor", {"anchor": pem, "kind": "x509-root-pem", "purpose": "tpm-endorsement"})

    def enrolment_payload(self, anchor: str, pem: str, agent: str = "tpm-agent", operator: str = "op",
                          human: str = "human", flags: int | None = None, **changes: Any) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "agent": self.did(agent), "operator": self.did(operator), "namespace": "acme", "platform": "tpm2",
            "machine_fingerprint": FINGERPRINT, "ek_certificate_sha256": "11" * 32,
            "ek_root_sha256": hashlib.sha256(x509.load_pem_x509_certificate(pem.encode()).public_bytes(
                serialization.Encoding.DER)).hexdigest(),
            "trust_anchor": anchor, "ak_name": "000b" + "22" * 32, "quote_sha256": "33" * 32,
            "quote_pcr_selection": "sha256:0,1,2,3,4,5,6,7", "quote_pcr_digest": "44" * 32,
            "certify_sha256": "55" * 32, "agent_key_name": "000b" + "66" * 32, "nonce": "77" * 32,
            "gates": list(GATES), "enrolled_at": T0,
        }
        payload.update({k: v for k, v in changes.items() if k != "after"})
        digest = enrolment_digest(payload)
        payload["enrolment_digest"] = digest.hex()
        key = self.passkey(human)
        assertion = key.get(digest) if flags is None else key.get(digest, flags=flags)
        payload["webauthn"] = assertion.to_json()
        payload.update(changes.get("after", {}))
        return payload

    def enrol_agent(self, anchor: str, pem: str, signer: str = "log", **kwargs: Any) -> str:
        return self.add(signer, "agent-enrolment", self.enrolment_payload(anchor, pem, **kwargs))
