"""Errors of TPM 2.0 enrolment: malformed evidence, and one refusal per gate (docs/tpm.md lists the codes).

Every gate of ``POST /v1/enrol/submit`` refuses with its own code; what failed inside the gate (a structure that
does not parse, a signature that does not verify, a nonce that is stale) is said in the detail. A refused
submission logs nothing.
"""

from __future__ import annotations

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


class EnrolmentRefused(PolicyRefused):
    """A gate of the enrolment ceremony failed; nothing was logged."""

    code = "enrolment-refused"
    title = "Enrolment refused"
    gate = ""


class EkChainUntrusted(EnrolmentRefused):
    """G1: the EK certificate does not chain to a root pinned on the log by a trust-anchor statement."""

    code = "enrolment-ek-chain-untrusted"
    title = "G1: EK certificate not chained to a pinned root"
    gate = "G1"


class FingerprintMismatch(EnrolmentRefused):
    """G2: the declared machine fingerprint is not SHA-256 of the EK certificate's SubjectPublicKeyInfo."""

    code = "enrolment-fingerprint-mismatch"
    title = "G2: machine fingerprint is not the EK's"
    gate = "G2"


class QuoteInvalid(EnrolmentRefused):
    """G3: no fresh TPM2_Quote by the AK over this enrolment's nonce (unknown, stale or used token; another nonce;
    another signer; a changed quote)."""

    code = "enrolment-quote-invalid"
    title = "G3: quote does not carry this enrolment's fresh nonce"
    gate = "G3"


class CredentialNotActivated(EnrolmentRefused):
    """G4: the AK is not bound to the EK: the credential made for them was not activated by the TPM."""

    code = "enrolment-credential-not-activated"
    title = "G4: AK not bound to the EK"
    gate = "G4"


class KeyNotAttested(EnrolmentRefused):
    """G5: the AK or the agent key lacks the attributes of a TPM-resident, non-exportable key, or the agent key is not
    certified by the AK (or the platform's attestation is of a kind not supported)."""

    code = "enrolment-key-not-attested"
    title = "G5: agent key not attested as TPM-resident and non-exportable"
    gate = "G5"


class OperatorApprovalInvalid(EnrolmentRefused):
    """G6: no user-verified passkey assertion, by an approver enrolled in the operator's namespace, over this
    enrolment's digest."""

    code = "enrolment-operator-approval-invalid"
    title = "G6: operator approval missing or invalid"
    gate = "G6"
