"""The one error hierarchy of Tabellion.

Every check raises one of these; nothing returns a bool. Each class has a stable ``code`` (it becomes the
problem-details ``type``) and a short ``title``; the instance carries a ``detail`` naming exactly what was wrong.
The HTTP status is no business of an error's: the one mapper (``transparency.problem_details``) decides it from
the code, the error's own or its family's.
"""

from __future__ import annotations

PROBLEM_TYPE_BASE = "urn:tabellion:error:"


def shown(value: object) -> str:
    """``repr(value)``, cut at 80 characters: how a detail names the value it refuses."""
    text = repr(value)
    return text if len(text) <= 80 else text[:80] + "…"


class TabellionError(Exception):
    """Base of every error Tabellion raises on purpose."""

    code: str = "internal-error"  # an instance may carry a finer code (verifier.refusals.Refused)
    title: str = "Internal error"  # and a finer title (transparency.tpm.errors.EnrolmentRefused)

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    @property
    def type_uri(self) -> str:
        return PROBLEM_TYPE_BASE + self.code

    def __str__(self) -> str:
        return f"{self.title}: {self.detail}"


# --- malformed input (400) -------------------------------------------------------------------------


class BadInput(TabellionError):
    code = "bad-input"
    title = "Bad input"


class MalformedCbor(BadInput):
    code = "malformed-cbor"
    title = "Malformed CBOR"


class NotCoseSign1(BadInput):
    code = "not-cose-sign1"
    title = "Not a COSE_Sign1 message"


class MissingHeader(BadInput):
    code = "missing-header"
    title = "Missing protected header"


class InvalidHeader(BadInput):
    code = "invalid-header"
    title = "Invalid protected header"


class UnsupportedAlgorithm(BadInput):
    code = "unsupported-algorithm"
    title = "Unsupported algorithm"


class InvalidHashEnvelope(BadInput):
    code = "invalid-hash-envelope"
    title = "Invalid hash envelope"


class MalformedNote(BadInput):
    code = "malformed-note"
    title = "Malformed signed note"


class MalformedCheckpoint(BadInput):
    code = "malformed-checkpoint"
    title = "Malformed checkpoint"


class MalformedWitnessRequest(BadInput):
    """A C2SP tlog-witness body (add-checkpoint request, 409 size, cosignature lines) that does not parse."""

    code = "malformed-witness-request"
    title = "Malformed witness request"


class MalformedPolicy(BadInput):
    """A C2SP tlog-policy file that does not parse or breaks one of its rules."""

    code = "malformed-policy"
    title = "Malformed trust policy"


class MalformedReceipt(BadInput):
    code = "malformed-receipt"
    title = "Malformed receipt"


class MalformedKey(BadInput):
    code = "malformed-key"
    title = "Malformed key"


class InvalidParameter(BadInput):
    code = "invalid-parameter"
    title = "Invalid request parameter"


class UnsupportedMediaType(TabellionError):
    code = "unsupported-media-type"
    title = "Unsupported media type"


class PayloadTooLarge(TabellionError):
    code = "payload-too-large"
    title = "Payload too large"


class RequestBodyTimeout(TabellionError):
    """The client stalled while sending the request body (``transparency.request_bodies``)."""

    code = "request-body-timeout"
    title = "Request body timed out"


class RequestBodyIncomplete(BadInput):
    """The client closed the connection before the request body was complete."""

    code = "request-body-incomplete"
    title = "Request body incomplete"


class JsonTooDeep(BadInput):
    """A JSON body nests arrays and objects deeper than the service reads (refused before parsing)."""

    code = "json-too-deep"
    title = "JSON nested too deeply"


class ProofOptionsInvalid(BadInput):
    """The document or options given to create a Data Integrity proof cannot make one (PROOF_GENERATION_ERROR)."""

    code = "proof-options-invalid"
    title = "Invalid proof options"


class MalformedStatusList(BadInput):
    """A Bitstring Status List (or its ``encodedList``) breaks a MUST of Bitstring Status List v1.0."""

    code = "malformed-status-list"
    title = "Malformed status list"


class StatusIndexOutOfRange(BadInput):
    """A status list index outside the bitstring (the RANGE_ERROR of Bitstring Status List v1.0)."""

    code = "status-index-out-of-range"
    title = "Status list index out of range"


# --- verification failures ------------------------------------------------------------------------


