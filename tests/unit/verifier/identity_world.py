"""Builders for identity-fold tests: a log of signed Tabellion statements with explicit ``iat`` and the keys of
an operator (with pre-rotation keys and witnesses), a second operator, agents and a human approver (whose passkey
is a software authenticator, enrolled for a namespace by its owner)."""

from __future__ import annotations

import base64
import copy
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas import cose_labels as L
from schemas.errors import TabellionError
from schemas.identity_statements import canonical_json, content_type
from schemas.leaf import entry_id, leaf_data
from schemas.statement import parse_statement
from tests.webauthn_authenticator import SoftwareAuthenticator
from transparency.client import sign_statement
from verifier.claims import decision_digest, enrolment_request_digest
from verifier.data_integrity import create_proof
from verifier.did_key import did_key_from_public, multibase_of
from verifier.fold import Fold, FoldEntry, IdentityState, Outcome, key_digest, witness_message
from verifier.passports import format_timestamp, passport_verification_method, unsigned_passport
from verifier.webauthn import ALG_EDDSA, FLAG_UP, FLAG_UV, credential_did

T0 = 1_750_000_000
AUTO = -1  # World.consent: the next consent time
HOUR = 3600
FINGERPRINT = "sha256:" + "ab" * 32
BUNDLE = "sha256:" + "cd" * 32
STATUS_LIST = "https://status.example/lists/1"
SCOPE = {"services": ["mail", "files"], "actions": ["read", "write"], "resources": ["mail/*", "files/a/*"]}
STATE_FIELDS = ("controllers", "namespaces", "revoked", "passports", "passport_entries", "status_indices",
                "delegations", "claims", "claim_ids", "delegations_to", "claims_of", "approvers",
                "approver_credentials", "sign_counts", "consents", "consent_entries", "did_web_evidence")


def mk(key: Ed25519PrivateKey) -> str:
    return multibase_of(key.public_key())


def did(key: Ed25519PrivateKey) -> str:
    return did_key_from_public(key.public_key())


def snapshot(state: IdentityState) -> dict[str, Any]:
    """Every derived dict of the state (not the outcomes), deep-copied: what a refusal must leave unchanged."""
    return {name: copy.deepcopy(getattr(state, name)) for name in STATE_FIELDS}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def statement_id(statement: bytes) -> str:
    return entry_id(leaf_data(parse_statement(statement).message))


