"""Offline verification of an audit bundle: who authorised an agent, through which chain, at which log size.

Bundle (JSON object)::

    {"type": "tabellion-audit-bundle", "version": 1,
     "subject": "<agent DID>",
     "checkpoint": "<C2SP signed checkpoint note, as served at GET /checkpoint>",
     "entries": [{"index": n, "statement": b64url, "receipt": b64url}, ...],      # increasing index
     "consistency": [{"tree_size": s, "path": [b64url, ...]}, ...]}               # s -> checkpoint size

b64url is unpadded base64url. Verification needs only the log's receipt key set (COSE Key Set) and no
network: the checkpoint must be signed by one of those (Ed25519) keys under its own origin; every
receipt must verify for its statement, name the entry's index, and lead to a root consistent with the
checkpoint (equal at the same size, else through the bundle's RFC 9162 consistency proof); the
entries are then folded in log order (a sparse fold: only these entries, trusting did:web evidence
signed by a key of the key set) and the answer is read off the folded state. What it proves: each
entry is in the log the checkpoint commits to. What it cannot prove: that the log holds no other entry
about the agent (a later revocation, say).

The checkpoint carries the witness cosignatures the log gathered (C2SP tlog-cosignature). Checked against a
C2SP tlog-policy, they show that the log showed this same checkpoint to a quorum of witnesses, each of which
checked it extends every checkpoint of the log it cosigned before: a log that shows one history to the
auditor and another to someone else must then fool the witnesses too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from schemas.base64url import b64url_decode
from schemas.checkpoint import Checkpoint, parse_checkpoint
from schemas.errors import (
    CheckpointInconsistent,
    CheckpointSignatureInvalid,
    InclusionProofInvalid,
    MalformedReceipt,
    PassportRefused,
    PayloadInvalid,
    TabellionError,
)
from schemas.note import VerifierKey, ed25519_vkey, parse_note
from schemas.policy import Policy
from verifier.checkpoints import verify_checkpoint
from verifier.delegation import chain_of, check_chain
from verifier.did_web import service_signers
from verifier.fold import Fold, FoldEntry, IdentityState
from verifier.identity_state import Passport
from verifier.keys import KeySet, public_key_bytes
from verifier.merkle import verify_consistency
from verifier.passports import check_standing, format_timestamp
from verifier.policy import verify_witnessed_checkpoint
from verifier.receipts import verify_receipt

BUNDLE_TYPE: Final = "tabellion-audit-bundle"
BUNDLE_VERSION: Final = 1


@dataclass(frozen=True)
class ChainReport:
    delegations: tuple[str, ...]  # entry ids, root first
    principals: tuple[str, ...]  # root principal first, then each hop's agent
    standing: str  # "valid" or the reason it no longer holds


@dataclass(frozen=True)
class ClaimReport:
    claim_id: str
    entry: str
    service: str
    status: str
    decided_by: str | None
    decision_entry: str | None
    human_assertion: bool


@dataclass(frozen=True)
class BundleReport:
    subject: str
    origin: str
    tree_size: int
    entries: int
    rejected: tuple[str, ...]  # entries the fold rejected, with reasons
    passport: str | None  # "entry <id> by <operator>, <tier>, valid until <epoch>"
    chains: tuple[ChainReport, ...]
    claims: tuple[ClaimReport, ...]
    revoked: str | None
    enrolment: str | None = None  # a TPM-rooted agent: its agent-enrolment and the root its EK chained to
    witnesses: tuple[str, ...] = ()  # the policy's witnesses that cosigned the checkpoint (with --policy)

    def lines(self) -> list[str]:
        out = [f"audit bundle for {self.subject}: {self.entries} entries verified against {self.origin} "
               f"at tree size {self.tree_size}"]
        if self.witnesses:
            out.append(f"checkpoint witnessed by {', '.join(self.witnesses)} (the policy's quorum is met)")
        out.append(f"passport: {self.passport or 'none in the bundle'}")
        out.append(f"hardware: {self.enrolment or 'no TPM enrolment in the bundle (a software agent)'}")
        for chain in self.chains:
            out.append(f"authorised by {chain.principals[0]} through {' -> '.join(chain.principals[1:])} "
                       f"(delegations {', '.join(e[:12] for e in chain.delegations)}): {chain.standing}")
        if not self.chains:
            out.append("authorised by: no delegation to this agent in the bundle")
        for claim in self.claims:
            who = f"{claim.status} by {claim.decided_by} (entry {claim.decision_entry})" if claim.decided_by else \
                claim.status
            human = ", with the human's passkey assertion" if claim.human_assertion else ""
            out.append(f"claim {claim.claim_id} for {claim.service}: {who}{human}")
        out.append(f"revoked: {self.revoked}" if self.revoked else "revoked: not in this bundle")
        out.extend(f"rejected entry: {r}" for r in self.rejected)
        return out


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle whose checkpoint, receipts and consistency proofs verified, with its entries folded."""

    subject: str
    checkpoint: Checkpoint
    state: IdentityState
    entries: int
    witnesses: tuple[str, ...] = ()  # the policy's witnesses that cosigned the checkpoint (with a policy)