class VerificationError(TabellionError):
    """A signature, proof or consistency check failed."""

    code = "verification-failed"
    title = "Verification failed"


class SignatureInvalid(VerificationError):
    code = "signature-invalid"
    title = "Signature invalid"


class ReceiptSignatureInvalid(VerificationError):
    code = "receipt-signature-invalid"
    title = "Receipt signature invalid"


class InclusionProofInvalid(VerificationError):
    code = "inclusion-proof-invalid"
    title = "Inclusion proof invalid"


class ConsistencyProofInvalid(VerificationError):
    code = "consistency-proof-invalid"
    title = "Consistency proof invalid"


class NoteSignatureInvalid(VerificationError):
    """A C2SP signed note (or cosignature) by a known key does not verify, or no known key signed it."""

    code = "note-signature-invalid"
    title = "Signed note signature invalid"


class CheckpointSignatureInvalid(NoteSignatureInvalid):
    code = "checkpoint-signature-invalid"
    title = "Checkpoint signature invalid"


class CheckpointInconsistent(VerificationError):
    code = "checkpoint-inconsistent"
    title = "Checkpoint inconsistent"


class CheckpointUnwitnessed(VerificationError):
    """A checkpoint signed by the log lacks the witness cosignatures a C2SP tlog-policy quorum requires."""

    code = "checkpoint-unwitnessed"
    title = "Checkpoint not witnessed by the quorum"


class KeyUnknown(VerificationError):
    code = "key-unknown"
    title = "Key unknown"


class ProofInvalid(VerificationError):
    """A W3C Data Integrity proof is missing, malformed, for another purpose, or does not bind the document."""

    code = "proof-invalid"
    title = "Data Integrity proof invalid"


class ProofSignatureInvalid(ProofInvalid):
    code = "proof-signature-invalid"
    title = "Data Integrity proof signature invalid"


class UnsupportedCryptosuite(ProofInvalid):
    """A proof type or cryptosuite other than DataIntegrityProof with eddsa-jcs-2022."""

    code = "unsupported-cryptosuite"
    title = "Unsupported cryptosuite"


# --- policy (403) ---------------------------------------------------------------------------------


class PolicyRefused(TabellionError):
    code = "policy-refused"
    title = "Refused by registration policy"


class SignerUnresolvable(PolicyRefused):
    code = "signer-unresolvable"
    title = "Signer cannot be resolved"


class CwtTimeInvalid(PolicyRefused):
    """A CWT ``exp`` or ``nbf`` that is not a NumericDate a clock reaches: an infinity, a NaN, or an integer past
    2^63 either way."""

    code = "cwt-time-invalid"
    title = "CWT time out of range"


# --- lookups and load -----------------------------------------------------------------------------


class NotFound(TabellionError):
    code = "not-found"
    title = "Not found"


class EntryNotFound(NotFound):
    code = "entry-not-found"
    title = "Entry not found"


class MethodNotAllowed(TabellionError):
    """The path exists but does not take this method; ``allow`` lists those it takes (the ``Allow`` header)."""

    code = "method-not-allowed"
    title = "Method not allowed"

    def __init__(self, detail: str, allow: str = "") -> None:
        super().__init__(detail)
        self.allow = allow


class CheckpointNotWitnessed(NotFound):
    """The log has no checkpoint that its witness policy's quorum cosigned (none configured, or none yet)."""

    code = "checkpoint-not-witnessed"
    title = "No witnessed checkpoint"


