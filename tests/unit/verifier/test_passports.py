"""Agent passports in the fold: the credential format, issuance checks (each refusal leaves the state as it was),
supersession, and passport_status at an explicit ``now``."""

from __future__ import annotations

import copy
import itertools
from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.errors import PayloadInvalid
from tests.unit.verifier.identity_world import HOUR, T0, World, accepted, assert_last_refused
from verifier.passports import (
    PASSPORT_CONTEXT,
    PASSPORT_TYPE,
    TIER_CAPS,
    TIMESTAMP_FORMAT,
    Verdict,
    format_timestamp,
    parse_passport,
    parse_timestamp,
    passport_status,
)

DAY = 24 * HOUR


@pytest.fixture
def world() -> World:
    w = World()
    w.register("op")
    return w


def test_passport_is_issued_with_every_field(world: World) -> None:
    entry = world.passport("agent", tier="software", lifetime=DAY)  # after the agent's consent to op
    state = world.fold()
    assert accepted(state) == [True, True, True]
    assert [o.statement_type for o in state.outcomes] == ["operator-registration", "agent-consent", "agent-passport"]
    passport = state.passports[world.did("agent")]
    assert passport.entry == entry and passport.index == 2
    assert (passport.operator, passport.agent, passport.agent_key) == (world.did("op"), world.did("agent"),
                                                                        world.mk("agent"))
    assert (passport.tier, passport.valid_from, passport.valid_until) == ("software", T0, T0 + DAY)
    assert (passport.status_index, passport.status_list) == (0, "https://status.example/lists/1")
    assert passport.signing_key == world.mk("op") and passport.jurisdiction == "EU"
    assert passport.credential["@context"] == list(PASSPORT_CONTEXT)
    assert passport.credential["type"] == list(PASSPORT_TYPE)
    assert state.passport_entries == {entry: passport}
    assert state.status_indices == {(world.did("op"), 0): entry}


def test_a_newer_passport_supersedes_and_history_is_kept(world: World) -> None:
    first = world.passport("agent")
    second = world.passport("agent", valid_from=T0 + HOUR)  # the agent consented once, before the first
    state = world.fold()
    assert accepted(state) == [True, True, True, True]
    assert state.passports[world.did("agent")].entry == second
    assert set(state.passport_entries) == {first, second}


def test_passport_after_rotation_is_signed_with_the_current_key(world: World) -> None:
    world.rotate("op", world.fold().outcomes[0].entry)
    world.passport("agent", signer="op+1", proof_key="op+1")
    state = world.fold()
    assert accepted(state) == [True, True, True, True]
    assert state.passports[world.did("agent")].signing_key == world.mk("op+1")


def test_timestamps_round_trip() -> None:
    assert format_timestamp(T0) == "2025-06-15T15:06:40Z"
    assert parse_timestamp("2025-06-15T15:06:40Z", "validFrom") == T0
    for bad in ("2025-06-15T15:06:40+00:00", "2025-06-15T15:06:40.5Z", "2025-02-30T00:00:00Z", 5):
        with pytest.raises(PayloadInvalid):
            parse_timestamp(bad, "validFrom")


@pytest.mark.parametrize("tier", ["software"])  # tpm: test_fold_enrolment (it needs an enrolment)
def test_passport_over_the_tier_cap_is_refused(world: World, tier: str) -> None:
    world.passport("agent", tier=tier, lifetime=TIER_CAPS[tier])  # exactly the cap: accepted
    world.passport("agent2", tier=tier, lifetime=TIER_CAPS[tier] + 1)
    assert accepted(world.fold())[:-1] == [True, True, True, True]
    assert_last_refused(world, "passport-validity-over-cap")


def test_passport_with_empty_validity_is_refused(world: World) -> None:
    world.passport("agent", lifetime=0)
    assert_last_refused(world, "passport-validity-empty")


def test_passport_already_expired_at_issuance_is_refused(world: World) -> None:
    world.passport("agent", iat=T0 + 24 * HOUR)
    assert_last_refused(world, "passport-expired-at-issue")


def test_passport_with_a_bad_proof_is_refused(world: World) -> None:
    world.consent("agent")
    credential = world.credential("agent")
    credential["credentialSubject"]["jurisdiction"] = "US"  # changed after signing
    world.add("op", "agent-passport", {"credential": credential})
    assert_last_refused(world, "passport-proof-invalid")


