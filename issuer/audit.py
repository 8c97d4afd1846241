"""Audit bundles: "who authorised this agent", with everything needed to check the answer offline.

A bundle (JSON, format in ``verifier.bundles``) holds, for one agent DID, every log entry the answer
rests on — its passports, every delegation to it and each delegation's ancestors, the consents of the agents
in them to their operators, its claims and the
decisions on them (with the passkey enrolment behind a human approval), the key history (registration
and rotations) of every principal, passport issuer and namespace owner involved (with the did:web evidence
a did:web registration rested on), and every revocation
of any of these — each with its receipt, plus the latest verified checkpoint and the consistency
proofs from each receipt's tree size to it. When the log's witnesses have cosigned a checkpoint that covers
every entry, that cosigned checkpoint is the one (``LogState.witnessed``), so that the bundle checks offline
against a C2SP tlog-policy (``tabellion verify bundle --policy``).

Inclusion is proven; completeness is not: a bundle cannot show that no other entry (say a revocation)
exists. A verifier that needs that follows the log itself.
"""

from __future__ import annotations

from typing import Any

from issuer.log_state import LogState
from schemas.base64url import b64url
from schemas.errors import NotFound
from schemas.receipt import parse_receipt
from verifier.bundles import BUNDLE_TYPE, BUNDLE_VERSION
from verifier.delegation import chain_of
from verifier.fold import IdentityState


class AuditSubjectUnknown(NotFound):
    code = "audit-subject-unknown"
    title = "Nothing about this identity on the log"


def relevant_entries(state: IdentityState, did: str) -> set[int]:
    """Indices of the entries an audit of ``did`` rests on (see the module docstring)."""
    indices: set[int] = set()
    principals: set[str] = set()
    subjects: set[str] = {did}  # DIDs and entry ids whose revocation matters
    for passport in state.passport_entries.values():
        if passport.agent == did:
            indices.add(passport.index)
            principals.add(passport.operator)
            subjects.add(passport.entry)
    for delegation in state.delegations_to.get(did, ()):
        for link in chain_of(state, delegation).delegations:
            indices.add(link.index)
            principals.update((link.principal, link.agent))
            subjects.add(link.entry)
    for claim in (state.claims[e] for e in state.claims_of.get(did, ())):
        indices.add(claim.index)
        subjects.add(claim.entry)
        owner = state.namespaces.get(claim.namespace)
        if owner is not None:
            principals.add(owner)
        for decision in claim.decisions:
            indices.add(decision.index)
            principals.add(decision.signer)
            if decision.enrolment is not None:  # the passkey enrolment a human approval was checked against
                indices.add(state.approvers[decision.enrolment].index)
                subjects.update((decision.enrolment, decision.decided_by))
    for enrolment in state.enrolment_entries.values():  # a TPM-rooted agent: what its enrolment rests on
        if enrolment.agent == did:
            indices.add(enrolment.index)
            subjects.update((enrolment.entry, enrolment.trust_anchor, enrolment.approver))
            principals.add(enrolment.operator)
            anchor = state.trust_anchors.get(enrolment.trust_anchor)
            if anchor is not None:
                indices.add(anchor.index)
            indices.add(state.approvers[enrolment.approver].index)
    agents = {did} | {link.agent for d in state.delegations_to.get(did, ()) for link in chain_of(state, d).delegations}
    for consent in state.consent_entries.values():
        if consent.agent in agents:
            indices.add(consent.index)
            subjects.add(consent.entry)
            principals.add(consent.operator)
    for principal in principals - {did}:
        controller = state.controllers.get(principal)
        if controller is not None:
            indices.update(event.index for event in controller.history)
            subjects.update(event.key for event in controller.history)
            evidence = state.did_web_evidence.get((principal, controller.history[0].key))
            if evidence is not None:  # what a did:web registration rested on (verifier.did_web)
                indices.add(evidence.index)
            policy = state.namespace_policies.get(controller.namespace)
            if policy is not None:  # whether the namespace requires hardware-rooted agents
                indices.add(policy.index)
        subjects.add(principal)
    for target in subjects:
        revocation = state.revoked.get(target)
        if revocation is not None:
            indices.add(revocation.index)
    return indices


def audit_bundle(log: LogState, did: str) -> dict[str, Any]:
    log.refresh()
    with log.view() as state:
        indices = sorted(relevant_entries(state, did))
        checkpoint, checkpoint_text = log.checkpoint, log.checkpoint_text
    if not indices:
        raise AuditSubjectUnknown(f"no passport, delegation, consent or claim of {did[:200]} is on the log")
    entries = []
    sizes: set[int] = set()
    for index in indices:
        entry = log.entry(index)
        entries.append({"index": index, "statement": b64url(entry.statement), "receipt": b64url(entry.receipt)})
        sizes.add(parse_receipt(entry.receipt).inclusion[0].tree_size)
    witnessed = log.witnessed(max(sizes))  # the cosigned checkpoint, when one covers every entry
    if witnessed is not None:
        checkpoint_text, checkpoint = witnessed
    client = log.follower.client
    consistency = [
        {"tree_size": size, "path": [b64url(h) for h in client.consistency(size, checkpoint.size).path]}
        for size in sorted(sizes) if size < checkpoint.size
    ]
    return {
        "type": BUNDLE_TYPE, "version": BUNDLE_VERSION, "subject": did, "checkpoint": checkpoint_text,
        "entries": entries, "consistency": consistency,
    }