class Overloaded(TabellionError):
    """Too many requests: the client should retry after ``retry_after`` seconds."""

    code = "too-many-requests"
    title = "Too many requests"

    def __init__(self, detail: str, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


# --- storage --------------------------------------------------------------------------------------


class StorageError(TabellionError):
    code = "storage-error"
    title = "Storage error"


class LogCorrupted(StorageError):
    code = "log-corrupted"
    title = "Log corrupted"


# The classes of corruption that the start-up checks and ``tabellion fsck`` name (transparency.log.checks).


class StatementCorrupted(LogCorrupted):
    """A logged statement's bytes are no longer those its entry id (and the signed tree) commit to."""

    code = "statement-corrupted"
    title = "Logged statement corrupted"


class EntryIdCorrupted(LogCorrupted):
    """An entry's stored id is not the id of its statement, or not the leaf the signed tree holds."""

    code = "entry-id-corrupted"
    title = "Entry id corrupted"


class EntryMissing(LogCorrupted):
    """Entry rows are gone from the middle of the log (later entries are still there)."""

    code = "entry-missing"
    title = "Entry missing"


class EntryMetadataCorrupted(LogCorrupted):
    """An entry's tree size or registration time is not that of the signed head that first covered it."""

    code = "entry-metadata-corrupted"
    title = "Entry metadata corrupted"


class LogTruncated(LogCorrupted):
    """The entries end before the latest signed tree head does."""

    code = "log-truncated"
    title = "Log truncated"


class TreeHeadCorrupted(LogCorrupted):
    """A stored tree head (root, checkpoint, receipt signature) is wrong, missing, or does not cover the log."""

    code = "tree-head-corrupted"
    title = "Tree head corrupted"


class TreeNodeCorrupted(LogCorrupted):
    """A stored Merkle tree node is wrong, missing, or outside the tree."""

    code = "tree-node-corrupted"
    title = "Tree node corrupted"


class EntryIndexCorrupted(LogCorrupted):
    """The entry-id index (its runs or rows) does not map every entry id to its entry exactly once."""

    code = "entry-index-corrupted"
    title = "Entry-id index corrupted"


class SnapshotUnusable(StorageError):
    """A saved snapshot of derived state (``verifier.fold_snapshot``, ``transparency.snapshots``) cannot be used:
    unreadable, its digest wrong, another format, or made for another log, tree head, verifier or set of service
    signers. A snapshot is a cache: the state is rebuilt from the log instead."""

    code = "snapshot-unusable"
    title = "Snapshot unusable"


class ConfigurationError(TabellionError):
    code = "configuration-error"
    title = "Configuration error"


class KeyFileExists(ConfigurationError):
    """A key file is already there; key files are never overwritten unless asked."""

    code = "key-file-exists"
    title = "Key file exists"


# --- the log client -------------------------------------------------------------------------------


class LogRequestRefused(TabellionError):
    """The transparency log answered a request with a problem (or an unexpected status).

    ``answer_status`` is the HTTP status of that answer (the mapper relays it); ``problem_title`` and
    ``problem_type`` are the title and the type URI (e.g. ``urn:tabellion:error:signature-invalid``) the log gave,
    when it gave them.
    """

    code = "log-request-refused"
    title = "Log refused the request"

    def __init__(
        self, detail: str, *, status: int, problem_title: str | None = None, problem_type: str | None = None
    ) -> None:
        super().__init__(detail)
        self.answer_status = status
        self.problem_title = problem_title or self.title
        self.problem_type = problem_type

    def __str__(self) -> str:
        return f"{self.problem_title}: {self.detail}"


class LogUnreachable(TabellionError):
    """The transparency log could not be reached, or did not answer in time."""

    code = "log-unreachable"
    title = "Log unreachable"


class AnswerTooLarge(LogUnreachable):
    """A server the client reads (a log, witness, monitor peer, issuer, or for the agent SDK a gateway) answered more
    bytes than the client reads: an endless or oversized answer."""

    code = "answer-too-large"
    title = "Answer too large"


class AnswerTooSlow(LogUnreachable):
    """A server the client reads did not finish its answer (status, headers and the whole body) within the client's
    deadline for one answer: a slow drip of bytes, each within the per-read timeout, cannot hold a client forever."""

    code = "answer-too-slow"
    title = "Answer too slow"


class AnswerEncodingRefused(LogUnreachable):
    """A log, witness or peer answered in a content coding although the client asked for none (``identity``): a
    compressed answer is not inflated, so that a small bomb cannot grow past the client's bound."""

    code = "answer-encoding-refused"
    title = "Answer in a content coding"


class RegistrationPending(TabellionError):
    """The log accepted a statement but had not registered it when the caller stopped waiting."""

    code = "registration-pending"
    title = "Registration still running"


# --- statement payloads ---------------------------------------------------------------------------


class PayloadInvalid(BadInput):
    code = "payload-invalid"
    title = "Invalid statement payload"


class TransitionInvalid(PolicyRefused):
    """An identity statement that the state fold refuses (kept in the log as rejected, with this reason)."""

    code = "transition-invalid"
    title = "Invalid identity transition"


# --- did:web proof of control (verifier.did_web in the fold, transparency.did_web at registration) ---------


class DidWebEvidenceMissing(TransitionInvalid):
    """A did:web operator registration with no accepted ``did-web-evidence`` earlier in the log naming its DID
    and the key it registers."""

    code = "did-web-evidence-missing"
    title = "No did:web evidence for this DID and key"


class DidWebEvidenceStale(DidWebEvidenceMissing):
    """The did:web evidence for the DID and key was fetched too long before or after the registration's ``iat``
    (or the registration has no ``iat``)."""

    code = "did-web-evidence-stale"
    title = "did:web evidence too old"


class DidWebEvidenceUntrusted(TransitionInvalid):
    """A ``did-web-evidence`` statement signed by someone other than a configured evidence signer (the log)."""

    code = "did-web-evidence-untrusted"
    title = "did:web evidence from an untrusted signer"


class DidWebInvalid(BadInput):
    """A DID that the did:web method cannot map to an HTTPS URL."""

    code = "did-web-invalid"
    title = "Invalid did:web DID"


class DidWebRegistrationStale(PolicyRefused):
    """A did:web operator registration whose ``iat`` is absent or too far from the log's clock for evidence
    fetched now to vouch for it."""

    code = "did-web-registration-stale"
    title = "did:web registration too old or in the future"


class DidWebUnreachable(PolicyRefused):
    """The did:web DID document could not be fetched: no connection, a timeout, an answer other than 200, or a
    redirect to another host."""

    code = "did-web-unreachable"
    title = "did:web DID document unreachable"


class DidWebCertificateInvalid(PolicyRefused):
    """The did:web host's TLS certificate does not verify against the configured CA bundle (or the system's)."""

    code = "did-web-certificate-invalid"
    title = "did:web host certificate not trusted"


class DidWebDocumentInvalid(PolicyRefused):
    """The fetched did:web DID document is too large, not JSON, or not the document of this DID."""

    code = "did-web-document-invalid"
    title = "Invalid did:web DID document"


class DidWebKeyNotListed(PolicyRefused):
    """The did:web DID document does not list the registering key under ``assertionMethod``."""

    code = "did-web-key-not-listed"
    title = "Key not listed in the did:web DID document"


# --- the gateway: RFC 9421 request signatures, RFC 9530 digests, replay -----------------------------


class StructuredFieldMalformed(BadInput):
    """An HTTP field that must be an RFC 8941 structured field does not parse as one."""

    code = "structured-field-malformed"
    title = "Malformed structured field"


class RequestSignatureRefused(VerificationError):
    """An RFC 9421 signature on a request is absent, malformed or does not satisfy the gateway's policy."""

    code = "request-signature-refused"
    title = "Request signature refused"


class SignatureMissing(RequestSignatureRefused):
    code = "request-signature-missing"
    title = "Request signature missing"


class SignatureInputMalformed(RequestSignatureRefused):
    code = "signature-input-malformed"
    title = "Malformed Signature-Input or Signature field"


class SignatureLabelMissing(RequestSignatureRefused):
    code = "signature-label-missing"
    title = "Signature label missing"


class ComponentNotCovered(RequestSignatureRefused):
    code = "signature-component-not-covered"
    title = "Required component not covered by the signature"


class ComponentMissing(RequestSignatureRefused):
    code = "signature-component-missing"
    title = "Covered component absent from the request"


class RequestSignatureInvalid(RequestSignatureRefused):
    code = "request-signature-invalid"
    title = "Request signature invalid"


class SignatureTooOld(RequestSignatureRefused):
    code = "signature-too-old"
    title = "Signature created too long ago"


class SignatureCreatedInFuture(RequestSignatureRefused):
    code = "signature-created-in-future"
    title = "Signature created in the future"


class SignatureExpired(RequestSignatureRefused):
    code = "signature-expired"
    title = "Signature expired"


class SignatureAlgorithmMismatch(RequestSignatureRefused):
    code = "signature-algorithm-mismatch"
    title = "Signature algorithm mismatch"


class SignatureKeyUnknown(RequestSignatureRefused):
    code = "signature-key-unknown"
    title = "Signature key unknown"


class SignatureParameterMissing(RequestSignatureRefused):
    """The policy requires a signature parameter (``created``, ``expires``, ``nonce``) that is absent."""

    code = "signature-parameter-missing"
    title = "Required signature parameter missing"


class SignatureTagMismatch(RequestSignatureRefused):
    code = "signature-tag-mismatch"
    title = "Signature tag mismatch"


class ReplayDetected(RequestSignatureRefused):
    """A (keyid, nonce) pair was already used by a signature that has not yet expired."""

    code = "replay-detected"
    title = "Replayed request"


class ContentDigestMissing(BadInput):
    code = "content-digest-missing"
    title = "Content-Digest missing"


class ContentDigestMismatch(VerificationError):
    code = "content-digest-mismatch"
    title = "Content-Digest mismatch"


class ContentDigestAlgorithmUnsupported(BadInput):
    code = "content-digest-algorithm-unsupported"
    title = "Content-Digest algorithm unsupported"


# --- the gateway: malformed request signatures (400, in both the BadInput and the signature families) ----


class SignatureInputInvalid(SignatureInputMalformed, BadInput):
    """Signature-Input or Signature parse as structured fields but break RFC 9421 §4.1/§4.2: a member of the
    wrong type, a parameter of the wrong type or unknown, a duplicate or unsupported component identifier.

    Both a refused request signature and malformed input (400), so ``except BadInput`` catches it too.
    """

    code = "signature-input-invalid"
    title = "Invalid Signature-Input or Signature member"


class SignatureBaseInvalid(RequestSignatureRefused, BadInput):
    """A covered component's value cannot go into an RFC 9421 signature base (§2.5): non-ASCII or control
    characters in a field value, or a target URI that is not absolute."""

    code = "signature-base-invalid"
    title = "Covered component cannot be signed"


# --- webhooks (issuer.outbox, issuer.webhooks) -----------------------------------------------------


class WebhookSubscriptionInvalid(BadInput):
    """A webhook subscription with a URL that is not absolute http(s), or an unknown event type."""

    code = "webhook-subscription-invalid"
    title = "Invalid webhook subscription"


class OutboundTargetRefused(BadInput):
    """A URL the service would send a request to (a webhook, a did:web document) resolves to an address that is
    not public (loopback, link-local, private, ...) and that the operator did not allow (transparency.outbound)."""

    code = "outbound-target-refused"
    title = "Outbound target refused"


class WebhookEventInvalid(BadInput):
    """An event to enqueue with an unknown type, an id unfit for ``webhook-id``, or data that is not JSON."""

    code = "webhook-event-invalid"
    title = "Invalid webhook event"


class WebhookEventConflict(TabellionError):
    """An event id enqueued again with another type or other data."""

    code = "webhook-event-conflict"
    title = "Webhook event conflicts with an enqueued one"


class WebhookSubscriptionNotFound(NotFound):
    code = "webhook-subscription-not-found"
    title = "Webhook subscription not found"


class WebhookDeliveryNotFound(NotFound):
    code = "webhook-delivery-not-found"
    title = "Webhook delivery not found"


class WebhookRefused(VerificationError):
    """A receiver refuses a webhook delivery (Standard Webhooks headers with a v1a Ed25519 signature)."""

    code = "webhook-refused"
    title = "Webhook delivery refused"


class WebhookDeliveryMalformed(WebhookRefused):
    """A missing or malformed ``webhook-id``, ``webhook-timestamp`` or ``webhook-signature``, or a body not an event."""

    code = "webhook-delivery-malformed"
    title = "Malformed webhook delivery"


class WebhookSignatureInvalid(WebhookRefused):
    code = "webhook-signature-invalid"
    title = "Webhook signature invalid"


class WebhookTimestampStale(WebhookRefused):
    """``webhook-timestamp`` is older than the tolerance: a replay, or a delivery held too long."""

    code = "webhook-timestamp-stale"
    title = "Webhook timestamp too old"


class WebhookTimestampInFuture(WebhookRefused):
    code = "webhook-timestamp-in-future"
    title = "Webhook timestamp in the future"


# --- authority: what the log-derived identity state does not allow (verifier.authority) ------------


class AuthorityRefused(PolicyRefused):
    """The identity state does not authorise an agent's request; ``reason_code`` names exactly why.

    Reason codes are stable snake_case words (``expired``, ``delegation_revoked``, ``action_out_of_scope``…)
    that a gateway can log and match on; ``detail`` says which entry or value failed.
    """

    code = "authority-refused"
    title = "Authority refused"

    def __init__(self, detail: str, reason_code: str = "refused") -> None:
        super().__init__(detail)
        self.reason_code = reason_code


class PassportRefused(AuthorityRefused):
    """No valid agent passport: ``not_issued``, ``not_yet_valid``, ``expired``, ``revoked``, ``operator_revoked``,
    ``enrolment_revoked`` (a tpm passport whose agent enrolment was revoked), ``hardware_required`` (a software
    passport under a namespace policy that requires hardware)."""

    code = "passport-refused"
    title = "Agent passport not valid"


class DelegationRefused(AuthorityRefused):
    """No valid delegation chain: ``no_delegation``, ``delegation_expired``, ``delegation_revoked``."""

    code = "delegation-refused"
    title = "Delegation not valid"


class ScopeRefused(AuthorityRefused):
    """Outside the delegated scope: ``service_out_of_scope``, ``action_out_of_scope``, ``resource_out_of_scope``."""

    code = "scope-refused"
    title = "Outside the delegated scope"


class ClaimRefused(AuthorityRefused):
    """No approved, unrevoked claim covers the request: ``no_approved_claim``."""

    code = "claim-refused"
    title = "No approved claim"


# --- issuer endpoints --------------------------------------------------------------------------------


class StatementTypeMismatch(BadInput):
    """An issuer endpoint got a signed statement of another type than the one it is for."""

    code = "statement-type-mismatch"
    title = "Wrong statement type for this endpoint"


# --- task-bound tokens (verifier.tokens, issuer.tokens) ----------------------------------------------


class TokenInvalid(VerificationError):
    """A task-bound token (RFC 7519 JWT, EdDSA JWS) does not verify: RFC 6750 ``invalid_token``."""

    code = "token-invalid"
    title = "Token invalid"


class TokenMalformed(TokenInvalid):
    """Not a strict JWS compact JWT of the token format: parts, base64url, JSON, header or claims."""

    code = "token-malformed"
    title = "Malformed token"


class TokenAlgorithmRefused(TokenMalformed):
    """The header's ``alg`` is not EdDSA (``none``, ``HS256`` and everything else are refused)."""

    code = "token-algorithm-refused"
    title = "Token algorithm refused"


class TokenKeyUnknown(TokenInvalid):
    code = "token-key-unknown"
    title = "Token signed by an unknown key"


class TokenSignatureInvalid(TokenInvalid):
    code = "token-signature-invalid"
    title = "Token signature invalid"


class TokenExpired(TokenInvalid):
    code = "token-expired"
    title = "Token expired"


class TokenNotYetValid(TokenInvalid):
    code = "token-not-yet-valid"
    title = "Token not yet valid"


class TokenLifetimeTooLong(TokenInvalid):
    """``exp - iat`` is over the longest lifetime a task-bound token may have."""

    code = "token-lifetime-too-long"
    title = "Token lifetime too long"


class TokenIssuerMismatch(TokenInvalid):
    code = "token-issuer-mismatch"
    title = "Token issued by another registry"


class TokenAudienceMismatch(TokenInvalid):
    code = "token-audience-mismatch"
    title = "Token is for another audience"


class TokenScopeRefused(TokenInvalid):
    """The tool is not in the token's scope, or the resource is not covered: RFC 6750 ``insufficient_scope``."""

    code = "token-scope-refused"
    title = "Outside the token's scope"


class TokenChainMismatch(TokenInvalid):
    """``delegation_chain``, ``sub`` or ``act`` is not the log's delegation chain: granted by ``sub``, its agents
    the ``act`` nesting (RFC 8693 §4.1), the current actor ``act.sub`` last."""

    code = "token-chain-mismatch"
    title = "Token chain does not match the log"


class TokenRequestRefused(VerificationError):
    """The registry refuses to mint a token: the agent's signed request does not hold."""

    code = "token-request-refused"
    title = "Token request refused"


class TokenRequestSignatureInvalid(TokenRequestRefused):
    code = "token-request-signature-invalid"
    title = "Token request signature invalid"


class TokenRequestStale(TokenRequestRefused):
    """``created`` is too far from the registry's clock."""

    code = "token-request-stale"
    title = "Token request too old or in the future"


class TokenRequestReplayed(TokenRequestRefused):
    code = "token-request-replayed"
    title = "Token request nonce already used"


class TokenRequestsExhausted(Overloaded):
    """The agent made as many token requests as its replay window holds; others are unaffected."""

    code = "token-requests-exhausted"
    title = "Too many token requests from this agent"


# --- WebAuthn: passkey assertions of human approvals (verifier.webauthn, issuer.passkeys) -----------


class AssertionInvalid(VerificationError):
    """A WebAuthn assertion (a passkey's signature over a challenge) is refused (W3C WebAuthn Level 3 §7.2).

    Answered 403: an approval whose human signature does not hold is a refusal, and nothing is logged.
    """

    code = "webauthn-assertion-invalid"
    title = "WebAuthn assertion invalid"


class AssertionMalformed(AssertionInvalid):
    """Not base64url, clientDataJSON not a UTF-8 JSON object, authenticatorData too short or inconsistent."""

    code = "webauthn-assertion-malformed"
    title = "Malformed WebAuthn assertion"


class AssertionTypeMismatch(AssertionInvalid):
    code = "webauthn-type-mismatch"
    title = "WebAuthn client data is not webauthn.get"


class AssertionChallengeMismatch(AssertionInvalid):
    code = "webauthn-challenge-mismatch"
    title = "WebAuthn challenge mismatch"


class AssertionOriginMismatch(AssertionInvalid):
    code = "webauthn-origin-mismatch"
    title = "WebAuthn origin mismatch"


class AssertionRpIdMismatch(AssertionInvalid):
    code = "webauthn-rp-id-mismatch"
    title = "WebAuthn RP ID hash mismatch"


class AssertionUserNotPresent(AssertionInvalid):
    code = "webauthn-user-not-present"
    title = "WebAuthn user presence flag not set"


class AssertionUserNotVerified(AssertionInvalid):
    code = "webauthn-user-not-verified"
    title = "WebAuthn user verification flag not set"


class AssertionSignatureInvalid(AssertionInvalid):
    code = "webauthn-signature-invalid"
    title = "WebAuthn signature invalid"


class AssertionSignCountNotIncreasing(AssertionInvalid):
    """WebAuthn §7.2 step 22: the authenticator's signature counter did not grow past the one last logged for
    this credential, a sign that the authenticator may have been cloned. Refused (relying-party policy)."""

    code = "webauthn-sign-count-not-increasing"
    title = "WebAuthn signature counter did not increase"


class AssertionKeyUnsupported(AssertionInvalid):
    """The credential public key is not a COSE_Key of ES256 (P-256), EdDSA (Ed25519) or RS256 (RSA >= 2048)."""

    code = "webauthn-key-unsupported"
    title = "Unsupported WebAuthn credential key"


class AssertionCredentialUnknown(AssertionInvalid):
    code = "webauthn-credential-unknown"
    title = "WebAuthn credential not enrolled"


class AssertionCredentialRevoked(AssertionInvalid):
    code = "webauthn-credential-revoked"
    title = "WebAuthn credential revoked"


class AssertionApproverMismatch(AssertionInvalid):
    """The approval's ``decided_by`` is not the approver the credential was enrolled for."""

    code = "webauthn-approver-mismatch"
    title = "WebAuthn approver mismatch"


class PasskeyRegistrationInvalid(VerificationError):
    """A passkey registration (navigator.credentials.create response) that py_webauthn does not verify."""

    code = "webauthn-registration-invalid"
    title = "Passkey registration invalid"


# --- the gateway: configuration, secrets at rest, the log it follows, connections and upstreams ----


class GatewayConfigInvalid(ConfigurationError):
    """The gateway's TOML configuration cannot be used; the detail names the file, the key and why."""

    code = "gateway-config-invalid"
    title = "Invalid gateway configuration"


class SecretStoreError(ConfigurationError):
    """The gateway's encrypted provider secrets (or their master key) cannot be used."""

    code = "secret-store-error"
    title = "Secret store error"


class MasterKeyInvalid(SecretStoreError):
    """The master key is absent, unreadable, not 32 bytes of base64, or its file is readable by others."""

    code = "master-key-invalid"
    title = "Invalid master key"


class SecretUndecryptable(SecretStoreError):
    """A stored secret does not decrypt under the master key (a wrong key, or a tampered or moved value)."""

    code = "secret-undecryptable"
    title = "Secret cannot be decrypted"


class SecretMissing(SecretStoreError):
    code = "secret-missing"
    title = "Secret not stored"


class GatewayUnavailable(TabellionError):
    """The gateway cannot decide from the log now (answered 503 with Retry-After); nothing is forwarded."""

    code = "gateway-unavailable"
    title = "Gateway unavailable"


class LogUntrusted(GatewayUnavailable):
    """The log served a checkpoint inconsistent with one the gateway had verified: it is not trusted again."""

    code = "log-untrusted"
    title = "Log no longer trusted"


class LogNotFollowed(GatewayUnavailable):
    """The gateway has not verified any checkpoint of the log yet."""

    code = "log-not-ready"
    title = "Log not followed yet"


class LogStale(GatewayUnavailable):
    """The gateway has not verified the log's latest checkpoint for longer than it may decide without it."""

    code = "log-stale"
    title = "Log state too old"


class LogUnwitnessed(GatewayUnavailable):
    """The log has checkpoints newer than the last one its witness quorum cosigned, for longer than a follower
    that requires the quorum may decide without them (gateway or issuer)."""

    code = "log-unwitnessed"
    title = "Log checkpoints not witnessed"


class ConnectionUnknown(NotFound):
    code = "connection-unknown"
    title = "Unknown connection"


class AgentIdentityMismatch(RequestSignatureRefused):
    """The signature verifies, but an identity header names another subject, key, namespace or passport than
    the log holds for the signing agent."""

    code = "agent-identity-mismatch"
    title = "Agent identity headers do not match the log"


class ResourceInvalid(BadInput):
    """A proxied path that could name another resource upstream than the one decided on (dot segments,
    encoded separators, backslashes, non-ASCII)."""

    code = "resource-invalid"
    title = "Invalid resource path"


class PolicyDenied(PolicyRefused):
    """A connection's Rego policy did not evaluate to ``true`` for a request the log authorises. ``reason_code``
    is ``false``, ``undefined``, ``not_true`` (another value) or ``evaluation_failed``; the policy's id and
    version name the policy that decided."""

    code = "policy-denied"
    title = "Denied by the connection's policy"

    def __init__(self, detail: str, policy_id: str, policy_version: str, reason_code: str = "undefined") -> None:
        super().__init__(detail)
        self.policy_id = policy_id
        self.policy_version = policy_version
        self.reason_code = reason_code


class RateLimited(Overloaded):
    """An agent sent more requests through a connection than its token bucket allows; retry after
    ``retry_after`` seconds."""

    code = "rate-limited"
    title = "Rate limit exceeded"


class UpstreamUnreachable(TabellionError):
    code = "upstream-unreachable"
    title = "Upstream unreachable"


class UpstreamTimeout(UpstreamUnreachable):
    code = "upstream-timeout"
    title = "Upstream timed out"


# --- the gateway: MCP connections and action records ------------------------------------------------


class McpRequestInvalid(BadInput):
    """A request on an MCP connection is not one JSON-RPC 2.0 request or notification the gateway relays
    (not JSON, a batch, a response, a ``tools/call`` without a tool name…); ``rpc_code`` is the JSON-RPC error
    code it is answered with (-32700 parse error, -32600 invalid request, -32602 invalid params)."""

    code = "mcp-request-invalid"
    title = "Invalid MCP request"

    def __init__(self, detail: str, rpc_code: int = -32600) -> None:
        super().__init__(detail)
        self.rpc_code = rpc_code


class McpMethodNotAllowed(McpRequestInvalid):
    """An MCP connection takes JSON-RPC messages by POST only (no server-sent event stream by GET, no DELETE)."""

    code = "mcp-http-method-not-allowed"
    title = "HTTP method not allowed on an MCP connection"


class McpUpstreamInvalid(UpstreamUnreachable):
    """The MCP upstream's answer to ``tools/list`` cannot be filtered (not JSON-RPC, too large, a batch), so
    it is not passed on."""

    code = "mcp-upstream-invalid"
    title = "Invalid answer from the MCP upstream"


class GatewayKeyInvalid(ConfigurationError):
    """The gateway's own signing key (the issuer of its action records) cannot be used."""

    code = "gateway-key-invalid"
    title = "Invalid gateway key"


class ActionRecordFailed(GatewayUnavailable):
    """A decision could not be queued as an action record: nothing is forwarded that is not recorded."""

    code = "action-record-failed"
    title = "Action record not stored"
