"""Why the fold refuses a statement: one stable code per refusal (docs/authority.md lists them all).

A refusal is a ``Refused`` (a ``TransitionInvalid``, so HTTP 403) whose ``code`` is one ``Refusal``. The code
is kept on the entry's ``Outcome``, answered as the problem-details ``type`` and shown by ``verify bundle``;
tests assert codes, never prose. Refusals that other checks already raise with a code of their own (a payload
that breaks its schema, a WebAuthn assertion or a Data Integrity proof that fails) keep that code.
"""

from __future__ import annotations

from enum import StrEnum

from schemas.errors import TransitionInvalid


class Refusal(StrEnum):
    # --- any statement: its signer ------------------------------------------------------------------------
    ENTRY_OUT_OF_ORDER = "entry-out-of-order"
    SIGNER_UNKNOWN = "signer-unknown"
    SIGNER_REVOKED = "signer-revoked"
    SIGNER_KEY_REVOKED = "signer-key-revoked"
    SIGNER_KEY_MISMATCH = "signer-key-mismatch"
    SERVICE_STATEMENT_UNTRUSTED = "service-statement-untrusted"
    # --- operator-registration ----------------------------------------------------------------------------
    REGISTRATION_ISSUER_MISMATCH = "registration-issuer-mismatch"
    REGISTRATION_DID_METHOD_UNSUPPORTED = "registration-did-method-unsupported"
    REGISTRATION_KEY_NOT_DID_KEY = "registration-key-not-did-key"
    REGISTRATION_NOT_SELF_SIGNED = "registration-not-self-signed"
    OPERATOR_ALREADY_REGISTERED = "operator-already-registered"
    OPERATOR_REVOKED = "operator-revoked"
    NAMESPACE_TAKEN = "namespace-taken"
    WITNESS_THRESHOLD_TOO_HIGH = "witness-threshold-too-high"
    # --- key-rotation -------------------------------------------------------------------------------------
    CONTROLLER_UNKNOWN = "controller-unknown"
    CONTROLLER_REVOKED = "controller-revoked"
    ROTATION_ISSUER_MISMATCH = "rotation-issuer-mismatch"
    ROTATION_SEQUENCE_INVALID = "rotation-sequence-invalid"
    ROTATION_PREVIOUS_MISMATCH = "rotation-previous-mismatch"
    ROTATION_KEY_NOT_COMMITTED = "rotation-key-not-committed"
    ROTATION_KEY_REVOKED = "rotation-key-revoked"
    ROTATION_NOT_SIGNED_BY_REVEALED_KEY = "rotation-not-signed-by-revealed-key"
    WITNESS_UNKNOWN = "witness-unknown"
    WITNESS_KEY_UNSUPPORTED = "witness-key-unsupported"
    WITNESS_SIGNATURE_INVALID = "witness-signature-invalid"
    WITNESS_QUORUM_NOT_MET = "witness-quorum-not-met"
    # --- agent-consent ------------------------------------------------------------------------------------
    CONSENT_ISSUER_MISMATCH = "consent-issuer-mismatch"
    CONSENT_AGENT_NOT_DID_KEY = "consent-agent-not-did-key"
    CONSENT_OPERATOR_UNKNOWN = "consent-operator-unknown"
    CONSENT_OPERATOR_REVOKED = "consent-operator-revoked"
    CONSENT_MISSING = "consent-missing"
    CONSENT_NOT_NEWER = "consent-not-newer"
    AGENT_REVOKED = "agent-revoked"
    # --- agent-passport -----------------------------------------------------------------------------------
    PASSPORT_ISSUER_MISMATCH = "passport-issuer-mismatch"
    PASSPORT_OPERATOR_UNKNOWN = "passport-operator-unknown"
    PASSPORT_VALIDITY_EMPTY = "passport-validity-empty"
    PASSPORT_VALIDITY_OVER_CAP = "passport-validity-over-cap"
    PASSPORT_EXPIRED_AT_ISSUE = "passport-expired-at-issue"
    PASSPORT_STATUS_INDEX_USED = "passport-status-index-used"
    PASSPORT_PROOF_INVALID = "passport-proof-invalid"
    PASSPORT_TIER_UNSUPPORTED = "passport-tier-unsupported"
    PASSPORT_ENROLMENT_MISSING = "passport-enrolment-missing"
    PASSPORT_FINGERPRINT_MISMATCH = "passport-fingerprint-mismatch"
    PASSPORT_HARDWARE_REQUIRED = "passport-hardware-required"
    # --- trust-anchor, agent-enrolment (TPM 2.0), namespace-policy ------------------------------------------
    TRUST_ANCHOR_INVALID = "trust-anchor-invalid"
    AGENT_ENROLMENT_OPERATOR_MISMATCH = "agent-enrolment-operator-mismatch"
    AGENT_ENROLMENT_ROOT_NOT_PINNED = "agent-enrolment-root-not-pinned"
    AGENT_ENROLMENT_DIGEST_MISMATCH = "agent-enrolment-digest-mismatch"
    NAMESPACE_POLICY_NOT_NEWER = "namespace-policy-not-newer"
    # --- delegation ---------------------------------------------------------------------------------------
    DELEGATION_ISSUER_MISMATCH = "delegation-issuer-mismatch"
    DELEGATION_PRINCIPAL_REVOKED = "delegation-principal-revoked"
    DELEGATION_TOO_DEEP = "delegation-too-deep"
    DELEGATION_ROOT_NOT_OPERATOR = "delegation-root-not-operator"
    DELEGATION_PARENT_UNKNOWN = "delegation-parent-unknown"
    DELEGATION_PARENT_AGENT_MISMATCH = "delegation-parent-agent-mismatch"
    DELEGATION_PARENT_INVALID = "delegation-parent-invalid"
    DELEGATION_OUTLIVES_PARENT = "delegation-outlives-parent"
    DELEGATION_SCOPE_WIDENED = "delegation-scope-widened"
    DELEGATION_EXPIRED_AT_ISSUE = "delegation-expired-at-issue"
    DELEGATION_REPLAYED = "delegation-replayed"
    # --- claims -------------------------------------------------------------------------------------------
    CLAIM_ISSUER_MISMATCH = "claim-issuer-mismatch"
    NAMESPACE_UNKNOWN = "namespace-unknown"
    CLAIM_ID_USED = "claim-id-used"
    CLAIM_UNKNOWN = "claim-unknown"
    NOT_NAMESPACE_OWNER = "not-namespace-owner"
    CLAIM_NOT_PENDING = "claim-not-pending"
    CLAIM_SELF_APPROVAL = "claim-self-approval"
    DECIDER_REVOKED = "decider-revoked"
    HUMAN_ASSERTION_MISSING = "human-assertion-missing"
    # --- approver-enrolment -------------------------------------------------------------------------------
    APPROVER_REVOKED = "approver-revoked"
    ENROLMENT_UNUSABLE = "enrolment-unusable"
    CREDENTIAL_ALREADY_ENROLLED = "credential-already-enrolled"
    ENROLMENT_REGISTRATION_INVALID = "enrolment-registration-invalid"
    APPROVER_NOT_ENTITLED = "approver-not-entitled"
    # --- revocation ---------------------------------------------------------------------------------------
    ALREADY_REVOKED = "already-revoked"
    REVOCATION_TARGET_UNKNOWN = "revocation-target-unknown"
    DID_REVOCATION_NOT_ENTITLED = "did-revocation-not-entitled"
    PASSPORT_REVOCATION_NOT_ENTITLED = "passport-revocation-not-entitled"
    DELEGATION_REVOCATION_NOT_ENTITLED = "delegation-revocation-not-entitled"
    ENROLMENT_REVOCATION_NOT_ENTITLED = "enrolment-revocation-not-entitled"
    CONSENT_REVOCATION_NOT_ENTITLED = "consent-revocation-not-entitled"
    AGENT_ENROLMENT_REVOCATION_NOT_ENTITLED = "agent-enrolment-revocation-not-entitled"
    TRUST_ANCHOR_REVOCATION_NOT_ENTITLED = "trust-anchor-revocation-not-entitled"
    KEY_REVOCATION_NOT_ENTITLED = "key-revocation-not-entitled"


class Refused(TransitionInvalid):
    """A statement the fold refuses, with the one ``Refusal`` that says why."""

    title = "Transition refused"

    def __init__(self, refusal: Refusal | str, detail: str) -> None:
        """``refusal`` is a ``Refusal``, or the code of an outcome the fold kept (which may be another check's)."""
        super().__init__(detail)
        self.refusal = refusal
        self.code = str(refusal)
