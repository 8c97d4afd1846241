"""The authority matrix (docs/authority.md as an independent reference), random plans of statements, and a Run."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from schemas.errors import TabellionError
from schemas.statement import parse_statement
from tests.unit.verifier.identity_world import World, snapshot
from tests.webauthn_authenticator import SoftwareAuthenticator
from verifier.claims import decision_digest, enrolment_request_digest
from verifier.fold import Fold

OPERATORS = ("op1", "op2")
NAMESPACES = {"op1": "ns1", "op2": "ns2"}
AGENTS = ("a1", "a2", "a3")
HUMANS = ("h1", "h2")
STRANGER = "s"
ACTORS = (*OPERATORS, *AGENTS, *HUMANS, STRANGER)
ENTRY_KINDS = ("passport", "delegation", "claim", "enrolment", "consent", "unknown")
UNKNOWN_ENTRY = "ab" * 32


@dataclass
class Matrix:
    """What docs/authority.md entitles, for the statements this test makes. Names stand for actors."""

    revoked: set[str] = field(default_factory=set)  # actor names and entry ids
    consents: dict[str, tuple[str, str]] = field(default_factory=dict)  # agent -> (operator, entry), newest
    consent_entries: dict[str, str] = field(default_factory=dict)  # entry -> agent
    passports: dict[str, tuple[str, str]] = field(default_factory=dict)  # entry -> (operator, agent)
    delegations: dict[str, dict[str, Any]] = field(default_factory=dict)  # entry -> principal, agent, parent, depth
    claims: dict[str, dict[str, Any]] = field(default_factory=dict)  # entry -> agent, namespace, status
    # entry -> (namespace, human whose passkey it is, owner, the approver it names)
    enrolments: dict[str, tuple[str, str, str, str]] = field(default_factory=dict)
    enrolled: set[tuple[str, str]] = field(default_factory=set)  # (namespace, human): the credential is taken
    granted: set[tuple[Any, ...]] = field(default_factory=set)  # what accepted delegations said (all else is fixed)

    # --- who stands -------------------------------------------------------------------------------------

    def owner(self, namespace: str) -> str | None:
        return next((op for op, ns in NAMESPACES.items() if ns == namespace), None)

    def bound(self, agent: str) -> str | None:
        consent = self.consents.get(agent)
        return consent[0] if consent is not None and consent[1] not in self.revoked else None

    def chain(self, entry: str) -> list[dict[str, Any]]:
        links = [self.delegations[entry]]
        while links[-1]["parent"] is not None:
            links.append(self.delegations[links[-1]["parent"]])
        return links

    def chain_holds(self, entry: str) -> bool:
        return not any(link["entry"] in self.revoked or link["principal"] in self.revoked
                       or link["agent"] in self.revoked for link in self.chain(entry))

    def rightful_operator(self, agent: str) -> str:
        return self.bound(agent) or "op1"

    def grantor(self, entry: str) -> str:
        """Who the matrix lets revoke ``entry`` (op1 for an unknown one)."""
        if entry in self.passports:
            return self.passports[entry][0]
        if entry in self.delegations:
            return str(self.delegations[entry]["principal"])
        if entry in self.claims:
            return self.owner(self.claims[entry]["namespace"]) or "op1"
        if entry in self.enrolments:
            return self.enrolments[entry][2]
        return self.consent_entries.get(entry, "op1")

    # --- what each statement breaks -------------------------------------------------------------------------

    def signer(self, signer: str, iss: str) -> set[str]:
        broken = set()
        if iss in self.revoked:
            broken.add("signer-revoked")
        if signer != iss:
            broken.add("signer-key-mismatch")
        return broken

    def consent(self, signer: str, iss: str, agent: str, operator: str) -> set[str]:
        broken = self.signer(signer, iss)
        if iss != agent:
            broken.add("consent-issuer-mismatch")
        if operator not in OPERATORS:
            broken.add("consent-operator-unknown")
        elif operator in self.revoked:
            broken.add("consent-operator-revoked")
        return broken

    def passport(self, signer: str, agent: str) -> set[str]:
        broken = self.signer(signer, signer)
        if signer not in OPERATORS:
            return broken | {"passport-operator-unknown"}
        if signer in self.revoked:
            broken.add("operator-revoked")
        if agent in self.revoked:
            broken.add("agent-revoked")
        if self.bound(agent) != signer:
            broken.add("consent-missing")
        return broken

    def root_delegation(self, signer: str, agent: str) -> set[str]:
        broken = self.signer(signer, signer)
        if (signer, agent, None, 3) in self.granted:
            broken.add("delegation-replayed")
        if signer in self.revoked:
            broken.add("delegation-principal-revoked")
        if agent in self.revoked:
            broken.add("agent-revoked")
        if signer not in OPERATORS:
            broken.add("delegation-root-not-operator")
        elif self.bound(agent) != signer:
            broken.add("consent-missing")
        return broken

    def child_delegation(self, signer: str, agent: str, parent: str, depth: int) -> set[str]:
        broken = self.signer(signer, signer)
        if (signer, agent, parent, depth) in self.granted:
            broken.add("delegation-replayed")
        if signer in self.revoked:
            broken.add("delegation-principal-revoked")
        if agent in self.revoked:
            broken.add("agent-revoked")
        link = self.delegations.get(parent)
        if link is None:
            return broken | {"delegation-parent-unknown"}
        if link["agent"] != signer:
            broken.add("delegation-parent-agent-mismatch")
        if not self.chain_holds(parent):
            broken.add("delegation-parent-invalid")
        if link["max_depth"] == 0:
            broken.add("delegation-too-deep")
        return broken

    def submission(self, signer: str, agent: str, namespace: str) -> set[str]:
        broken = self.signer(signer, agent)
        if agent in self.revoked:
            broken.add("agent-revoked")
        if self.owner(namespace) is None:
            broken.add("namespace-unknown")
        return broken

    def decision(self, signer: str, claim: str, kind: str, decided_by: str, human: str | None,
                 misbound: bool = False) -> set[str]:
        """``misbound``: the human's assertion was made for another statement type with the same payload."""
        broken = self.signer(signer, signer)
        record = self.claims.get(claim)
        if record is None:
            return broken | {"claim-unknown"}
        if signer != self.owner(record["namespace"]):
            broken.add("not-namespace-owner")
        if record["status"] != ("approved" if kind == "revocation" else "submitted"):
            broken.add("claim-not-pending")
        if decided_by in self.revoked:
            broken.add("decider-revoked")
        if kind == "approval" and record["agent"] in self.revoked:
            broken.add("agent-revoked")
        if human is None:
            if decided_by != signer:
                broken.add("human-assertion-missing")
            return broken
        return broken | self.assertion(record["namespace"], human, decided_by, misbound)

    def assertion(self, namespace: str, human: str, decided_by: str, misbound: bool) -> set[str]:
        """What is wrong with ``human``'s passkey assertion in ``namespace`` for a decision ``decided_by`` someone
        (``misbound``: made for another statement)."""
        broken = set()
        enrolment = next((e for e, (ns, h, _, _) in self.enrolments.items() if ns == namespace and h == human),
                         None)
        if enrolment is None:
            broken.add("webauthn-credential-unknown")
        elif enrolment in self.revoked:
            broken.add("webauthn-credential-revoked")
        elif self.enrolments[enrolment][3] != decided_by:
            broken.add("webauthn-approver-mismatch")
        if misbound:
            broken.add("webauthn-challenge-mismatch")
        return broken

    def enrolment(self, signer: str, human: str, namespace: str, foreign: bool, approver: str) -> set[str]:
        """``human``'s passkey enrolled by ``signer`` for ``approver``; ``foreign``: consented by another passkey.
        The approver is one the enrolment proves (the passkey's own did:key: here, ``human``) or the signer speaks
        for (itself; every operator here is a did:key, so there is no did:web host to share)."""
        broken = self.signer(signer, signer)
        owner = self.owner(namespace)
        if owner is None:
            broken.add("namespace-unknown")
        elif signer != owner:
            broken.add("not-namespace-owner")
        if approver not in (human, signer):
            broken.add("approver-not-entitled")
        if approver in self.revoked:
            broken.add("approver-revoked")
        if (namespace, human) in self.enrolled:
            broken.add("credential-already-enrolled")
        if foreign:
            broken.add("enrolment-registration-invalid")
        return broken

    def revocation(self, signer: str, target: str, kind: str, decided_by: str | None = None,
                   human: str | None = None, misbound: bool = False) -> set[str]:
        """``misbound``: the human's assertion was made for this payload signed by another operator."""
        broken = self.signer(signer, signer)
        if target in self.revoked:
            return broken | {"already-revoked"}
        decided_by = decided_by or signer
        if human is None:
            if decided_by != signer:
                broken.add("human-assertion-missing")
        elif signer not in NAMESPACES:
            broken.add("not-namespace-owner")
        else:
            if decided_by in self.revoked:
                broken.add("decider-revoked")
            broken |= self.assertion(NAMESPACES[signer], human, decided_by, misbound)
        if kind == "did":
            if not (signer == target or self.bound(target) == signer):
                broken.add("did-revocation-not-entitled")
        elif target in self.passports:
            if signer != self.passports[target][0]:
                broken.add("passport-revocation-not-entitled")
        elif target in self.delegations:
            if signer not in {link["principal"] for link in self.chain(target)}:
                broken.add("delegation-revocation-not-entitled")
        elif target in self.claims:
            record = self.claims[target]
            if signer != self.owner(record["namespace"]):
                broken.add("not-namespace-owner")
            if record["status"] != "approved":
                broken.add("claim-not-pending")
        elif target in self.enrolments:
            if signer not in (self.enrolments[target][2], self.enrolments[target][3]):
                broken.add("enrolment-revocation-not-entitled")
        elif target in self.consent_entries:
            if signer != self.consent_entries[target]:
                broken.add("consent-revocation-not-entitled")
        else:
            broken.add("revocation-target-unknown")
        return broken


