"""Hardware-rooted agents in the fold (verifier.enrolments): pinned TPM roots, agent enrolments by the log service
with the operator's passkey approval checked offline, the tpm tier, namespace policies requiring hardware. Each
refusal has its code and leaves the state as it was."""

from __future__ import annotations

from dataclasses import replace

import pytest

from schemas.cose_sign1 import decode_sign1
from tests.unit.verifier.identity_world import HOUR, T0, snapshot
from tests.unit.verifier.tpm_enrolment_world import TpmWorld, root_pem
from verifier.fold import Fold, FoldEntry, IdentityState
from verifier.passports import Verdict, passport_status
from verifier.webauthn import FLAG_UP

DAY = 24 * HOUR
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


@pytest.fixture
def world() -> TpmWorld:
    w = TpmWorld()
    w.register("op")
    w.enrol("human")  # the operator's passkey, an approver of its namespace
    return w


@pytest.fixture
def pem() -> str:
    return root_pem()


def _last(state: IdentityState) -> tuple[bool, str]:
    return state.outcomes[-1].accepted, state.outcomes[-1].code


def _refused_unchanged(world: TpmWorld, code: str) -> None:
    """The last entry is refused with ``code``, and the state is that of the entries before it."""
    state = world.fold()
    assert _last(state) == (False, code), state.outcomes[-1].reason
    before = Fold(service_signers=frozenset({world.did("log")})).apply_all(world.entries[:-1])
    assert snapshot(state) == snapshot(before)
    assert (state.enrolments, state.trust_anchors, state.namespace_policies) == (
        before.enrolments, before.trust_anchors, before.namespace_policies)


def test_an_enrolment_makes_a_tpm_passport_acceptable(world: TpmWorld, pem: str) -> None:
    anchor = world.anchor(pem)
    enrolment = world.enrol_agent(anchor, pem)
    world.passport("tpm-agent", tier="tpm", lifetime=7 * DAY)
    state = world.fold()
    assert [o.accepted for o in state.outcomes] == [True] * len(state.outcomes), [o.reason for o in state.outcomes]
    recorded = state.enrolments[world.did("tpm-agent")]
    assert recorded.entry == enrolment and recorded.trust_anchor == anchor and recorded.operator == world.did("op")
    assert state.trust_anchors[anchor].root_sha256 == recorded.root_sha256
    assert state.passports[world.did("tpm-agent")].tier == "tpm"
    assert passport_status(state, world.did("tpm-agent"), T0 + HOUR).verdict == Verdict.ALLOW


def test_a_tpm_passport_is_capped_at_seven_days(world: TpmWorld, pem: str) -> None:
    world.enrol_agent(world.anchor(pem), pem)
    world.passport("tpm-agent", tier="tpm", lifetime=7 * DAY + 1)
    _refused_unchanged(world, "passport-validity-over-cap")


def test_a_tpm_passport_without_an_enrolment_is_refused(world: TpmWorld) -> None:
    world.passport("tpm-agent", tier="tpm", lifetime=7 * DAY)
    _refused_unchanged(world, "passport-enrolment-missing")


def test_a_tpm_passport_of_another_machine_is_refused(world: TpmWorld, pem: str) -> None:
    world.enrol_agent(world.anchor(pem), pem, machine_fingerprint="sha256:" + "ef" * 32)
    world.passport("tpm-agent", tier="tpm", lifetime=7 * DAY)  # its fingerprint is FINGERPRINT
    _refused_unchanged(world, "passport-fingerprint-mismatch")


def test_a_tpm_passport_by_another_operator_than_the_enrolments_is_refused(world: TpmWorld, pem: str) -> None:
    world.enrol_agent(world.anchor(pem), pem)
    world.register("op2", "other")
    world.passport("tpm-agent", "op2", tier="tpm", lifetime=7 * DAY)
    _refused_unchanged(world, "passport-enrolment-missing")


def test_a_secure_enclave_passport_is_refused_loudly(world: TpmWorld) -> None:
    world.passport("agent", tier="secure-enclave", lifetime=DAY)
    _refused_unchanged(world, "passport-tier-unsupported")