def verify_bundle(bundle: Any, keys: KeySet, policy: Policy | None = None) -> BundleReport:
    """Verify ``bundle`` (the parsed JSON) against the log's receipt keys; raise on any failure.

    With a C2SP tlog-policy, the bundle's checkpoint must also carry the cosignatures its quorum requires
    (``verifier.policy``), and the log key that signed it must be one of the policy's logs when it lists any."""
    verified = verify_bundle_state(bundle, keys, policy)
    report = _report(verified.subject, verified.checkpoint, verified.state, verified.entries)
    return replace(report, witnesses=verified.witnesses)


def verify_bundle_state(bundle: Any, keys: KeySet, policy: Policy | None = None) -> VerifiedBundle:
    """``verify_bundle``'s checks, answering the folded state of the bundle's entries (to draw or query it)."""
    if not isinstance(bundle, dict) or bundle.get("type") != BUNDLE_TYPE or bundle.get("version") != BUNDLE_VERSION:
        raise PayloadInvalid(f"not a {BUNDLE_TYPE} version {BUNDLE_VERSION}")
    subject = bundle.get("subject")
    if not isinstance(subject, str):
        raise PayloadInvalid("the bundle names no subject")
    checkpoint, log_key = _checkpoint(bundle.get("checkpoint"), keys)
    witnesses: tuple[str, ...] = ()
    if policy is not None:
        witnessed = verify_witnessed_checkpoint(bundle["checkpoint"], policy, log_key)
        witnesses = tuple(sorted(witnessed.cosigners))
    proofs = _consistency_proofs(bundle.get("consistency"))
    entries = bundle.get("entries")
    if not isinstance(entries, list) or not entries:
        raise PayloadInvalid("the bundle holds no entries")
    fold = Fold(sparse=True, service_signers=service_signers(keys))  # the log signs its did:web evidence
    last = -1
    for i, item in enumerate(entries):
        if not isinstance(item, dict) or not isinstance(item.get("index"), int) or item["index"] <= last:
            raise PayloadInvalid(f"bundle entry {i} has no index above the previous one")
        last = item["index"]
        statement = b64url_decode(item.get("statement"), f"entry {last} statement")
        receipt = b64url_decode(item.get("receipt"), f"entry {last} receipt")
        _check_receipt(receipt, statement, last, keys, checkpoint, proofs)
        fold.apply(FoldEntry(last, statement))
    return VerifiedBundle(subject, checkpoint, fold.state, len(entries), witnesses)


def _checkpoint(text: object, keys: KeySet) -> tuple[Checkpoint, VerifierKey]:
    if not isinstance(text, str):
        raise PayloadInvalid("the bundle has no checkpoint note")
    origin = parse_checkpoint(parse_note(text).text).origin
    failures = []
    for kid in keys:
        key = keys.get(kid)
        if not isinstance(key, Ed25519PublicKey):
            continue
        vkey = ed25519_vkey(origin, public_key_bytes(key))
        try:
            return verify_checkpoint(text, vkey), vkey
        except TabellionError as exc:
            failures.append(exc.detail)
    raise CheckpointSignatureInvalid(f"no key of the key set signed the checkpoint for {origin!r}: {failures[:3]}")