# --- the steps ----------------------------------------------------------------------------------------------

actor = st.sampled_from(ACTORS)
# "rightful": the party the matrix entitles (the agent's bound operator, the claim's namespace owner, the
# entry's grantor), so that entitled statements, and one-rule violations next to them, come up often
deciding = st.sampled_from((*ACTORS, "rightful", "rightful", "rightful"))
agent = st.sampled_from(AGENTS)
pick = st.integers(0, 50)
steps = st.lists(st.one_of(
    st.tuples(st.just("consent"), deciding, agent, st.sampled_from((*OPERATORS, STRANGER)), st.booleans()),
    st.tuples(st.just("passport"), deciding, agent),
    st.tuples(st.just("root"), deciding, agent),
    st.tuples(st.just("child"), actor, agent, pick),
    st.tuples(st.just("submit"), deciding, agent, st.sampled_from(("ns1", "ns2", "ns9"))),
    st.tuples(st.just("decide"), deciding, pick, st.sampled_from(("approval", "rejection", "revocation")),
              st.sampled_from(("own", "h1", "h2", "impersonate-h1", "h1-elsewhere"))),
    # the approver named: the passkey's own did:key ("own"), the signer itself ("signer"), or any actor's DID (a DID
    # the owner is not entitled to name unless it is the passkey's or its own)
    st.tuples(st.just("enrol"), actor, st.sampled_from(HUMANS), st.sampled_from(("ns1", "ns2")), st.booleans(),
              st.sampled_from(("own", "own", "signer", *ACTORS))),
    st.tuples(st.just("revoke-did"), deciding, actor,
              st.sampled_from(("own", "own", "h1", "h2", "impersonate-h1", "h1-elsewhere"))),
    st.tuples(st.just("revoke-entry"), deciding, st.sampled_from(ENTRY_KINDS), pick),
), min_size=4, max_size=int(os.environ.get("AUTHORITY_STEPS", "24")))