@dataclass
class World:
    """Keys by name and a log; ``add`` signs and appends, returning the entry id."""

    keys: dict[str, Ed25519PrivateKey] = field(default_factory=dict)
    entries: list[FoldEntry] = field(default_factory=list)
    status_index: int = 0
    passkeys: dict[str, SoftwareAuthenticator] = field(default_factory=dict)  # a human's passkey, by name
    owners: dict[str, str] = field(default_factory=dict)  # namespace -> the operator name that registered it first
    claim_namespaces: dict[str, str] = field(default_factory=dict)  # claim entry id -> namespace
    enrolled: set[tuple[str, str]] = field(default_factory=set)  # (namespace, human) enrolled by ``enrol``
    consent_clock: int = T0 - 1_000  # the iat of the last consent (before T0, so consents precede what they allow)
    bound: dict[str, str] = field(default_factory=dict)  # agent name -> the operator name it consented to last

    def key(self, name: str) -> Ed25519PrivateKey:
        if name not in self.keys:
            self.keys[name] = Ed25519PrivateKey.generate()
        return self.keys[name]

    def did(self, name: str) -> str:
        return did(self.key(name))

    def mk(self, name: str) -> str:
        return mk(self.key(name))

    def sign(self, signer: str, stype: str, payload: dict[str, Any], *, iss: str | None = None,
             iat: int | None = T0) -> bytes:
        """``signer`` names the key; ``iss`` defaults to the DID of the identity it belongs to (key ``op+1`` is a
        later key of ``op``, whose DID is the did:key of its first key ``op``)."""
        extra = {L.CWT_IAT: iat} if iat is not None else None
        issuer = iss or self.did(signer.partition("+")[0])
        return sign_statement(self.key(signer), canonical_json(payload), subject=issuer,
                              content_type=content_type(stype), issuer=issuer, extra_claims=extra)

    def add(self, signer: str, stype: str, payload: dict[str, Any], *, iss: str | None = None,
            iat: int | None = T0) -> str:
        statement = self.sign(signer, stype, payload, iss=iss, iat=iat)
        self.entries.append(FoldEntry(len(self.entries), statement))
        return statement_id(statement)

    def fold(self) -> IdentityState:
        return Fold().apply_all(self.entries)

    # --- operators ----------------------------------------------------------------------------------------

    def register(self, name: str = "op", namespace: str = "acme") -> str:
        """Operator ``name`` (DID = did:key of key ``name``), current key ``name``, next ``name+1``."""
        payload = {"operator": self.did(name), "namespace": namespace, "key": self.mk(name),
                   "next_key_digest": key_digest(self.mk(name + "+1")),
                   "witnesses": [self.did(w) for w in ("w1", "w2", "w3")], "witness_threshold": 2}
        self.owners.setdefault(namespace, name)
        return self.add(name, "operator-registration", payload)

    def rotate(self, name: str, previous: str) -> str:
        """Rotate operator ``name`` from key ``name`` to ``name+1`` (committing to ``name+2``)."""
        payload: dict[str, Any] = {"controller": self.did(name), "sequence": 1, "previous": previous,
                                   "key": self.mk(name + "+1"), "next_key_digest": key_digest(self.mk(name + "+2")),
                                   "witness_signatures": []}
        message = witness_message(payload)
        payload["witness_signatures"] = [{"witness": self.did(w), "signature": b64url(self.key(w).sign(message))}
                                         for w in ("w1", "w2")]
        return self.add(name + "+1", "key-rotation", payload, iss=self.did(name))

    # --- agents: consent to an operator, passports -------------------------------------------------------

    def consent(self, agent: str, operator: str = "op", *, signer: str | None = None, iat: int | None = AUTO) -> str:
        """``agent`` (signing with its own key unless ``signer``) accepts ``operator`` as its controller; ``iat``
        defaults to one second after the world's last consent (a consent must be newer than the agent's last)."""
        self.bound[agent] = operator
        if iat == AUTO:
            self.consent_clock += 1
            iat = self.consent_clock
        return self.add(signer or agent, "agent-consent", {"agent": self.did(agent), "operator": self.did(operator)},
                        iss=self.did(agent), iat=iat)

    def _bind(self, agent: str, operator: str, consent: bool) -> None:
        if consent and self.bound.get(agent) != operator:
            self.consent(agent, operator)

    def credential(self, agent: str, operator: str = "op", *, proof_key: str | None = None, tier: str = "software",
                   valid_from: int = T0, lifetime: int = 24 * HOUR, index: int | None = None) -> dict[str, Any]:
        if index is None:
            index = self.status_index
            self.status_index += 1
        unsigned = unsigned_passport(
            credential_id=f"urn:uuid:{uuid.UUID(int=index + 1)}", operator=self.did(operator), agent=self.did(agent),
            tier=tier, valid_from=valid_from, valid_until=valid_from + lifetime, machine_fingerprint=FINGERPRINT,
            jurisdiction="EU", policy_bundle=BUNDLE, status_list=STATUS_LIST, status_index=index,
        )
        signer = proof_key or operator
        method = passport_verification_method(self.did(operator), self.mk(signer))
        return create_proof(unsigned, self.key(signer), method, format_timestamp(valid_from))

    def passport(self, agent: str, operator: str = "op", *, signer: str | None = None, iat: int | None = T0,
                 consent: bool = True, **kwargs: Any) -> str:
        """A passport; the agent first consents to ``operator`` unless it did last, or ``consent=False``."""
        self._bind(agent, operator, consent)
        credential = self.credential(agent, operator, **kwargs)
        return self.add(signer or operator, "agent-passport", {"credential": credential}, iss=self.did(operator),
                        iat=iat)

    # --- delegations and claims ----------------------------------------------------------------------------

    def delegate(self, principal: str, agent: str, parent: str | None = None, *, scope: dict[str, Any] | None = None,
                 not_after: int = T0 + 10 * HOUR, max_depth: int | None = None, iat: int | None = T0,
                 signer: str | None = None, consent: bool = True) -> str:
        """A delegation; ``max_depth`` defaults to 3 for a root and 0 for a child. Before a root, the agent consents
        to the principal unless it did last, or ``consent=False``."""
        if parent is None:
            self._bind(agent, principal, consent)
        depth = max_depth if max_depth is not None else (3 if parent is None else 0)
        payload = {"principal": self.did(principal), "agent": self.did(agent), "parent": parent,
                   "scope": scope or SCOPE, "not_after": not_after, "max_depth": depth}
        return self.add(signer or principal, "delegation", payload, iss=self.did(principal), iat=iat)

    def submit(self, agent: str, claim_id: str = "c1", namespace: str = "acme", *, service: str = "mail",
               scope: dict[str, Any] | None = None, signer: str | None = None) -> str:
        payload = {"claim_id": claim_id, "agent": self.did(agent), "namespace": namespace, "service": service,
                   "scope": scope or SCOPE}
        entry = self.add(signer or agent, "claim-submission", payload, iss=self.did(agent))
        self.claim_namespaces[entry] = namespace
        return entry

    # --- human approvers: passkeys enrolled by a namespace owner, assertions over the decision --------------------

    def passkey(self, human: str = "human", **kwargs: Any) -> SoftwareAuthenticator:
        """``human``'s passkey, made on first use: by default an EdDSA passkey whose key is ``human``'s own key, so
        that ``human``'s DID is the passkey's did:key (the approver an enrolment proves); ``kwargs`` apply then
        (an ``alg`` or ``key`` among them makes another key, whose did:key is not ``human``'s DID)."""
        if human not in self.passkeys:
            own: dict[str, Any] = {"alg": ALG_EDDSA, "key": self.key(human)}
            if "alg" in kwargs or "key" in kwargs:
                own = {}
            self.passkeys[human] = SoftwareAuthenticator(**own, **kwargs)
        return self.passkeys[human]

    def approver(self, human: str = "human") -> str:
        """The DID ``human`` approves as: their passkey's did:key (``human``'s own DID for the default passkey); an
        RS256 passkey has none, and then ``human``'s DID (which no owner but ``human`` itself may enrol)."""
        return credential_did(self.passkey(human).cose_public_key()) or self.did(human)

    @staticmethod
    def registration_challenge(payload: dict[str, Any]) -> bytes:
        """The enrolment request's digest that a passkey's registration signs for ``payload`` (an enrolment, or a
        request with its ``public_key``): without ``approver`` when that is the did:key of ``public_key``."""
        own = credential_did(base64.urlsafe_b64decode(payload["public_key"] + "=" * (-len(payload["public_key"]) % 4)))
        return enrolment_request_digest(payload, passkey_did=own)

    def enrolment(self, human: str = "human", namespace: str = "acme", *, consent: bool = True,
                  signer_did: str | None = None, **changes: Any) -> dict[str, Any]:
        """An approver-enrolment payload for ``human``'s passkey, with the human's consent (the passkey's
        registration over the enrolment request, then its assertion over the whole enrolment) made after
        ``changes`` replaced fields; ``consent=False``: without the consent's fields."""
        key = self.passkey(human)
        payload: dict[str, Any] = {
            "namespace": namespace, "approver": self.approver(human), "credential_id": b64url(key.credential_id),
            "public_key": b64url(key.cose_public_key()), "rp_id": key.rp_id, "origin": key.origin,
        }
        payload.update(changes)
        if not consent:
            return payload
        own = credential_did(key.cose_public_key())  # what the passkey knows of itself: its own did:key
        created = key.create(enrolment_request_digest(payload, passkey_did=own))["response"]
        payload["registration"] = {"client_data_json": created["clientDataJSON"],
                                   "attestation_object": created["attestationObject"]}
        owner = signer_did or self.did(self.owners.get(namespace, "op"))
        payload["webauthn"] = key.get(decision_digest(payload, statement_type="approver-enrolment",
                                                      signer=owner)).to_json()
        return payload

    def enrol(self, human: str = "human", namespace: str = "acme", owner: str | None = None, **changes: Any) -> str:
        """Enrol ``human``'s passkey as an approver of ``namespace``, signed by ``owner`` (default: its owner)."""
        self.enrolled.add((namespace, human))
        signer = owner or self.owners.get(namespace, "op")
        enrolment = self.enrolment(human, namespace, signer_did=self.did(signer.partition("+")[0]), **changes)
        return self.add(signer, "approver-enrolment", enrolment,
                        iss=self.did(signer.partition("+")[0]))

    def approval(self, claim: str, human: str = "human", *, webauthn_type: str = "webauthn.get",
                 challenge: str | None = None, flags: int = FLAG_UP | FLAG_UV, origin: str | None = None,
                 rp_id: str | None = None, decided_by: str | None = None) -> dict[str, Any]:
        """A claim-approval payload carrying an assertion by ``human``'s passkey over the decision; the keywords
        make it wrong in one way each (``challenge`` replaces the base64url challenge in the client data)."""
        payload: dict[str, Any] = {"claim": claim, "decided_by": decided_by or self.approver(human), "note": "ok"}
        digest = self.decision_digest(claim, "claim-approval", payload)
        assertion = self.passkey(human).get(digest, kind=webauthn_type, challenge_text=challenge, flags=flags,
                                            origin=origin, rp_id=rp_id)
        payload["webauthn"] = assertion.to_json()
        return payload

    def decision_digest(self, claim: str, stype: str, payload: dict[str, Any]) -> bytes:
        """What the human signs for a ``stype`` decision of ``claim``, logged by its namespace's owner."""
        owner = self.owners.get(self.claim_namespaces.get(claim, "acme"), "op")
        return decision_digest(payload, statement_type=stype, signer=self.did(owner))

    def approve(self, claim: str, signer: str = "op", **kwargs: Any) -> str:
        """Approve with ``human``'s passkey (``approval`` keywords), enrolling it first (by the namespace's owner)
        unless ``enrol=False`` or it is enrolled for the claim's namespace already."""
        namespace = self.claim_namespaces.get(claim)
        human = kwargs.get("human", "human")
        if kwargs.pop("enrol", True) and namespace is not None and (namespace, human) not in self.enrolled:
            self.enrol(human, namespace)
        return self.add(signer, "claim-approval", self.approval(claim, **kwargs))

    def decision(self, claim: str, kind: str = "rejection", human: str = "human", *,
                 assertion: bool = True) -> dict[str, Any]:
        """A ``claim-<kind>`` payload decided by ``human``, with the assertion of ``human``'s passkey over it unless
        ``assertion=False`` (a decision in the human's name that the human did not sign)."""
        payload: dict[str, Any] = {"claim": claim, "decided_by": self.approver(human)}
        payload.update({"note": "ok"} if kind == "approval"
                       else {"reason": "no" if kind == "rejection" else "privilegeWithdrawn"})
        if assertion:
            payload["webauthn"] = self.passkey(human).get(self.decision_digest(claim, f"claim-{kind}",
                                                                               payload)).to_json()
        return payload

    def reject(self, claim: str, signer: str = "op") -> str:
        """The owner's own rejection (decided_by: the signer)."""
        return self.add(signer, "claim-rejection", {"claim": claim, "decided_by": self.did(signer), "reason": "no"})

    def revoke_claim(self, claim: str, signer: str = "op") -> str:
        return self.add(signer, "claim-revocation",
                        {"claim": claim, "decided_by": self.did(signer), "reason": "privilegeWithdrawn"})

    def revoke(self, signer: str, target: str, reason: str = "privilegeWithdrawn", *, iss: str | None = None) -> str:
        return self.add(signer, "revocation", {"target": target, "reason": reason}, iss=iss)


def assert_last_refused(world: World, code: str) -> Outcome:
    """Fold all but the last entry, then check (must raise) and apply the last: refused with the stable ``code``
    (``verifier.refusals``, or the code of the check that failed), both by ``check`` and as the kept outcome, and
    the state left exactly as it was."""
    fold = Fold().apply_all(world.entries[:-1])
    before = snapshot(fold)
    last = world.entries[-1]
    with pytest.raises(TabellionError) as refused:
        Fold(fold).check(parse_statement(last.statement))
    assert refused.value.code == code, f"refused with {refused.value.code}, expected {code}: {refused.value}"
    outcome = Fold(fold).apply(last)
    assert not outcome.accepted, f"accepted, expected refusal: {code}"
    assert outcome.code == code, f"kept as {outcome.code}, expected {code}: {outcome.reason}"
    assert snapshot(fold) == before, "a refused transition changed the state"
    return outcome


def accepted(state: IdentityState) -> list[bool]:
    return [o.accepted for o in state.outcomes]