def test_an_enrolment_signed_by_anyone_but_the_service_is_refused(world: TpmWorld, pem: str) -> None:
    anchor = world.anchor(pem)
    world.enrol_agent(anchor, pem, signer="op")
    _refused_unchanged(world, "service-statement-untrusted")


def test_a_root_pinned_by_a_stranger_does_not_count(world: TpmWorld, pem: str) -> None:
    anchor = world.anchor(pem, signer="stranger")
    assert _last(world.fold()) == (False, "service-statement-untrusted")
    world.enrol_agent(anchor, pem)
    _refused_unchanged(world, "agent-enrolment-root-not-pinned")


def test_an_enrolment_naming_another_root_than_its_anchor_is_refused(world: TpmWorld, pem: str) -> None:
    world.enrol_agent(world.anchor(pem), pem, ek_root_sha256="99" * 32)
    _refused_unchanged(world, "agent-enrolment-root-not-pinned")


def test_an_enrolment_whose_digest_is_not_of_its_request_is_refused(world: TpmWorld, pem: str) -> None:
    world.enrol_agent(world.anchor(pem), pem, after={"quote_sha256": "88" * 32})
    _refused_unchanged(world, "agent-enrolment-digest-mismatch")


def test_an_approval_without_user_verification_is_refused(world: TpmWorld, pem: str) -> None:
    world.enrol_agent(world.anchor(pem), pem, flags=FLAG_UP)
    _refused_unchanged(world, "webauthn-user-not-verified")


def test_an_approval_over_another_enrolment_is_refused(world: TpmWorld, pem: str) -> None:
    anchor = world.anchor(pem)
    other = world.enrolment_payload(anchor, pem, nonce="aa" * 32)
    world.enrol_agent(anchor, pem, after={"webauthn": other["webauthn"]})
    _refused_unchanged(world, "webauthn-challenge-mismatch")


def test_an_approval_by_a_passkey_not_enrolled_in_the_namespace_is_refused(world: TpmWorld, pem: str) -> None:
    world.enrol_agent(world.anchor(pem), pem, human="stranger-human")
    _refused_unchanged(world, "webauthn-credential-unknown")


def test_an_enrolment_for_an_operator_that_does_not_own_the_namespace_is_refused(world: TpmWorld, pem: str) -> None:
    world.register("op2", "other")
    world.enrol_agent(world.anchor(pem), pem, operator="op2")
    _refused_unchanged(world, "agent-enrolment-operator-mismatch")


def test_a_revoked_enrolment_takes_the_tpm_passport_away(world: TpmWorld, pem: str) -> None:
    enrolment = world.enrol_agent(world.anchor(pem), pem)
    world.passport("tpm-agent", tier="tpm", lifetime=7 * DAY)
    world.add("stranger", "revocation", {"target": enrolment, "reason": "keyCompromise"})
    _refused_unchanged(world, "agent-enrolment-revocation-not-entitled")
    world.entries.pop()
    world.add("op", "revocation", {"target": enrolment, "reason": "keyCompromise"})
    state = world.fold()
    assert _last(state) == (True, "")
    status = passport_status(state, world.did("tpm-agent"), T0 + HOUR)
    assert (status.verdict, status.reason_code) == (Verdict.BLOCK, "enrolment_revoked")


# --- namespace policies ----------------------------------------------------------------------------------------


def test_a_hardware_policy_refuses_software_passports(world: TpmWorld, pem: str) -> None:
    world.passport("agent")  # a software passport, before the policy
    world.add("op", "namespace-policy", {"namespace": "acme", "require_hardware": True})
    state = world.fold()
    assert _last(state) == (True, "")
    status = passport_status(state, world.did("agent"), T0 + HOUR)
    assert (status.verdict, status.reason_code) == (Verdict.BLOCK, "hardware_required")
    world.passport("agent2")
    _refused_unchanged(world, "passport-hardware-required")
    world.entries.pop()
    world.enrol_agent(world.anchor(pem), pem)
    world.passport("tpm-agent", tier="tpm", lifetime=7 * DAY)
    assert _last(world.fold()) == (True, "")


