"""The identity state that the fold (``verifier.fold``) derives from the log: plain values, no transitions.

Everything here is rebuilt from the log alone; two folds of the same entries compare equal. Entry ids are the
hex ``leaf_data`` of ``schemas.leaf``; times are whole seconds since the Unix epoch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from schemas.base64url import b64url
from schemas.statement import SignedStatement
from verifier.did_key import resolve_did_key
from verifier.keys import PublicKey
from verifier.refusals import Refusal, Refused

if TYPE_CHECKING:
    from verifier.enrolments import AgentEnrolment, NamespacePolicy, TrustAnchor

DID_KEY = "did:key:"


def key_digest(multikey: str) -> str:
    """The pre-rotation commitment to a key: base64url(SHA-256(UTF-8 multikey)), unpadded."""
    return b64url(hashlib.sha256(multikey.encode()).digest())


def multikey_key(multikey: str) -> PublicKey:
    """The public key a multibase multikey (``z6Mk…``, ``zDn…``) names."""
    return resolve_did_key(DID_KEY + multikey)


def did_key_multikey(did: str) -> str | None:
    """The multikey of a bare did:key (``did:key:z…`` -> ``z…``), ``None`` for any other DID."""
    return did[len(DID_KEY) :] if did.startswith(DID_KEY) and "#" not in did else None


@dataclass(frozen=True)
class LoggedStatement:
    """A Tabellion statement at its log position, with its parsed payload: what every transition checks."""

    statement: SignedStatement
    payload: dict[str, Any]
    entry: str
    index: int

    @property
    def issuer(self) -> str:
        return self.statement.issuer

    @property
    def issued_at(self) -> int | None:
        return self.statement.issued_at

    @property
    def signed_content(self) -> bytes:
        """SHA-256 of what the signature covers (protected header and payload), not of the signature: two entries
        with the same signed content are one statement signed twice (ECDSA signatures are malleable)."""
        message = self.statement.message
        return hashlib.sha256(len(message.protected_bytes).to_bytes(4, "big") + message.protected_bytes
                              + self.statement.payload).digest()


@dataclass(frozen=True)
class KeyEvent:
    sequence: int
    key: str
    entry: str
    index: int


@dataclass(frozen=True)
class KeyState:
    """The current key of a registered controller and what it has committed to."""

    controller: str
    namespace: str
    key: str
    next_key_digest: str
    witnesses: tuple[str, ...]
    witness_threshold: int
    history: tuple[KeyEvent, ...]

    @property
    def sequence(self) -> int:
        return self.history[-1].sequence

    @property
    def last_event(self) -> str:
        return self.history[-1].entry


@dataclass(frozen=True)
class Revocation:
    index: int
    entry: str
    reason: str
    by: str  # the signer
    decided_by: str = ""  # the human who decided it in the signer's name, with their passkey assertion ("": the signer)


@dataclass(frozen=True)
class Outcome:
    """What the fold made of one log entry."""

    index: int
    entry: str
    statement_type: str | None  # None: a general SCITT statement, not interpreted
    accepted: bool
    reason: str = ""
    code: str = ""  # a refusal's stable code (verifier.refusals, or the code of the check that failed)


@dataclass(frozen=True)
class Scope:
    """What a delegation or claim covers: services and actions by name, resources by name or ``…*`` prefix."""

    services: tuple[str, ...]
    actions: tuple[str, ...]
    resources: tuple[str, ...]

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Scope:
        return cls(tuple(value["services"]), tuple(value["actions"]), tuple(value["resources"]))


@dataclass(frozen=True)
class AgentConsent:
    """An agent's signed acceptance of an operator as its controller (``agent-consent``)."""

    entry: str
    index: int
    agent: str
    operator: str
    issued_at: int  # its CWT iat: a later consent must be newer (an old one, replayed, is refused)


@dataclass(frozen=True)
class Passport:
    """An accepted agent passport (``verifier.passports``). ``payload`` is its statement's payload as logged
    (``{"credential": <the VC>}``, RFC 8785 canonical JSON): one byte string rather than the VC's some forty
    parsed values, which only ``credential`` reads again (a state of 10^5 passports holds, and a snapshot
    decodes, that many fewer objects)."""

    entry: str
    index: int
    operator: str
    agent: str
    agent_key: str
    signing_key: str  # the operator's multikey that signed the proof (its current key at issuance)
    tier: str
    valid_from: int
    valid_until: int
    status_index: int
    status_list: str
    machine_fingerprint: str
    jurisdiction: str
    policy_bundle: str
    payload: bytes

    @property
    def credential(self) -> dict[str, Any]:
        """The VC as logged (a new value at each call)."""
        credential: dict[str, Any] = json.loads(self.payload)["credential"]
        return credential


@dataclass(frozen=True)
class Delegation:
    """An accepted delegation; ``depth`` 0 is a root (granted by an operator), ``parent`` links towards it."""

    entry: str
    index: int
    principal: str
    agent: str
    parent: str | None
    scope: Scope
    not_after: int
    max_depth: int
    depth: int
    root_principal: str
    revoked: str | None = None  # the entry id of the revocation that names this delegation


ClaimStatus = Literal["submitted", "approved", "rejected", "revoked"]
DecisionKind = Literal["approval", "rejection", "revocation"]


