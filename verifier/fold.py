"""The state fold: verified log entries, in log order, -> identity state (docs/architecture.md §4).

Pure, offline and deterministic: every follower that folds the same log computes the same state, and no clock
is read (a transition's time is its statement's CWT ``iat``; queries take an explicit ``now``). An entry whose
transition is invalid is kept as *rejected* with its reason, never silently skipped.

This module dispatches each Tabellion statement to its transition and keeps the key state of identities:
operator/namespace registration with a pre-rotation commitment, KERI-style key rotation (reveal the committed
key, commit to the next, k-of-n witness signatures) and revocation. Every Tabellion statement is signed by the
key current for its signer at that log position, and nothing acts after its revocation. Agent passports
(``verifier.passports``), delegations (``verifier.delegation``), claims and approver enrolments
(``verifier.claims``, with passkey assertions verified by ``verifier.webauthn``) are checked in
their own modules; ``verifier.authority`` answers what the state allows.

Who may sign what, and whose consent it needs, is the authority matrix of ``docs/authority.md``; this module
and the ones it calls enforce it, and every refusal carries one stable code (``verifier.refusals``). In short:
an identity as a whole (a DID) is revoked only by itself (its current key, or its pre-committed next key as
recovery) or by the operator it consented to (``agent-consent``, signed by the agent); every other party revokes
only its own grants. Statements of the log service itself (``registration-policy``, ``trust-anchor``) count only
when signed by one of the ``service_signers`` the fold is given, and so does ``agent-enrolment``, the service's
verdict on an agent's TPM evidence (``verifier.enrolments``).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from schemas.errors import BadInput, PolicyRefused, TabellionError, VerificationError
from schemas.identity_statements import canonical_json, parse_payload, statement_type_of
from schemas.leaf import entry_id, leaf_data
from schemas.statement import SignedStatement, parse_logged_statement
from verifier.claims import WEBAUTHN, check_decision, check_enrolment, check_human_decision, check_submission, decide
from verifier.cose import STATEMENT_SIGNATURES, verify_sign1
from verifier.delegation import chain_of, check_delegation
from verifier.did_key import resolve_did_key
from verifier.did_web import accept_evidence, check_did_web_registration
from verifier.enrolments import accept_trust_anchor, check_agent_enrolment, check_namespace_policy
from verifier.identity_state import (
    DID_KEY,
    AgentConsent,
    Approver,
    ClaimDecision,
    DecisionKind,
    IdentityState,
    KeyEvent,
    KeyState,
    LoggedStatement,
    Outcome,
    Revocation,
    did_key_multikey,
    key_digest,
    multikey_key,
)
from verifier.keys import PublicKey
from verifier.passports import check_issuance
from verifier.refusals import Refusal, Refused

__all__ = [
    "DID_KEY", "Fold", "FoldEntry", "IdentityState", "KeyEvent", "KeyState", "Outcome", "OutcomeSink", "Refusal",
    "Refused",
    "Revocation", "key_digest", "kid_multikey", "witness_message",
]

_ENTRY_ID: Final = re.compile(r"[0-9a-f]{64}", re.ASCII)
SERVICE_STATEMENTS: Final = frozenset({"registration-policy", "trust-anchor", "agent-enrolment"})
"""Statements only the log service itself may make: accepted from ``Fold.service_signers`` alone."""
Commit = Callable[[], None]
OutcomeSink = Callable[[Outcome], None]


@dataclass(frozen=True)
class FoldEntry:
    index: int
    statement: bytes
    parsed: SignedStatement | None = None
    """``parse_statement(statement)`` if the caller has it already (the log, which parsed the same bytes when it
    registered them); otherwise the fold parses ``statement``."""


class Fold:
    """Applies entries one at a time (a follower) or all at once (a rebuild); both give the same state."""

    def __init__(
        self, state: IdentityState | None = None, *, sparse: bool = False,
        service_signers: frozenset[str] = frozenset(), outcomes: OutcomeSink | None = None,
    ) -> None:
        """``sparse``: entries need only come in increasing log order, not every one of them (an audit
        bundle holds the entries about one identity); the state is then that of those entries alone.
        ``service_signers``: the DIDs of the log service, whose own statements (``registration-policy``,
        ``trust-anchor``, ``did-web-evidence``) the fold trusts; with none, every did:web registration is refused.
        ``outcomes``: where each entry's outcome goes (a store on disk: one per entry of a large log); by default
        they are kept in ``state.outcomes``."""
        self.state = state or IdentityState()
        self.sparse = sparse
        self.service_signers = service_signers
        self._record: OutcomeSink = outcomes if outcomes is not None else self.state.outcomes.append

    def apply_all(self, entries: Iterable[FoldEntry]) -> IdentityState:
        for entry in entries:
            self.apply(entry)
        return self.state

    def apply(self, entry: FoldEntry) -> Outcome:
        if entry.index != self.state.size and not (self.sparse and entry.index > self.state.size):
            raise Refused(Refusal.ENTRY_OUT_OF_ORDER,
                          f"entry {entry.index} arrived, the fold expected entry {self.state.size}")
        if entry.parsed is not None:
            statement, leaf = entry.parsed, leaf_data(entry.parsed.message)
        else:
            statement, leaf = parse_logged_statement(entry.statement)
        ident = entry_id(leaf)
        stype: str | None = None
        try:
            stype = _statement_type(statement)
            if stype is not None:
                # a statement the caller parsed was registered in this process: its signature is in the memo, and
                # is put there if not; one read from the log is looked up only (see ``SignatureMemo.verify``)
                self._transition(stype, statement, ident, entry.index, remember=entry.parsed is not None)()
            outcome = Outcome(entry.index, ident, stype, True)
        except (PolicyRefused, BadInput, VerificationError) as exc:
            outcome = Outcome(entry.index, ident, stype, False, f"{exc.title}: {exc.detail}", exc.code)
        self._record(outcome)
        self.state.size = entry.index + 1
        return outcome

    def check(self, statement: SignedStatement) -> None:
        """Would ``statement`` be accepted as the next entry? Raises the reason if not; changes nothing."""
        stype = _statement_type(statement)
        if stype is not None:
            self._transition(stype, statement, entry_id(leaf_data(statement.message)), self.state.size, remember=True)

    # --- transitions ------------------------------------------------------------------------------

    def _transition(self, stype: str, statement: SignedStatement, ident: str, index: int, *, remember: bool) -> Commit:
        """Check a transition against the state; return the change, to be applied only if it is accepted."""
        s = LoggedStatement(statement, parse_payload(stype, statement.payload), ident, index)
        if stype == "operator-registration":
            return self._register(s, remember)
        if stype == "key-rotation":
            return self._rotate(s, remember)
        recovery = stype == "revocation" and s.payload["target"] == s.issuer
        self._check_signer(statement, index, recovery=recovery, remember=remember)
        if stype in SERVICE_STATEMENTS:
            if s.issuer not in self.service_signers:
                raise Refused(Refusal.SERVICE_STATEMENT_UNTRUSTED,
                              f"a {stype} statement counts only from the log service, not from {s.issuer[:200]}")
            if stype == "trust-anchor":
                return accept_trust_anchor(self.state, s)
            if stype == "agent-enrolment":
                return self._enrol_agent(s)
            return _nothing
        if stype == "namespace-policy":
            return self._set_policy(s)
        if stype == "agent-consent":
            return self._consent(s)
        if stype == "agent-passport":
            return self._issue_passport(s)
        if stype == "delegation":
            return self._delegate(s)
        if stype == "claim-submission":
            return self._submit_claim(s)
        if stype in ("claim-approval", "claim-rejection", "claim-revocation"):
            return self._decide_claim(s, stype)
        if stype == "revocation":
            return self._revoke(s)
        if stype == "approver-enrolment":
            return self._enrol_approver(s)
        if stype == "did-web-evidence":
            return accept_evidence(self.state, s, self.service_signers)
        return _nothing

    def _check_signer(self, statement: SignedStatement, index: int, *, recovery: bool = False, remember: bool = True
                      ) -> None:
        """The signer is not revoked, nor is its current key, and the statement is signed by that key; with
        ``recovery`` (a controller revoking itself) also by the next key it committed to."""
        signer, state = statement.issuer, self.state
        revoked = state.revoked.get(signer)
        if revoked is not None:
            raise Refused(Refusal.SIGNER_REVOKED,
                          f"signer {signer[:200]} was revoked at entry {revoked.index} ({revoked.reason})")
        controller = state.controllers.get(signer)
        multikey = controller.key if controller is not None else did_key_multikey(signer)  # state.current_multikey
        revoked = state.revoked.get(multikey) if multikey is not None else None
        if recovery and controller is not None:
            committed = kid_multikey(statement)
            if key_digest(committed) == controller.next_key_digest:
                _verify(statement, multikey_key(committed), f"the next key {signer[:200]} committed to",
                        Refusal.SIGNER_KEY_MISMATCH, remember)
                return
        if revoked is not None:
            raise Refused(
                Refusal.SIGNER_KEY_REVOKED,
                f"the key current for signer {signer[:200]} was revoked at entry {revoked.index} ({revoked.reason})",
            )
        key = multikey_key(controller.key) if controller is not None else state.current_key(signer)
        _verify(statement, key, f"the key current for {signer[:200]} at entry {index}", Refusal.SIGNER_KEY_MISMATCH,
                remember)

    def _register(self, s: LoggedStatement, remember: bool) -> Commit:
        p = s.payload
        operator, namespace = p["operator"], p["namespace"]
        if s.issuer != operator:
            raise Refused(Refusal.REGISTRATION_ISSUER_MISMATCH,
                          f"iss {s.issuer[:200]} does not match the registered operator")
        if operator in self.state.controllers:
            raise Refused(Refusal.OPERATOR_ALREADY_REGISTERED,
                          f"{operator[:200]} is already registered; rotate its key instead")
        revoked = self.state.revocation_of(operator)  # a did:key's DID, or its key: the one key it can ever have
        if revoked is not None:
            raise Refused(Refusal.OPERATOR_REVOKED,
                          f"{operator[:200]} was revoked at entry {revoked.index} ({revoked.reason})")
        owner = self.state.namespaces.get(namespace)
        if owner is not None:
            raise Refused(Refusal.NAMESPACE_TAKEN, f"namespace {namespace!r} already belongs to {owner[:200]}")
        if p["witness_threshold"] > len(p["witnesses"]):
            raise Refused(Refusal.WITNESS_THRESHOLD_TOO_HIGH,
                          "witness_threshold is larger than the number of witnesses")
        self._check_operator_did(operator, p["key"], s)
        _verify(s.statement, multikey_key(p["key"]), "the key it registers", Refusal.REGISTRATION_NOT_SELF_SIGNED,
                remember)
        registered = KeyState(
            operator, namespace, p["key"], p["next_key_digest"], tuple(p["witnesses"]), p["witness_threshold"],
            (KeyEvent(0, p["key"], s.entry, s.index),),
        )

        def commit() -> None:
            self.state.controllers[operator] = registered
            self.state.namespaces[namespace] = operator

        return commit

    def _check_operator_did(self, operator: str, key: str, s: LoggedStatement) -> None:
        """Whose DID this is: a did:key registers its own key; a did:web needs evidence that its domain lists
        the key (``verifier.did_web``); no other DID method can prove control here."""
        if operator.startswith(DID_KEY):
            if did_key_multikey(operator) != key:
                raise Refused(Refusal.REGISTRATION_KEY_NOT_DID_KEY,
                              f"the did:key operator {operator[:200]} can only register its own key, not {key[:60]}")
            return
        if operator.startswith("did:web:"):
            check_did_web_registration(self.state, s)
            return
        raise Refused(Refusal.REGISTRATION_DID_METHOD_UNSUPPORTED,
                      f"{operator[:200]}: only did:key and did:web operators can prove control of their DID here")

    def _rotate(self, s: LoggedStatement, remember: bool) -> Commit:
        p = s.payload
        controller = p["controller"]
        current = self.state.controllers.get(controller)
        if current is None:
            raise Refused(Refusal.CONTROLLER_UNKNOWN, f"{controller[:200]} is not registered on this log")
        if s.issuer != controller:
            raise Refused(Refusal.ROTATION_ISSUER_MISMATCH,
                          f"iss {s.issuer[:200]} does not match the rotating controller")
        if controller in self.state.revoked:
            raise Refused(Refusal.CONTROLLER_REVOKED,
                          f"{controller[:200]} was revoked at entry {self.state.revoked[controller].index}")
        if p["sequence"] != current.sequence + 1:
            raise Refused(Refusal.ROTATION_SEQUENCE_INVALID,
                          f"rotation sequence {p['sequence']} does not follow {current.sequence}")
        if p["previous"] != current.last_event:
            raise Refused(Refusal.ROTATION_PREVIOUS_MISMATCH,
                          f"rotation names previous event {p['previous']}, not {current.last_event}")
        if key_digest(p["key"]) != current.next_key_digest:
            raise Refused(Refusal.ROTATION_KEY_NOT_COMMITTED,
                          "the rotation reveals a key that was not committed to by the previous event")
        if p["key"] in self.state.revoked:
            raise Refused(Refusal.ROTATION_KEY_REVOKED, "the revealed key was revoked")
        _verify(s.statement, multikey_key(p["key"]), "the revealed (pre-committed) key",
                Refusal.ROTATION_NOT_SIGNED_BY_REVEALED_KEY, remember)
        _check_witnesses(p, current)
        rotated = replace(
            current, key=p["key"], next_key_digest=p["next_key_digest"],
            history=(*current.history, KeyEvent(p["sequence"], p["key"], s.entry, s.index)),
        )
        return lambda: self.state.controllers.__setitem__(controller, rotated)

    def _consent(self, s: LoggedStatement) -> Commit:
        agent, operator = s.payload["agent"], s.payload["operator"]
        if s.issuer != agent:
            raise Refused(Refusal.CONSENT_ISSUER_MISMATCH,
                          f"iss {s.issuer[:200]} is not the consenting agent {agent[:200]}: only the agent consents")
        if did_key_multikey(agent) is None:
            raise Refused(Refusal.CONSENT_AGENT_NOT_DID_KEY, f"the agent {agent[:200]} is not a bare did:key")
        if operator not in self.state.controllers:
            raise Refused(Refusal.CONSENT_OPERATOR_UNKNOWN,
                          f"{operator[:200]} is not an operator registered on this log")
        revoked = self.state.revocation_of(operator)
        if revoked is not None:
            raise Refused(Refusal.CONSENT_OPERATOR_REVOKED,
                          f"the operator {operator[:200]} was revoked at entry {revoked.index} ({revoked.reason})")
        last = self.state.consents.get(agent)
        if s.issued_at is None or (last is not None and s.issued_at <= last.issued_at):
            raise Refused(
                Refusal.CONSENT_NOT_NEWER,
                f"a consent needs an iat later than the agent's last consent's ({last.issued_at if last else '-'}); "
                "an older consent, or the same one signed again, cannot be replayed",
            )
        consent = AgentConsent(s.entry, s.index, agent, operator, s.issued_at)

        def commit() -> None:
            self.state.consents[agent] = consent
            self.state.consent_entries[consent.entry] = consent

        return commit

    def _issue_passport(self, s: LoggedStatement) -> Commit:
        passport = check_issuance(self.state, s)

        def commit() -> None:
            self.state.passports[passport.agent] = passport
            self.state.passport_entries[passport.entry] = passport
            self.state.status_indices[(passport.operator, passport.status_index)] = passport.entry

        return commit

    def _delegate(self, s: LoggedStatement) -> Commit:
        delegation = check_delegation(self.state, s)

        content = s.signed_content

        def commit() -> None:
            self.state.delegations[delegation.entry] = delegation
            self.state.delegation_contents.add(content)
            self.state.delegations_to.setdefault(delegation.agent, []).append(delegation.entry)

        return commit

    def _submit_claim(self, s: LoggedStatement) -> Commit:
        claim = check_submission(self.state, s)

        def commit() -> None:
            self.state.claims[claim.entry] = claim
            self.state.claim_ids[(claim.namespace, claim.claim_id)] = claim.entry
            self.state.claims_of.setdefault(claim.agent, []).append(claim.entry)

        return commit

    def _decide_claim(self, s: LoggedStatement, stype: str) -> Commit:
        kind = _DECISIONS[stype]
        claim = check_decision(self.state, s, kind)

        def commit() -> None:
            self.state.claims[claim.entry] = claim
            decision = claim.decisions[-1]
            if decision.enrolment is not None:
                self.state.sign_counts[decision.enrolment] = decision.sign_count
            if kind == "revocation":
                self.state.revoked[claim.entry] = Revocation(s.index, s.entry, s.payload["reason"], s.issuer)

        return commit

    def _enrol_approver(self, s: LoggedStatement) -> Commit:
        approver, sign_count = check_enrolment(self.state, s)

        def commit() -> None:
            self.state.approvers[approver.entry] = approver
            self.state.approver_credentials[(approver.namespace, approver.credential_id)] = approver.entry
            self.state.sign_counts[approver.entry] = sign_count

        return commit

    def _enrol_agent(self, s: LoggedStatement) -> Commit:
        enrolment, sign_count = check_agent_enrolment(self.state, s)

        def commit() -> None:
            self.state.enrolments[enrolment.agent] = enrolment
            self.state.enrolment_entries[enrolment.entry] = enrolment
            self.state.sign_counts[enrolment.approver] = sign_count

        return commit

    def _set_policy(self, s: LoggedStatement) -> Commit:
        policy = check_namespace_policy(self.state, s)
        return lambda: self.state.namespace_policies.__setitem__(policy.namespace, policy)

    def _revoke(self, s: LoggedStatement) -> Commit:
        target, signer, reason = s.payload["target"], s.issuer, s.payload["reason"]
        state = self.state
        if target in state.revoked:
            raise Refused(Refusal.ALREADY_REVOKED,
                          f"{target[:200]} is already revoked (entry {state.revoked[target].index})")
        human = self._human_revoker(s)
        revocation = Revocation(s.index, s.entry, reason, signer, "" if human is None else human[0].approver)
        change: Commit = _nothing
        if target.startswith("did:"):
            self._check_identity_revoker(target, signer)
        elif _ENTRY_ID.fullmatch(target):
            change = self._revoke_entry(target, s)
        elif not (
            any(target == e.key for e in state.controllers.get(signer, _NO_KEYS).history)
            or (signer not in state.controllers and target == did_key_multikey(signer))
        ):
            raise Refused(Refusal.KEY_REVOCATION_NOT_ENTITLED,
                          "a key can only be revoked by the controller it belonged to, or by its own did:key")

        def commit() -> None:
            change()
            state.revoked[target] = revocation
            if human is not None:
                state.sign_counts[human[0].entry] = human[1]

        return commit

    def _human_revoker(self, s: LoggedStatement) -> tuple[Approver, int] | None:
        """A revocation a human decided in the signer's name (``decided_by``) carries that human's passkey
        assertion over it, by a passkey enrolled in the signer's namespace (as a claim decision does): the
        approver and the assertion's counter. ``None`` when the signer decided it itself."""
        p, signer = s.payload, s.issuer
        if WEBAUTHN not in p:
            if p.get("decided_by", signer) != signer:
                raise Refused(
                    Refusal.HUMAN_ASSERTION_MISSING,
                    f"decided_by {p['decided_by'][:200]} is not the signer {signer[:200]}: a revocation in another's "
                    "name carries that human's passkey assertion (webauthn)",
                )
            return None
        controller = self.state.controllers.get(signer)
        if controller is None:
            raise Refused(Refusal.NOT_NAMESPACE_OWNER,
                          f"{signer[:200]} owns no namespace: no human approver decides in its name")
        revoked = self.state.revocation_of(p["decided_by"])
        if revoked is not None:
            raise Refused(Refusal.DECIDER_REVOKED,
                          f"decided_by {p['decided_by'][:200]} was revoked at entry {revoked.index} ({revoked.reason})")
        return check_human_decision(self.state, controller.namespace, p, statement_type="revocation", signer=signer)

    def _check_identity_revoker(self, target: str, signer: str) -> None:
        """A DID is revoked by itself, or by the operator it consented to; by nobody else."""
        if target == signer or self.state.bound_operator(target) == signer:
            return
        raise Refused(
            Refusal.DID_REVOCATION_NOT_ENTITLED,
            f"{signer[:200]} cannot revoke the identity {target[:200]}: a DID is revoked only by itself or by the "
            "operator it consented to; revoke your own grants (passports, delegations, claims, enrolments) instead",
        )

    def _revoke_entry(self, target: str, s: LoggedStatement) -> Commit:
        state, signer = self.state, s.issuer
        passport = state.passport_entries.get(target)
        if passport is not None:
            if signer != passport.operator:
                raise Refused(Refusal.PASSPORT_REVOCATION_NOT_ENTITLED,
                              f"passport {target} can be revoked only by its operator {passport.operator[:200]}")
            return _nothing
        delegation = state.delegations.get(target)
        if delegation is not None:
            grantors = [d.principal for d in chain_of(state, target).delegations]
            if signer not in grantors:
                raise Refused(
                    Refusal.DELEGATION_REVOCATION_NOT_ENTITLED,
                    f"delegation {target} can only be revoked by its principal or a principal above it in its chain",
                )
            revoked = replace(delegation, revoked=s.entry)
            return lambda: state.delegations.__setitem__(target, revoked)
        if target in state.claims:
            decision = ClaimDecision("revocation", s.entry, s.index, signer, signer, s.issued_at, s.payload["reason"])
            claim = decide(state, target, decision)
            return lambda: state.claims.__setitem__(target, claim)
        approver = state.approvers.get(target)
        if approver is not None:
            if signer not in (approver.enrolled_by, approver.approver):
                raise Refused(Refusal.ENROLMENT_REVOCATION_NOT_ENTITLED,
                              f"approver enrolment {target} can be revoked only by its namespace's owner or the "
                              "approver")
            return _nothing
        enrolment = state.enrolment_entries.get(target)
        if enrolment is not None:
            if signer not in (enrolment.operator, enrolment.agent):
                raise Refused(Refusal.AGENT_ENROLMENT_REVOCATION_NOT_ENTITLED,
                              f"agent enrolment {target} can be revoked only by its operator or its agent")
            return _nothing
        if target in state.trust_anchors:
            if signer not in self.service_signers:
                raise Refused(Refusal.TRUST_ANCHOR_REVOCATION_NOT_ENTITLED,
                              f"trust anchor {target} can be revoked (unpinned) only by the log service")
            return _nothing
        consent = state.consent_entries.get(target)
        if consent is not None:
            if signer != consent.agent:
                raise Refused(Refusal.CONSENT_REVOCATION_NOT_ENTITLED,
                              f"consent {target} can be withdrawn only by the agent that gave it")
            return _nothing
        raise Refused(Refusal.REVOCATION_TARGET_UNKNOWN,
                      f"entry {target} is not a passport, delegation, claim, approver enrolment, agent enrolment, "
                      "agent consent or TPM trust anchor on this log")