def test_only_the_namespace_owner_sets_its_policy(world: TpmWorld) -> None:
    world.add("stranger", "namespace-policy", {"namespace": "acme", "require_hardware": True})
    _refused_unchanged(world, "not-namespace-owner")
    world.entries.pop()
    world.register("op2", "other")
    world.add("op2", "namespace-policy", {"namespace": "acme", "require_hardware": True})
    _refused_unchanged(world, "not-namespace-owner")
    world.entries.pop()
    world.add("op", "namespace-policy", {"namespace": "nobody", "require_hardware": True})
    _refused_unchanged(world, "namespace-unknown")


def test_a_lifted_policy_lets_software_passports_through_again(world: TpmWorld) -> None:
    world.add("op", "namespace-policy", {"namespace": "acme", "require_hardware": True})
    world.add("op", "namespace-policy", {"namespace": "acme", "require_hardware": False}, iat=T0 + 1)
    world.passport("agent")
    assert _last(world.fold()) == (True, "")


def test_rebuild_equals_incremental(world: TpmWorld, pem: str) -> None:
    world.enrol_agent(world.anchor(pem), pem)
    world.add("op", "namespace-policy", {"namespace": "acme", "require_hardware": True})
    world.passport("tpm-agent", tier="tpm", lifetime=7 * DAY)
    whole = world.fold()
    fold = Fold(service_signers=frozenset({world.did("log")}))
    for entry in world.entries:
        fold.apply(FoldEntry(entry.index, entry.statement))
    assert fold.state.enrolments == whole.enrolments and fold.state.passports == whole.passports


def test_an_approval_by_a_human_whose_did_was_revoked_is_refused(world: TpmWorld, pem: str) -> None:
    """The human revoked their own DID (they left; the key leaked) but their passkey's enrolment was not revoked:
    their passkey no longer approves anything in the operator's name, as it no longer decides a claim."""
    anchor = world.anchor(pem)
    world.revoke("human", world.did("human"))
    world.enrol_agent(anchor, pem)
    _refused_unchanged(world, "approver-revoked")


def test_the_service_unpins_a_root_by_revoking_its_trust_anchor(world: TpmWorld, pem: str) -> None:
    """docs/tpm.md: revoking the trust-anchor entry unpins the root for later enrolments. Only the log service
    revokes it: not the operator whose agents chain to it, not a stranger."""
    anchor = world.anchor(pem)
    world.revoke("op", anchor, "cACompromise")
    _refused_unchanged(world, "trust-anchor-revocation-not-entitled")
    world.revoke("stranger", anchor, "cACompromise")
    _refused_unchanged(world, "trust-anchor-revocation-not-entitled")
    world.revoke("log", anchor, "cACompromise")
    assert _last(world.fold()) == (True, "")
    world.enrol_agent(anchor, pem)
    _refused_unchanged(world, "agent-enrolment-root-not-pinned")


def _malleated(statement: bytes) -> bytes:
    """The same ES256 statement signed "again" without the key: (r, s) -> (r, n - s) verifies too."""
    message = decode_sign1(statement)
    r, s = message.signature[:32], int.from_bytes(message.signature[32:], "big")
    return replace(message, signature=r + (P256_ORDER - s).to_bytes(32, "big")).encode()


def test_a_stranger_cannot_bring_back_an_old_namespace_policy() -> None:
    """A P-256 (ES256) operator requires hardware, then lifts it. Anyone may re-log the first policy statement
    under a malleated signature (a new entry: its leaf differs): the namespace must not require hardware again
    on a stranger's word, nor lift a requirement the owner set since."""
    world = TpmWorld()
    world.register("tpm-op", "hw")
    first = world.sign("tpm-op", "namespace-policy", {"namespace": "hw", "require_hardware": True}, iat=T0)
    world.entries.append(FoldEntry(len(world.entries), first))
    world.add("tpm-op", "namespace-policy", {"namespace": "hw", "require_hardware": False}, iat=T0 + 1)
    assert [o.accepted for o in world.fold().outcomes] == [True, True, True]
    world.entries.append(FoldEntry(len(world.entries), _malleated(first)))
    _refused_unchanged(world, "namespace-policy-not-newer")
