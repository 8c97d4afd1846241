"""The one error hierarchy of Tabellion.

Every check raises one of these; nothing returns a bool. Each class has a stable ``code`` (it becomes the
problem-details ``type``), a short ``title`` and the HTTP ``status`` the one HTTP handler maps it to.
The instance carries a ``detail`` naming exactly what was wrong.
"""

from __future__ import annotations

from typing import ClassVar

PROBLEM_TYPE_BASE = "urn:tabellion:error:"


class TabellionError(Exception):
    """Base of every error Tabellion raises on purpose."""

    code: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal error"
    status: ClassVar[int] = 500

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
    status = 400


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
    status = 415


class PayloadTooLarge(TabellionError):
    code = "payload-too-large"
    title = "Payload too large"
    status = 413


# --- verification failures ------------------------------------------------------------------------


class VerificationError(TabellionError):
    """A signature, proof or consistency check failed."""

    code = "verification-failed"
    title = "Verification failed"
    status = 400


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


class KeyUnknown(VerificationError):
    code = "key-unknown"
    title = "Key unknown"


# --- policy (403) ---------------------------------------------------------------------------------


class PolicyRefused(TabellionError):
    code = "policy-refused"
    title = "Refused by registration policy"
    status = 403


class SignerUnresolvable(PolicyRefused):
    code = "signer-unresolvable"
    title = "Signer cannot be resolved"


# --- lookups and load -----------------------------------------------------------------------------


class NotFound(TabellionError):
    code = "not-found"
    title = "Not found"
    status = 404


class EntryNotFound(NotFound):
    code = "entry-not-found"
    title = "Entry not found"


class Overloaded(TabellionError):
    """Too many requests: the client should retry after ``retry_after`` seconds."""

    code = "too-many-requests"
    title = "Too many requests"
    status = 429

    def __init__(self, detail: str, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


# --- storage --------------------------------------------------------------------------------------


class StorageError(TabellionError):
    code = "storage-error"
    title = "Storage error"
    status = 500


class LogCorrupted(StorageError):
    code = "log-corrupted"
    title = "Log corrupted"


class ConfigurationError(TabellionError):
    code = "configuration-error"
    title = "Configuration error"
    status = 500


# --- the log client -------------------------------------------------------------------------------


class LogRequestRefused(TabellionError):
    """The transparency log answered a request with a problem (or an unexpected status).

    ``status`` is the HTTP status of that answer; ``problem_title`` and ``problem_type`` are the title and
    the type URI (e.g. ``urn:tabellion:error:signature-invalid``) the log gave, when it gave them.
    """

    code = "log-request-refused"
    title = "Log refused the request"
    status = 502

    def __init__(
        self, detail: str, *, status: int, problem_title: str | None = None, problem_type: str | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status  # type: ignore[misc]  # the answer's status, not the class default
        self.problem_title = problem_title or self.title
        self.problem_type = problem_type

    def __str__(self) -> str:
        return f"{self.problem_title}: {self.detail}"


class LogUnreachable(TabellionError):
    """The transparency log could not be reached, or did not answer in time."""

    code = "log-unreachable"
    title = "Log unreachable"
    status = 502


class RegistrationPending(TabellionError):
    """The log accepted a statement but had not registered it when the caller stopped waiting."""

    code = "registration-pending"
    title = "Registration still running"
    status = 503


# --- statement payloads ---------------------------------------------------------------------------


class PayloadInvalid(BadInput):
    code = "payload-invalid"
    title = "Invalid statement payload"