def test_passport_proof_by_a_rotated_out_key_is_refused(world: World) -> None:
    world.rotate("op", world.fold().outcomes[0].entry)
    world.passport("agent", signer="op+1", proof_key="op")  # statement by the current key, proof by the old one
    assert_last_refused(world, "passport-proof-invalid")


def test_passport_statement_signed_with_a_rotated_out_key_is_refused(world: World) -> None:
    world.rotate("op", world.fold().outcomes[0].entry)
    world.passport("agent", signer="op", proof_key="op")
    assert_last_refused(world, "signer-key-mismatch")


def test_passport_proof_by_another_key_is_refused(world: World) -> None:
    world.passport("agent", proof_key="agent")
    assert_last_refused(world, "passport-proof-invalid")


def test_passport_by_a_non_operator_is_refused(world: World) -> None:
    world.passport("agent", operator="stranger", consent=False)  # the agent cannot consent to a non-operator
    assert_last_refused(world, "passport-operator-unknown")


def test_passport_whose_issuer_is_not_the_signer_is_refused(world: World) -> None:
    world.register("op2", "beta")
    world.consent("agent", "op")
    credential = world.credential("agent", operator="op2")
    world.add("op", "agent-passport", {"credential": credential})
    assert_last_refused(world, "passport-issuer-mismatch")


def test_status_index_is_unique_per_operator(world: World) -> None:
    world.register("op2", "beta")
    first = world.passport("agent", index=7)
    world.passport("agent2", operator="op2", index=7)  # another operator: its own index space
    world.passport("agent3", index=7)
    assert all(accepted(world.fold())[:-1])
    assert_last_refused(world, "passport-status-index-used")
    assert world.fold().status_indices[(world.did("op"), 7)] == first


def test_passport_for_a_revoked_agent_is_refused(world: World) -> None:
    world.consent("agent")
    world.revoke("agent", world.did("agent"))
    world.passport("agent")
    assert_last_refused(world, "agent-revoked")


def test_passport_by_a_revoked_operator_is_refused(world: World) -> None:
    world.consent("agent")
    world.revoke("op", world.did("op"), "cessationOfOperation")
    world.passport("agent")
    assert_last_refused(world, "signer-revoked")


def test_another_operator_takes_over_only_with_the_agents_consent(world: World) -> None:
    world.register("op2", "beta")
    first = world.passport("agent")
    world.passport("agent", operator="op2", consent=False)  # without the agent's consent: never
    assert_last_refused(world, "consent-missing")
    world.entries.pop()
    world.passport("agent", operator="op2")  # the agent consents to op2: its passport supersedes op's
    state = world.fold()
    assert all(accepted(state))
    assert state.passports[world.did("agent")].operator == world.did("op2")
    assert first in state.passport_entries


def _tampered(world: World, change: dict[str, Any]) -> dict[str, Any]:
    credential = copy.deepcopy(world.credential("agent"))
    for path, value in change.items():
        target = credential
        *parents, name = path.split(".")
        for parent in parents:
            target = target[parent]
        if value is None:
            del target[name]
        else:
            target[name] = value
    return credential


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"@context": ["https://www.w3.org/ns/credentials/v2"]}, "@context must be"),
        ({"type": ["VerifiableCredential"]}, "type must be"),
        ({"id": "urn:uuid:NOT-A-UUID"}, "credential.id"),
        ({"credentialSubject.agentKey": "z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"}, "whose multikey"),
        ({"credentialSubject.operator": "did:example:other"}, "is not the credential's issuer"),
        ({"credentialSubject.substrateTier": "hsm"}, "substrateTier 'hsm'"),
        ({"credentialSubject.machineFingerprint": "md5:00"}, "machineFingerprint"),
        ({"credentialSubject.jurisdiction": "Europe"}, "jurisdiction"),
        ({"credentialSubject.policyBundle": None}, "lacks policyBundle"),
        ({"credentialStatus.statusListIndex": "007"}, "statusListIndex"),
        ({"credentialStatus.id": "https://elsewhere.example#0"}, "credentialStatus.id must be"),
        ({"credentialStatus.statusPurpose": "suspension"}, "statusPurpose must be revocation"),
        ({"validUntil": "tomorrow"}, "validUntil 'tomorrow'"),
        ({"evidence": "x"}, "members the format does not define: evidence"),
    ],
)
def test_malformed_credentials_are_refused(world: World, change: dict[str, Any], reason: str) -> None:
    credential = _tampered(world, change)
    with pytest.raises(PayloadInvalid, match=reason.replace("(", r"\(")):  # the format check meant to catch it
        parse_passport(credential, "00" * 32, 0)
    world.consent("agent")
    world.add("op", "agent-passport", {"credential": credential})
    assert_last_refused(world, "payload-invalid")


