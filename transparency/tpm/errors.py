"""Errors of TPM 2.0 enrolment: malformed evidence, and one refusal per gate (docs/tpm.md lists the codes):
``EnrolmentRefused`` with the ``Gate`` that failed, as ``verifier.refusals.Refused`` carries its ``Refusal``.

Every gate of ``POST /v1/enrol/submit`` refuses with its own code; what failed inside the gate (a structure that
does not parse, a signature that does not verify, a nonce that is stale) is said in the detail. A refused
submission logs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

from schemas.errors import BadInput, PolicyRefused


class TpmStructureInvalid(BadInput):
    """A TPM structure (TPMT_PUBLIC, TPMS_ATTEST, TPMT_SIGNATURE, a credential) that does not unmarshal."""

    code = "tpm-structure-invalid"
    title = "Malformed TPM structure"


class TpmSignatureInvalid(BadInput):
    """A TPMT_SIGNATURE that does not verify over its attestation with the key that should have made it."""

    code = "tpm-signature-invalid"
    title = "TPM signature does not verify"


class EnrolmentRequestInvalid(BadInput):
    """An enrolment request whose JSON lacks a member or has one of the wrong form."""

    code = "enrolment-request-invalid"
    title = "Malformed enrolment request"


class Gate(StrEnum):
    """The gates of ``POST /v1/enrol/submit``, each with its stable code."""

    G1 = "enrolment-ek-chain-untrusted"  # the EK certificate does not chain to a root pinned by a trust-anchor
    G2 = "enrolment-fingerprint-mismatch"  # the machine fingerprint is not SHA-256 of the EK's SubjectPublicKeyInfo
    # no fresh TPM2_Quote by the AK over this enrolment's nonce (unknown, stale or used token; another nonce;
    # another signer; a changed quote)
    G3 = "enrolment-quote-invalid"
    G4 = "enrolment-credential-not-activated"  # the AK is not bound to the EK: the credential was not activated
    # the AK or the agent key lacks the attributes of a TPM-resident, non-exportable key, or the agent key is not
    # certified by the AK (or the platform's attestation is of a kind not supported)
    G5 = "enrolment-key-not-attested"
    # no user-verified passkey assertion, by an approver enrolled in the operator's namespace, over this
    # enrolment's digest
    G6 = "enrolment-operator-approval-invalid"


TITLES: Final[Mapping[Gate, str]] = {
    Gate.G1: "G1: EK certificate not chained to a pinned root",
    Gate.G2: "G2: machine fingerprint is not the EK's",
    Gate.G3: "G3: quote does not carry this enrolment's fresh nonce",
    Gate.G4: "G4: AK not bound to the EK",
    Gate.G5: "G5: agent key not attested as TPM-resident and non-exportable",
    Gate.G6: "G6: operator approval missing or invalid",
}


class EnrolmentRefused(PolicyRefused):
    """A gate of the enrolment ceremony failed; nothing was logged. The error answers with the gate's code and
    title."""

    code = "enrolment-refused"
    title = "Enrolment refused"

    def __init__(self, gate: Gate, detail: str) -> None:
        super().__init__(detail)
        self.gate = gate
        self.code = str(gate)
        self.title = TITLES[gate]
