"""The control plane: writes are signed statements submitted to the log, reads come from the folded log.

The issuer never signs on anyone's behalf: operators, agents and humans sign their statements locally
(``tabellion`` CLI or their own tools) and the issuer checks that each endpoint gets the statement type
it is for, submits it, follows the log until the entry is folded, and answers with the entry, its
receipt and the checkpoint the answer was decided on. Every read is decided on the latest checkpoint the
follower verified.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any

from issuer.dids import did_web
from issuer.log_state import LogState
from issuer.passkeys import verify_decision
from issuer.registry_keys import RegistryKeys
from issuer.tokens import MintedToken, NonceCache, mint_token
from schemas.base64url import b64url
from schemas.errors import (
    ConfigurationError,
    InvalidParameter,
    RegistrationPending,
    StatementTypeMismatch,
)
from schemas.identity_statements import parse_payload, statement_type_of
from schemas.receipt import parse_receipt
from schemas.statement import SignedStatement, parse_statement
from transparency.client.http import Submitted
from verifier.authority import authorise
from verifier.fold import IdentityState
from verifier.identity_state import Claim
from verifier.keys import KeySet
from verifier.passports import passport_status
from verifier.refusals import Refused

Submit = Callable[[bytes], Awaitable[Submitted]]
Clock = Callable[[], float]
FOLLOW_ATTEMPTS = 50
FOLLOW_PAUSE_S = 0.02


@dataclass(frozen=True)
class Logged:
    """A statement the log registered and the fold accepted."""

    entry: str
    index: int
    statement_type: str
    receipt: bytes
    checkpoint: str

    def json(self) -> dict[str, Any]:
        return {"entry": self.entry, "index": self.index, "statement_type": self.statement_type,
                "receipt": b64url(self.receipt), "checkpoint": self.checkpoint, "location": f"/entries/{self.entry}"}


class Issuer:
    def __init__(
        self, log: LogState, submit: Submit, receipt_keys: KeySet, current_kid: bytes, clock: Clock = time.time,
        *, registry_keys: RegistryKeys | None = None, public_url: str,
    ) -> None:
        self.log = log
        self._submit = submit
        self.receipt_keys = receipt_keys
        self.current_kid = current_kid
        self.clock = clock
        self.public_url = public_url.rstrip("/")  # configuration, never a request's Host: did.json, lists, tokens
        self._registry_keys = registry_keys
        self.nonces = NonceCache()  # token-request nonces, in memory (see issuer.tokens)

    @property
    def state(self) -> IdentityState:
        return self.log.state

    def now(self) -> int:
        return int(self.clock())

    async def submit(
        self, statement: bytes, accepted_types: Collection[str], must_name: tuple[str, str] | None = None
    ) -> Logged:
        """Register a Tabellion statement of one of ``accepted_types``; answer once the fold accepted it.

        A statement the log refuses raises the log's problem (the state is unchanged). One that the log
        registered but the fold rejected (a conflicting statement in the same batch) raises
        ``TransitionInvalid`` naming the rejected entry: it stays in the log, marked rejected.
        """
        signed = parse_statement(statement)
        stype = statement_type_of(signed.content_type)
        if stype is None or stype not in accepted_types:
            raise StatementTypeMismatch(
                f"this endpoint takes {' or '.join(sorted(accepted_types))} statements; the content type is "
                f"{str(signed.content_type)[:120]!r}"
            )
        if must_name is not None:
            field, value = must_name
            if parse_payload(stype, signed.payload).get(field) != value:
                raise StatementTypeMismatch(f"the {stype} statement does not name {field} {value[:80]} of the path")
        self.check_human_decision(stype, signed)
        submitted = await self._submit(statement)
        if submitted.receipt is None:
            raise RegistrationPending(f"entry {submitted.entry_id} is still being registered")
        index = parse_receipt(submitted.receipt).inclusion[0].leaf_index
        await self.follow_to(index + 1)
        outcome = self.log.outcome(index)
        if not outcome.accepted:
            raise Refused(outcome.code,
                          f"entry {outcome.entry} (index {index}) was logged but rejected: {outcome.reason}")
        return Logged(outcome.entry, index, stype, submitted.receipt, self.log.checkpoint_text)

    async def follow_to(self, size: int) -> None:
        for _ in range(FOLLOW_ATTEMPTS):
            if self.log.refresh().size >= size and self.state.size >= size:
                return
            await asyncio.sleep(FOLLOW_PAUSE_S)
        raise RegistrationPending(f"the log's checkpoint does not cover entry {size - 1} yet")

    @property
    def registry_keys(self) -> RegistryKeys:
        """The registry's own signing keys (``issuer.registry_keys``): they sign task-bound tokens."""
        if self._registry_keys is None:
            raise ConfigurationError("this issuer has no registry keys; it cannot mint or publish token keys")
        return self._registry_keys

    def key_generations(self) -> dict[str, Any]:
        """The registry key generations as a JWK Set, current first, retired kept (``GET /registry/keys``).

        The log's receipt keys are published by the log itself at ``/.well-known/scitt-keys``."""
        return self.registry_keys.jwk_set()

    def mint_token(self, body: dict[str, Any]) -> MintedToken:
        """A task-bound token for the agent's signed request, decided on the latest verified checkpoint."""
        self.log.refresh()
        with self.log.view() as state:
            return mint_token(body, state=state, key=self.registry_keys.current, nonces=self.nonces, now=self.now(),
                              issuer=did_web(self.public_url), checkpoint=self.log.checkpoint.size)

    # --- reads ------------------------------------------------------------------------------------

    def decided_on(self) -> dict[str, Any]:
        checkpoint = self.log.checkpoint
        return {"tree_size": checkpoint.size, "checkpoint": self.log.checkpoint_text}

    def verify_passport(self, agent: str, credential: dict[str, Any] | None = None) -> dict[str, Any]:
        """``{verified, reason_code, policy_decision}`` for the agent's passport now, with its receipt."""
        self.log.refresh()
        with self.log.view() as state:
            status = passport_status(state, agent, self.now())
            decided_on = self.decided_on()
        answer: dict[str, Any] = {
            "agent": agent, "verified": status.verdict.value != "block", "reason_code": status.reason_code,
            "policy_decision": status.verdict.value.upper(), "detail": status.detail, **decided_on,
        }
        passport = status.passport
        if passport is not None:
            if credential is not None and credential != passport.credential:
                answer.update(verified=False, reason_code="not_the_logged_passport", policy_decision="BLOCK",
                              detail="the credential given is not the agent's passport as logged")
            answer["passport"] = {"entry": passport.entry, "index": passport.index,
                                  "receipt": b64url(self.log.entry(passport.index).receipt)}
        return answer

    def authorise(self, agent: str, service: str, action: str, resource: str) -> dict[str, Any]:
        """ALLOW/WARN with the delegation chain and the approved claim, or raise the refusal's problem."""
        self.log.refresh()
        with self.log.view() as state:
            decision = authorise(state, agent, service, action, resource, self.now())
            decided_on = self.decided_on()
        return {
            "decision": decision.verdict.value.upper(), "reason_code": decision.reason_code, "agent": agent,
            "service": service, "action": action, "resource": resource, "passport": decision.passport,
            "chain": list(decision.chain), "root_principal": decision.root_principal, "claim": decision.claim,
            **decided_on,
        }

    def claim(self, entry: str) -> dict[str, Any]:
        self.log.refresh()
        with self.log.view() as state:
            claim = state.claims.get(entry)
            decided_on = self.decided_on()
        if claim is None:
            raise InvalidParameter(f"no claim submission {entry[:80]!r} is on the log")
        return self._claim_json(claim, decided_on)

    def _claim_json(self, claim: Claim, decided_on: dict[str, Any]) -> dict[str, Any]:
        return {
            "entry": claim.entry, "index": claim.index, "claim_id": claim.claim_id, "agent": claim.agent,
            "namespace": claim.namespace, "service": claim.service, "status": claim.status,
            "scope": {"services": list(claim.scope.services), "actions": list(claim.scope.actions),
                      "resources": list(claim.scope.resources)},
            "submitted_at": claim.submitted_at,
            "decisions": [{"kind": d.kind, "entry": d.entry, "index": d.index, "decided_by": d.decided_by,
                           "signer": d.signer, "text": d.text, "human_assertion": d.webauthn is not None}
                          for d in claim.decisions],
            **decided_on,
        }

    def claims(self, namespace: str, status: str | None) -> dict[str, Any]:
        """The claims submitted in ``namespace`` (with ``status`` only, when given), in log order."""
        self.log.refresh()
        with self.log.view() as state:
            decided_on = self.decided_on()
            found = [self._claim_json(c, decided_on) for c in sorted(state.claims.values(), key=lambda c: c.index)
                     if c.namespace == namespace and (status is None or c.status == status)]
        return {"namespace": namespace, "claims": found, **decided_on}

    def approvers(self, namespace: str) -> dict[str, Any]:
        """The passkeys enrolled for ``namespace``, each with the counter of its last logged use and whether a
        revocation took it away: what a relying party needs to check an assertion before it signs anything."""
        self.log.refresh()
        with self.log.view() as state:
            found = [{
                "entry": a.entry, "index": a.index, "approver": a.approver, "credential_id": a.credential_id,
                "public_key": a.public_key, "rp_id": a.rp_id, "origin": a.origin, "enrolled_by": a.enrolled_by,
                "sign_count": state.sign_counts.get(a.entry, 0),
                "revoked": a.entry in state.revoked or state.revocation_of(a.approver) is not None,
            } for a in sorted(state.approvers.values(), key=lambda a: a.index) if a.namespace == namespace]
            decided_on = self.decided_on()
        return {"namespace": namespace, "approvers": found, **decided_on}

    def agents(self, operator: str) -> dict[str, Any]:
        """The agents bound to ``operator`` (their standing consent) or holding a passport it issued: each one's
        passport, tier, expiry and standing now."""
        self.log.refresh()
        now = self.now()
        with self.log.view() as state:
            dids = {a for a, c in state.consents.items() if c.operator == operator}
            dids |= {p.agent for p in state.passport_entries.values() if p.operator == operator}
            found = []
            for did in sorted(dids):
                status = passport_status(state, did, now)
                passport = status.passport
                revoked = state.revocation_of(did)
                found.append({
                    "agent": did, "bound_operator": state.bound_operator(did),
                    "passport": None if passport is None else {
                        "entry": passport.entry, "index": passport.index, "operator": passport.operator,
                        "tier": passport.tier, "valid_from": passport.valid_from, "valid_until": passport.valid_until},
                    "verdict": status.verdict.value.upper(), "reason_code": status.reason_code,
                    "revoked": None if revoked is None else {"entry": revoked.entry, "index": revoked.index,
                                                             "reason": revoked.reason, "by": revoked.by,
                                                             "decided_by": revoked.decided_by or revoked.by},
                    "delegations": list(state.delegations_to.get(did, ())),
                    "claims": list(state.claims_of.get(did, ())),
                })
            decided_on = self.decided_on()
        return {"operator": operator, "agents": found, **decided_on}

    def approved_claims(self, after: int, limit: int) -> dict[str, Any]:
        """The approved-claims feed: each approval with the logged statements and receipts to check it."""
        self.log.refresh()
        items: list[dict[str, Any]] = []
        last = after - 1
        with self.log.view() as state:
            approved = [(d.index, c, d) for c in state.claims.values() if c.status == "approved"
                        for d in [c.decision("approval")] if d is not None and d.index >= after]
            decided_on = self.decided_on()
        for _, claim, approval in sorted(approved, key=lambda item: item[0]):
            submission, decision = self.log.entry(claim.index), self.log.entry(approval.index)
            items.append({
                "claim": claim.entry, "claim_id": claim.claim_id, "agent": claim.agent, "namespace": claim.namespace,
                "service": claim.service, "approval": approval.entry, "approval_index": approval.index,
                "decided_by": approval.decided_by,
                "submission_statement": b64url(submission.statement), "submission_receipt": b64url(submission.receipt),
                "approval_statement": b64url(decision.statement), "approval_receipt": b64url(decision.receipt),
            })
            last = approval.index
            if len(items) >= limit:
                break
        return {"items": items, "next": last + 1, **decided_on}

    # --- human approvals: the passkey assertion, verified online before anything is logged ----------------------

    def check_human_decision(self, stype: str, statement: SignedStatement) -> None:
        """A claim decision that carries a passkey assertion is verified with py_webauthn against the credential's
        enrolment on the log (``issuer.passkeys``) before it is submitted; the log's fold verifies it again,
        offline. A failure raises ``AssertionInvalid`` (403) and nothing is logged."""
        if stype in ("claim-approval", "claim-rejection", "claim-revocation"):
            self.log.refresh()
            with self.log.view() as state:
                verify_decision(state, parse_payload(stype, statement.payload), statement_type=stype,
                                signer=statement.issuer)