def test_passport_status_over_time(world: World) -> None:
    world.passport("agent", lifetime=10 * HOUR)
    state = world.fold()
    agent = world.did("agent")
    cases = [(T0 - 1, Verdict.BLOCK, "not_yet_valid"), (T0, Verdict.ALLOW, "ok"),
             (T0 + 9 * HOUR, Verdict.ALLOW, "ok"), (T0 + 9 * HOUR + 1, Verdict.WARN, "expiring_soon"),
             (T0 + 10 * HOUR - 1, Verdict.WARN, "expiring_soon"), (T0 + 10 * HOUR, Verdict.BLOCK, "expired")]
    for now, verdict, code in cases:
        status = passport_status(state, agent, now)
        assert (status.verdict, status.reason_code) == (verdict, code), now
        assert status.passport is state.passports[agent]
    missing = passport_status(state, world.did("nobody"), T0)
    assert (missing.verdict, missing.reason_code, missing.passport) == (Verdict.BLOCK, "not_issued", None)


@pytest.mark.parametrize(
    ("revoke", "code"),
    [("passport", "revoked"), ("agent-self", "revoked"), ("agent-by-operator", "revoked"),
     ("operator", "operator_revoked"), ("operator-key-compromise", "operator_revoked")],
)
def test_passport_status_after_revocations(world: World, revoke: str, code: str) -> None:
    entry = world.passport("agent")
    if revoke == "passport":
        world.revoke("op", entry)
    elif revoke == "agent-self":
        world.revoke("agent", world.did("agent"))
    elif revoke == "agent-by-operator":
        world.revoke("op", world.did("agent"))
    elif revoke == "operator":
        world.revoke("op", world.did("op"), "cessationOfOperation")
    else:
        world.rotate("op", world.fold().outcomes[0].entry)
        world.revoke("op+1", world.mk("op"), "keyCompromise")
    state = world.fold()
    assert all(accepted(state)), [o.reason for o in state.outcomes]
    status = passport_status(state, world.did("agent"), T0 + HOUR)
    assert (status.verdict, status.reason_code) == (Verdict.BLOCK, code)


def test_a_superseded_key_does_not_void_passports(world: World) -> None:
    world.passport("agent")
    world.rotate("op", world.fold().outcomes[0].entry)
    world.revoke("op+1", world.mk("op"), "superseded")
    state = world.fold()
    assert passport_status(state, world.did("agent"), T0 + HOUR).verdict is Verdict.ALLOW


def test_passport_revocation_only_by_its_operator(world: World) -> None:
    world.register("op2", "beta")
    entry = world.passport("agent")
    world.revoke("op2", entry)
    assert_last_refused(world, "passport-revocation-not-entitled")


def test_parse_timestamp_reads_and_refuses_as_strptime_does() -> None:
    """``parse_timestamp`` reads with ``datetime.fromisoformat`` (C); on every date and time of the passport form
    near the edges (year 0, month 13, day 32, 24:00, leap seconds) it gives strptime's answer."""
    for y, m, d, hh, mm, ss in itertools.product(("0000", "0001", "1969", "2024", "2100", "9999"), range(14),
                                                 (0, 1, 28, 29, 30, 31, 32), (0, 23, 24), (0, 59, 60), (0, 59, 60, 61)):
        text = f"{y}-{m:02d}-{d:02d}T{hh:02d}:{mm:02d}:{ss:02d}Z"
        try:
            expected: int | None = int(datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=UTC).timestamp())
        except ValueError:
            expected = None
        if expected is None:
            with pytest.raises(PayloadInvalid):
                parse_timestamp(text, "validFrom")
        else:
            assert parse_timestamp(text, "validFrom") == expected