_NO_KEYS = KeyState("", "", "", "", (), 0, ())
_DECISIONS: Final[dict[str, DecisionKind]] = {
    "claim-approval": "approval", "claim-rejection": "rejection", "claim-revocation": "revocation",
}


def _nothing() -> None:
    return None


def _statement_type(statement: SignedStatement) -> str | None:
    """The Tabellion statement type, or ``None`` for a general SCITT statement (incl. hash envelopes)."""
    if statement.payload_hash_alg is not None:
        return None
    return statement_type_of(statement.content_type)


def _verify(statement: SignedStatement, key: PublicKey, what: str, refusal: Refusal, remember: bool) -> None:
    try:
        verify_sign1(statement.message, statement.alg, key, memo=STATEMENT_SIGNATURES, remember=remember)
    except TabellionError as exc:
        raise Refused(refusal, f"the statement is not signed by {what}: {exc.detail}") from exc


def kid_multikey(statement: SignedStatement) -> str:
    """The multikey a ``did:key:z…#z…`` (or bare did:key) kid names; empty for any other kid."""
    return (statement.kid_text or "").partition("#")[0].removeprefix(DID_KEY)


def witness_message(payload: dict[str, Any]) -> bytes:
    """What witnesses sign: the rotation payload without ``witness_signatures``, RFC 8785 canonical."""
    return canonical_json({k: v for k, v in payload.items() if k != "witness_signatures"})


def _check_witnesses(p: dict[str, Any], current: KeyState) -> None:
    message = witness_message(p)
    valid = set()
    for item in p["witness_signatures"]:
        witness = item["witness"]
        if witness not in current.witnesses:
            raise Refused(Refusal.WITNESS_UNKNOWN, f"{witness[:200]} is not a witness of this controller")
        key = resolve_did_key(witness)
        signature = base64.urlsafe_b64decode(item["signature"] + "==")
        if not isinstance(key, Ed25519PublicKey):
            raise Refused(Refusal.WITNESS_KEY_UNSUPPORTED, f"witness {witness[:200]} is not an Ed25519 did:key")
        try:
            key.verify(signature, message)
        except InvalidSignature as exc:
            raise Refused(Refusal.WITNESS_SIGNATURE_INVALID,
                          f"the signature of witness {witness[:200]} does not verify") from exc
        valid.add(witness)
    if len(valid) < current.witness_threshold:
        raise Refused(
            Refusal.WITNESS_QUORUM_NOT_MET,
            f"{len(valid)} witness signatures; the controller requires {current.witness_threshold} of "
            f"{len(current.witnesses)}"
        )