PRELUDE: tuple[tuple[Any, ...], ...] = (
    ("consent", "a1", "a1", "op1", False), ("consent", "a2", "a2", "op2", False),
    ("passport", "op1", "a1"), ("passport", "op2", "a2"), ("root", "op1", "a1"),
    ("submit", "a1", "a1", "ns1"), ("submit", "a2", "a2", "ns2"), ("submit", "a3", "a3", "ns1"),
    ("submit", "a1", "a1", "ns2"), ("enrol", "op1", "h1", "ns1", False), ("enrol", "op2", "h2", "ns2", False),
)


def _nth(entries: list[str], k: int) -> str:
    return entries[k % len(entries)] if entries else UNKNOWN_ENTRY


class Run:
    """Sends each step as a signed statement, predicts it with ``Matrix``, folds it, compares."""

    def __init__(self) -> None:
        self.world = World()
        self.matrix = Matrix()
        self.fold = Fold()
        self.claim_count = 0
        self.mallory = SoftwareAuthenticator()
        for operator in OPERATORS:
            self.world.register(operator, NAMESPACES[operator])
        for entry in self.world.entries:
            assert self.fold.apply(entry).accepted
        for step in PRELUDE:  # a populated world, so that random steps meet pending claims, passports, approvers
            self.send(step)

    def send(self, step: tuple[Any, ...]) -> None:
        w, m = self.world, self.matrix
        kind, signer = step[0], step[1]
        if kind == "consent":
            _, _, agent, operator, forged = step
            signer = agent if signer == "rightful" else signer
            iss = agent if not forged else signer
            broken = m.consent(signer, iss, agent, operator)
            w.consent_clock += 1  # each consent newer than the last (replays are a unit test's business)
            entry = w.add(signer, "agent-consent", {"agent": w.did(agent), "operator": w.did(operator)},
                          iss=w.did(iss), iat=w.consent_clock)
            if self.judge(broken):
                m.consents[agent] = (operator, entry)
                m.consent_entries[entry] = agent
        elif kind == "passport":
            agent = step[2]
            signer = m.rightful_operator(agent) if signer == "rightful" else signer
            broken = m.passport(signer, agent)
            entry = w.passport(agent, signer, consent=False)
            if self.judge(broken):
                m.passports[entry] = (signer, agent)
        elif kind == "root":
            agent = step[2]
            signer = m.rightful_operator(agent) if signer == "rightful" else signer
            broken = m.root_delegation(signer, agent)
            entry = w.delegate(signer, agent, consent=False)
            if self.judge(broken):
                m.delegations[entry] = {"entry": entry, "principal": signer, "agent": agent, "parent": None,
                                        "max_depth": 3}
                m.granted.add((signer, agent, None, 3))
        elif kind == "child":
            _, _, agent, k = step
            parent = _nth(list(m.delegations), k)
            depth = max(m.delegations[parent]["max_depth"] - 1, 0) if parent in m.delegations else 0
            broken = m.child_delegation(signer, agent, parent, depth)
            entry = w.delegate(signer, agent, parent, max_depth=depth, consent=False)
            if self.judge(broken):
                m.delegations[entry] = {"entry": entry, "principal": signer, "agent": agent, "parent": parent,
                                        "max_depth": depth}
                m.granted.add((signer, agent, parent, depth))
        elif kind == "submit":
            _, _, agent, namespace = step
            signer = agent if signer == "rightful" else signer
            self.claim_count += 1
            broken = m.submission(signer, agent, namespace)
            entry = w.submit(agent, f"c{self.claim_count}", namespace, signer=signer)
            if self.judge(broken):
                m.claims[entry] = {"agent": agent, "namespace": namespace, "status": "submitted"}
        elif kind == "decide":
            self.decide(signer, *step[2:])
        elif kind == "enrol":
            self.enrol(signer, *step[2:])
        elif kind == "revoke-did":  # by the signer itself, or decided by a human in its name (the console)
            target, mode = step[2], step[3] if len(step) > 3 else "own"
            signer = (m.bound(target) or target) if signer == "rightful" else signer
            misbound = mode == "h1-elsewhere"  # h1 decided this revocation for another operator
            human = "h1" if misbound else mode if mode in HUMANS else None
            decided_by = human or ("h1" if mode == "impersonate-h1" else None)
            payload: dict[str, Any] = {"target": w.did(target), "reason": "privilegeWithdrawn"}
            if decided_by is not None:
                payload["decided_by"] = w.did(decided_by)
            if human is not None:
                decided_for = next(o for o in OPERATORS if o != signer) if misbound else signer
                challenge = decision_digest(payload, statement_type="revocation", signer=w.did(decided_for))
                payload["webauthn"] = w.passkey(human).get(challenge).to_json()
            broken = m.revocation(signer, target, "did", decided_by, human, misbound)
            w.add(signer, "revocation", payload)
            if self.judge(broken):
                m.revoked.add(target)
        else:
            _, _, entry_kind, k = step
            pools: dict[str, dict[str, Any]] = {"passport": m.passports, "delegation": m.delegations, "claim": m.claims,
                     "enrolment": m.enrolments, "consent": m.consent_entries, "unknown": {}}
            target = _nth(list(pools[entry_kind]), k)
            signer = m.grantor(target) if signer == "rightful" else signer
            broken = m.revocation(signer, target, "entry")
            w.revoke(signer, target)
            if self.judge(broken):
                m.revoked.add(target)
                if target in m.claims:
                    m.claims[target]["status"] = "revoked"

    def decide(self, signer: str, k: int, kind: str, mode: str) -> None:
        w, m = self.world, self.matrix
        claim = _nth(list(m.claims), k)
        if signer == "rightful":
            signer = m.owner(m.claims[claim]["namespace"]) or "op1" if claim in m.claims else "op1"
        misbound = mode == "h1-elsewhere"  # h1 signed this payload as another type of decision
        human = "h1" if misbound else mode if mode in HUMANS else None
        decided_by = human or ("h1" if mode == "impersonate-h1" else signer)
        payload: dict[str, Any] = {"claim": claim, "decided_by": w.did(decided_by)}
        # a rejection's reason that is also a revocation's: their payloads are the same
        payload.update({"note": "ok"} if kind == "approval" else {"reason": "privilegeWithdrawn"})
        if human is not None:
            other = "revocation" if kind == "rejection" else "rejection"
            decided_as = f"claim-{other if misbound else kind}"
            challenge = decision_digest(payload, statement_type=decided_as, signer=w.did(signer))
            payload["webauthn"] = w.passkey(human).get(challenge).to_json()
        broken = m.decision(signer, claim, kind, decided_by, human, misbound)
        w.add(signer, f"claim-{kind}", payload)
        if self.judge(broken):
            m.claims[claim]["status"] = {"approval": "approved", "rejection": "rejected", "revocation": "revoked"}[kind]

    def enrol(self, signer: str, human: str, namespace: str, foreign: bool, named: str = "own") -> None:
        w, m = self.world, self.matrix
        approver = human if named == "own" else signer if named == "signer" else named
        if foreign:  # the human's credential, "consented" by someone else's passkey
            key = w.passkey(human)
            payload: dict[str, Any] = {"namespace": namespace, "approver": w.did(approver),
                                       "credential_id": w_b64(key.credential_id),
                                       "public_key": w_b64(key.cose_public_key()), "rp_id": key.rp_id,
                                       "origin": key.origin}
            # over the request the fold expects for this credential (without approver when it is the passkey's)
            created = self.mallory.create(enrolment_request_digest(payload, passkey_did=w.did(human)))["response"]
            payload["registration"] = {"client_data_json": created["clientDataJSON"],
                                       "attestation_object": created["attestationObject"]}
            challenge = decision_digest(payload, statement_type="approver-enrolment", signer=w.did(signer))
            payload["webauthn"] = self.mallory.get(challenge).to_json()
        else:
            payload = w.enrolment(human, namespace, signer_did=w.did(signer), approver=w.did(approver))
        broken = m.enrolment(signer, human, namespace, foreign, approver)
        entry = w.add(signer, "approver-enrolment", payload)
        if self.judge(broken):
            m.enrolments[entry] = (namespace, human, signer, approver)
            m.enrolled.add((namespace, human))

    def judge(self, broken: set[str]) -> bool:
        """Fold the newest entry; it must be accepted iff ``broken`` is empty, else refused with one of its codes,
        leaving the state unchanged. Returns whether it was accepted."""
        entry = self.world.entries[-1]
        before = snapshot(self.fold.state)
        try:
            self.fold.check(parse_statement(entry.statement))
            checked = ""
        except TabellionError as exc:
            checked = exc.code
        outcome = self.fold.apply(entry)
        assert outcome.code == checked, (outcome, checked)
        if not broken:
            assert outcome.accepted, f"the matrix entitles it, the fold refused: {outcome}"
            return True
        assert not outcome.accepted, f"the fold accepted what the matrix does not entitle ({sorted(broken)})"
        assert outcome.code in broken, f"refused with {outcome.code!r}, expected one of {sorted(broken)}"
        assert snapshot(self.fold.state) == before, "a refused statement changed the state"
        return False


def w_b64(data: bytes) -> str:
    from schemas.base64url import b64url

    return b64url(data)