@dataclass(frozen=True)
class ClaimDecision:
    """An accepted approval, rejection or revocation of a claim; ``webauthn`` is kept as logged."""

    kind: DecisionKind
    entry: str
    index: int
    signer: str
    decided_by: str
    issued_at: int | None
    text: str | None  # the approval's note, or the rejection's / revocation's reason
    webauthn: dict[str, Any] | None = None
    enrolment: str | None = None  # a human approval: the entry id of the approver-enrolment its passkey verified by
    sign_count: int = 0  # a human approval: the authenticator's signature counter in its assertion


@dataclass(frozen=True)
class Claim:
    """An agent's request for access to a service in a namespace, and what the namespace owner decided."""

    entry: str
    index: int
    claim_id: str
    agent: str
    namespace: str
    service: str
    scope: Scope
    submitted_at: int | None
    status: ClaimStatus = "submitted"
    decisions: tuple[ClaimDecision, ...] = ()

    def decision(self, kind: DecisionKind) -> ClaimDecision | None:
        return next((d for d in self.decisions if d.kind == kind), None)


@dataclass(frozen=True)
class Approver:
    """A human approver's passkey, enrolled for a namespace by its owner (``approver-enrolment``), as logged."""

    entry: str
    index: int
    namespace: str
    approver: str  # the human's DID: what an approval by this passkey names in ``decided_by``
    credential_id: str  # base64url, unpadded
    public_key: str  # base64url of the CBOR COSE_Key
    rp_id: str
    origin: str
    enrolled_by: str


@dataclass(frozen=True)
class DidWebEvidence:
    """An accepted ``did-web-evidence`` entry (``verifier.did_web``): at ``fetched_at`` the DID document at
    ``url`` (SHA-256 ``document_sha256``) listed ``key`` as ``method`` under ``relationship``; ``signer`` logged it."""

    entry: str
    index: int
    did: str
    key: str
    url: str
    document_sha256: str
    fetched_at: int
    method: str
    relationship: str
    signer: str


@dataclass
class IdentityState:
    controllers: dict[str, KeyState] = field(default_factory=dict)
    namespaces: dict[str, str] = field(default_factory=dict)
    revoked: dict[str, Revocation] = field(default_factory=dict)  # DIDs, multikeys and entry ids
    outcomes: list[Outcome] = field(default_factory=list)
    size: int = 0
    passports: dict[str, Passport] = field(default_factory=dict)  # agent DID -> its newest passport
    passport_entries: dict[str, Passport] = field(default_factory=dict)  # every accepted passport, by entry
    status_indices: dict[tuple[str, int], str] = field(default_factory=dict)  # (operator, index) -> entry
    delegations: dict[str, Delegation] = field(default_factory=dict)  # by entry id
    claims: dict[str, Claim] = field(default_factory=dict)  # by entry id of the submission
    claim_ids: dict[tuple[str, str], str] = field(default_factory=dict)  # (namespace, claim_id) -> entry
    approvers: dict[str, Approver] = field(default_factory=dict)  # by entry id of the enrolment
    approver_credentials: dict[tuple[str, str], str] = field(default_factory=dict)  # (namespace, credential) -> entry
    sign_counts: dict[str, int] = field(default_factory=dict)  # enrolment entry -> counter of its last approval
    delegations_to: dict[str, list[str]] = field(default_factory=dict)  # agent DID -> its delegations, log order
    claims_of: dict[str, list[str]] = field(default_factory=dict)  # agent DID -> its claim submissions, log order
    consents: dict[str, AgentConsent] = field(default_factory=dict)  # agent DID -> its newest consent
    consent_entries: dict[str, AgentConsent] = field(default_factory=dict)  # every accepted consent, by entry
    delegation_contents: set[bytes] = field(default_factory=set)  # what each accepted delegation signed (replays)
    did_web_evidence: dict[tuple[str, str], DidWebEvidence] = field(default_factory=dict)  # (DID, key) -> newest
    trust_anchors: dict[str, TrustAnchor] = field(default_factory=dict)  # pinned TPM endorsement roots, by entry
    enrolments: dict[str, AgentEnrolment] = field(default_factory=dict)  # agent DID -> its newest agent-enrolment
    enrolment_entries: dict[str, AgentEnrolment] = field(default_factory=dict)  # every accepted one, by entry
    namespace_policies: dict[str, NamespacePolicy] = field(default_factory=dict)  # namespace -> its newest policy

    def current_key(self, did: str) -> PublicKey:
        """The key that must sign for ``did`` now: its registered current key, else its did:key."""
        state = self.controllers.get(did)
        if state is not None:
            return multikey_key(state.key)
        if did.startswith(DID_KEY):
            return resolve_did_key(did)
        raise Refused(Refusal.SIGNER_UNKNOWN, f"{did[:200]} is neither registered on this log nor a did:key")

    def current_multikey(self, did: str) -> str | None:
        """The multikey that signs for ``did`` now (registered key, else the did:key's own), if known."""
        state = self.controllers.get(did)
        return state.key if state is not None else did_key_multikey(did)

    def bound_operator(self, agent: str) -> str | None:
        """The operator ``agent`` consented to (its newest ``agent-consent``), unless it withdrew that consent."""
        consent = self.consents.get(agent)
        if consent is None or consent.entry in self.revoked:
            return None
        return consent.operator

    def revocation_of(self, did: str) -> Revocation | None:
        """Why ``did`` can no longer act: the DID was revoked or, for a did:key, its only key was."""
        revocation = self.revoked.get(did)
        if revocation is None and did not in self.controllers:
            multikey = did_key_multikey(did)
            revocation = self.revoked.get(multikey) if multikey is not None else None
        return revocation