def _consistency_proofs(value: object) -> dict[int, Sequence[bytes]]:
    if not isinstance(value, list):
        raise PayloadInvalid("the bundle's consistency proofs are not a list")
    proofs: dict[int, Sequence[bytes]] = {}
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("tree_size"), int) or not isinstance(
            item.get("path"), list
        ):
            raise PayloadInvalid("a consistency proof is not {tree_size, path}")
        proofs[item["tree_size"]] = [b64url_decode(h, "a consistency proof hash") for h in item["path"]]
    return proofs


def _check_receipt(
    receipt: bytes, statement: bytes, index: int, keys: KeySet, checkpoint: Checkpoint,
    proofs: dict[int, Sequence[bytes]],
) -> None:
    verified = verify_receipt(receipt, statement, keys)
    if verified.leaf_index != index:
        raise InclusionProofInvalid(f"the receipt of bundle entry {index} proves leaf {verified.leaf_index}")
    size = verified.tree_size
    if size == checkpoint.size:
        if verified.root != checkpoint.root_hash:
            raise CheckpointInconsistent(f"entry {index}'s receipt and the checkpoint differ on the root of {size}")
        return
    if size > checkpoint.size or size not in proofs:
        raise MalformedReceipt(f"no consistency proof from tree size {size} to the checkpoint's {checkpoint.size}")
    verify_consistency(size, checkpoint.size, verified.root, checkpoint.root_hash, proofs[size])


def _report(subject: str, checkpoint: Checkpoint, state: IdentityState, count: int) -> BundleReport:
    passport = state.passports.get(subject)
    chains = []
    for delegation in sorted(state.delegations.values(), key=lambda d: d.index):
        if delegation.agent != subject:
            continue
        chain = chain_of(state, delegation.entry)
        try:
            check_chain(state, delegation.entry, None)
            standing = "valid (not revoked in this bundle)"
        except TabellionError as exc:
            standing = f"no longer holds: {exc.detail}"
        principals = (chain.root_principal, *(d.agent for d in chain.delegations))
        chains.append(ChainReport(chain.entries, principals, standing))
    claims = []
    for claim in sorted(state.claims.values(), key=lambda c: c.index):
        if claim.agent != subject:
            continue
        decision = next((d for d in reversed(claim.decisions)), None)
        claims.append(ClaimReport(
            claim.claim_id, claim.entry, claim.service, claim.status,
            decision.decided_by if decision else None, decision.entry if decision else None,
            bool(decision and decision.webauthn),
        ))
    revocation = state.revocation_of(subject)
    return BundleReport(
        subject, checkpoint.origin, checkpoint.size, count,
        tuple(f"{o.entry}: [{o.code}] {o.reason}" for o in state.outcomes if not o.accepted),
        _passport_line(state, passport),
        tuple(chains), tuple(claims),
        f"at entry {revocation.index} by {revocation.by} ({revocation.reason})" if revocation else None,
        _enrolment_line(state, subject),
    )


def _enrolment_line(state: IdentityState, subject: str) -> str | None:
    """The agent's TPM enrolment in the bundle: its entry, the pinned root its EK chained to, and its standing."""
    enrolment = state.enrolments.get(subject)
    if enrolment is None:
        return None
    revoked = state.revoked.get(enrolment.entry)
    standing = f"REVOKED at entry {revoked.index} ({revoked.reason})" if revoked else "not revoked in this bundle"
    return (f"TPM 2.0 enrolment entry {enrolment.entry} ({enrolment.operator}, namespace {enrolment.namespace}); "
            f"EK chained to root sha256:{enrolment.root_sha256} pinned by trust-anchor entry {enrolment.trust_anchor}; "
            f"machine {enrolment.machine_fingerprint}; gates G1-G6 passed; approved by the passkey of approver "
            f"enrolment {enrolment.approver}; {standing}")


def _passport_line(state: IdentityState, passport: Passport | None) -> str | None:
    """The agent's newest passport in the bundle and whether anything in the bundle took it away."""
    if passport is None:
        return None
    try:
        check_standing(state, passport)
        standing = "not revoked in this bundle"
    except PassportRefused as exc:
        standing = f"REVOKED: {exc.detail}"
    return (f"entry {passport.entry} by {passport.operator}, {passport.tier}, "
            f"valid until {format_timestamp(passport.valid_until)}; {standing}")
