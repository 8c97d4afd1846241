"""Agent passports: the W3C VC 2.0 credential an operator issues for one of its agents, as the fold checks it.

The statement
-------------
An ``agent-passport`` statement (content type ``application/vnd.tabellion.agent-passport+json``) is signed by
the operator with the key current for it on the log; its CWT ``iss`` is the operator DID (``sub`` should be
the agent DID). The payload is ``{"credential": <credential>}`` as RFC 8785 canonical JSON.

The credential
--------------
Exactly these members (``name`` and ``description``, strings, may be added; nothing else); every value is a
string unless shown otherwise::

    {
      "@context": PASSPORT_CONTEXT (as a list, in this order),
      "type": PASSPORT_TYPE (as a list, in this order),
      "id": "urn:uuid:<lower-case UUID, 8-4-4-4-12 hex>",
      "issuer": "<operator DID: the statement's iss, registered on the log, not revoked>",
      "validFrom": "YYYY-MM-DDTHH:MM:SSZ",      (UTC, no fractions: see format_timestamp)
      "validUntil": "YYYY-MM-DDTHH:MM:SSZ",     (after validFrom, at most TIER_CAPS[tier] seconds later)
      "credentialSubject": {
        "id": "<agent did:key>",
        "agentKey": "<the agent's multikey: its did:key without 'did:key:'>",
        "operator": "<operator DID, equal to issuer>",
        "machineFingerprint": "sha256:<64 lower-case hex>",
        "substrateTier": "software" | "tpm" | "secure-enclave",
        "jurisdiction": "<ISO 3166-1 alpha-2 or a region code such as EU, optionally -<subdivision>: DE, EU, US-CA>",
        "policyBundle": "sha256:<64 lower-case hex>"
      },
      "credentialStatus": {
        "id": "<statusListCredential>#<statusListIndex>",
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": "<decimal, no leading zeros, below 2^32>",
        "statusListCredential": "<http(s) URL of the operator's status list credential, no fragment>"
      },
      "proof": {
        "type": "DataIntegrityProof", "cryptosuite": "eddsa-jcs-2022", "created": "<dateTimeStamp>",
        "verificationMethod": "<operator DID>#<operator's current multikey>",
        "proofPurpose": "assertionMethod", "@context": <copy of the credential's>, "proofValue": "z…"
      }
    }

``unsigned_passport`` builds the credential without its proof; ``verifier.data_integrity.create_proof(credential,
operator_private_key, passport_verification_method(operator, current_multikey), created)`` adds the proof. The
operator's current key must be Ed25519 (eddsa-jcs-2022).

What the fold refuses
---------------------
A passport is refused when the credential breaks the format above; when issuer, ``credentialSubject.operator``
and the statement's iss differ; when the operator is not a registered controller or is revoked; when the agent
(its DID or its key) is revoked; when the tier is ``tpm`` and the agent has no unrevoked enrolment by this
operator with the same machine fingerprint, or ``secure-enclave`` (not supported), or ``software`` under a namespace
policy that requires hardware (``verifier.enrolments``); when the validity is empty or longer than the tier's
cap; when it had already expired at the statement's ``iat``; when the operator already used that
``statusListIndex`` for an accepted passport; when the agent has not consented to this operator (its newest
``agent-consent`` names another, or none, or was withdrawn); and when the proof does not verify against the
operator's current key (a key the operator rotated out is refused by name). A newer passport for the same agent
supersedes the older one, which stays in ``IdentityState.passport_entries``: an agent that consented to another
operator can so be issued a passport by it while the old one is still valid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from schemas.errors import PassportRefused, PayloadInvalid, ProofInvalid, TabellionError
from schemas.identity_statements import canonical_json
from schemas.jsonld_contexts import AGENT_PASSPORT_CONTEXT
from verifier.data_integrity import KeyResolver, verify_proof
from verifier.enrolments import HARDWARE_TIERS, check_tier, enrolment_of, hardware_required
from verifier.identity_state import DID_KEY, IdentityState, LoggedStatement, Passport, multikey_key
from verifier.refusals import Refusal, Refused

PASSPORT_CONTEXT: Final = ("https://www.w3.org/ns/credentials/v2", AGENT_PASSPORT_CONTEXT)
"""The VC 2.0 context, then Tabellion's (``schemas/contexts/agent-passport-v1.jsonld``, served by the service at
``/ns/agent-passport/v1``), which defines ``AgentPassport`` and every ``credentialSubject`` term below."""
PASSPORT_TYPE: Final = ("VerifiableCredential", "AgentPassport")
STATUS_ENTRY_TYPE: Final = "BitstringStatusListEntry"
STATUS_PURPOSE: Final = "revocation"
PROOF_PURPOSE: Final = "assertionMethod"
HOUR: Final = 3600
DAY: Final = 24 * HOUR
TIER_CAPS: Final = {"software": 24 * HOUR, "tpm": 7 * DAY, "secure-enclave": 47 * DAY}
"""The longest validity (validUntil - validFrom, seconds) a passport may have, by substrate tier."""
WARN_FRACTION: Final = 10  # WARN when less than 1/10 of the validity remains
COMPROMISE_REASONS: Final = frozenset({"keyCompromise", "cACompromise", "aACompromise"})
TIMESTAMP_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"

_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", re.ASCII)
_UUID_URN = re.compile(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII)
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}", re.ASCII)
_JURISDICTION = re.compile(r"[A-Z]{2}(?:-[A-Z0-9]{1,3})?", re.ASCII)
_INDEX = re.compile(r"0|[1-9][0-9]{0,9}", re.ASCII)
_URL = re.compile(r"https?://[^\s#]{1,2040}", re.ASCII)
_DID = re.compile(r"did:[a-z0-9]+:[A-Za-z0-9._:%-]+", re.ASCII)
_MAX_INDEX: Final = 2**32
_TOP: Final = frozenset({"@context", "type", "id", "issuer", "validFrom", "validUntil", "credentialSubject",
                         "credentialStatus", "proof"})
_OPTIONAL_TOP: Final = frozenset({"name", "description"})
_SUBJECT: Final = frozenset({"id", "agentKey", "operator", "machineFingerprint", "substrateTier", "jurisdiction",
                             "policyBundle"})
_STATUS: Final = frozenset({"id", "type", "statusPurpose", "statusListIndex", "statusListCredential"})


class Verdict(StrEnum):
    ALLOW = "allow"
    WARN = "warn"
    BLOCK = "block"


@dataclass(frozen=True)
class PassportStatus:
    """``reason_code``: ``ok``, ``expiring_soon`` (WARN), or a PassportRefused code (BLOCK)."""

    verdict: Verdict
    reason_code: str
    passport: Passport | None
    detail: str


# --- the format ---------------------------------------------------------------------------------------------


def format_timestamp(epoch: int) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` (UTC) for seconds since the epoch: the form of validFrom and validUntil."""
    return datetime.fromtimestamp(epoch, UTC).strftime(TIMESTAMP_FORMAT)


def parse_timestamp(value: object, name: str) -> int:
    if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
        raise PayloadInvalid(f"passport {name} {str(value)[:40]!r} is not a UTC timestamp YYYY-MM-DDTHH:MM:SSZ")
    try:  # the form is checked above: fromisoformat (C) reads it as strptime does, and refuses what it refuses
        return int(datetime.fromisoformat(value).timestamp())
    except ValueError:
        pass
    try:  # to say why in strptime's words
        return int(datetime.strptime(value, TIMESTAMP_FORMAT).replace(tzinfo=UTC).timestamp())
    except ValueError as exc:
        raise PayloadInvalid(f"passport {name} {value!r} is not a valid date and time: {exc}") from exc


def passport_verification_method(operator: str, multikey: str) -> str:
    """The proof's verificationMethod: ``<operator DID>#<operator's current multikey>``."""
    return f"{operator}#{multikey}"


def unsigned_passport(
    *, credential_id: str, operator: str, agent: str, tier: str, valid_from: int, valid_until: int,
    machine_fingerprint: str, jurisdiction: str, policy_bundle: str, status_list: str, status_index: int,
) -> dict[str, Any]:
    """The passport credential without its proof, in the format above (not checked here: the fold checks)."""
    return {
        "@context": list(PASSPORT_CONTEXT),
        "type": list(PASSPORT_TYPE),
        "id": credential_id,
        "issuer": operator,
        "validFrom": format_timestamp(valid_from),
        "validUntil": format_timestamp(valid_until),
        "credentialSubject": {
            "id": agent, "agentKey": agent.removeprefix(DID_KEY), "operator": operator,
            "machineFingerprint": machine_fingerprint, "substrateTier": tier, "jurisdiction": jurisdiction,
            "policyBundle": policy_bundle,
        },
        "credentialStatus": {
            "id": f"{status_list}#{status_index}", "type": STATUS_ENTRY_TYPE, "statusPurpose": STATUS_PURPOSE,
            "statusListIndex": str(status_index), "statusListCredential": status_list,
        },
    }


def _object(value: object, where: str, members: frozenset[str], optional: frozenset[str] = frozenset()) -> dict[
    str, Any
]:
    if not isinstance(value, dict):
        raise PayloadInvalid(f"passport {where} must be a JSON object")
    if value.keys() == members:  # the usual case: every member, nothing else
        return value
    missing = sorted(members - value.keys())
    if missing:
        raise PayloadInvalid(f"passport {where} lacks {', '.join(missing)}")
    extra = sorted(value.keys() - members - optional)
    if extra:
        raise PayloadInvalid(f"passport {where} has members the format does not define: {', '.join(extra)[:200]}")
    return value


def _text(obj: dict[str, Any], name: str, where: str, pattern: re.Pattern[str] | None = None) -> str:
    value = obj[name]
    if not isinstance(value, str) or (pattern is not None and not pattern.fullmatch(value)):
        raise PayloadInvalid(f"passport {where}.{name} {str(value)[:80]!r} is not in the passport format")
    return value


def parse_passport(credential: object, entry: str, index: int, signing_key: str = "", payload: bytes = b"") -> Passport:
    """The passport a credential describes, its format checked (not its proof, issuer or state: see the fold);
    ``signing_key``: the operator's multikey the fold checks its proof against; ``payload``: the statement's
    canonical payload ``{"credential": credential}`` (made from ``credential`` when not given)."""
    vc = _object(credential, "credential", _TOP, _OPTIONAL_TOP)
    if vc["@context"] != list(PASSPORT_CONTEXT):
        raise PayloadInvalid(f"passport @context must be {list(PASSPORT_CONTEXT)}")
    if vc["type"] != list(PASSPORT_TYPE):
        raise PayloadInvalid(f"passport type must be {list(PASSPORT_TYPE)}")
    for name in _OPTIONAL_TOP & vc.keys():
        _text(vc, name, "credential")
    _text(vc, "id", "credential", _UUID_URN)
    operator = _text(vc, "issuer", "credential", _DID)
    subject = _object(vc["credentialSubject"], "credentialSubject", _SUBJECT)
    status = _object(vc["credentialStatus"], "credentialStatus", _STATUS)
    agent = _text(subject, "id", "credentialSubject", _DID)
    if _text(subject, "operator", "credentialSubject") != operator:
        raise PayloadInvalid("passport credentialSubject.operator is not the credential's issuer")
    agent_key = _text(subject, "agentKey", "credentialSubject")
    if not agent.startswith(DID_KEY) or agent_key != agent[len(DID_KEY) :]:
        raise PayloadInvalid("passport credentialSubject.id must be a did:key whose multikey is agentKey")
    multikey_key(agent_key)  # the agent key must decode (Ed25519 or P-256)
    tier = _text(subject, "substrateTier", "credentialSubject")
    if tier not in TIER_CAPS:
        raise PayloadInvalid(f"passport substrateTier {tier[:40]!r} is not one of {', '.join(TIER_CAPS)}")
    if _text(status, "type", "credentialStatus") != STATUS_ENTRY_TYPE:
        raise PayloadInvalid(f"passport credentialStatus.type must be {STATUS_ENTRY_TYPE}")
    if _text(status, "statusPurpose", "credentialStatus") != STATUS_PURPOSE:
        raise PayloadInvalid(f"passport credentialStatus.statusPurpose must be {STATUS_PURPOSE}")
    status_index = int(_text(status, "statusListIndex", "credentialStatus", _INDEX))
    status_list = _text(status, "statusListCredential", "credentialStatus", _URL)
    if status_index >= _MAX_INDEX:
        raise PayloadInvalid(f"passport statusListIndex {status_index} is not below 2^32")
    if _text(status, "id", "credentialStatus") != f"{status_list}#{status_index}":
        raise PayloadInvalid("passport credentialStatus.id must be <statusListCredential>#<statusListIndex>")
    return Passport(
        entry=entry, index=index, operator=operator, agent=agent, agent_key=agent_key, signing_key=signing_key,
        tier=tier,
        valid_from=parse_timestamp(vc["validFrom"], "validFrom"),
        valid_until=parse_timestamp(vc["validUntil"], "validUntil"),
        status_index=status_index, status_list=status_list,
        machine_fingerprint=_text(subject, "machineFingerprint", "credentialSubject", _SHA256),
        jurisdiction=_text(subject, "jurisdiction", "credentialSubject", _JURISDICTION),
        policy_bundle=_text(subject, "policyBundle", "credentialSubject", _SHA256),
        payload=payload or canonical_json({"credential": vc}),
    )


# --- the transition -----------------------------------------------------------------------------------------


def check_issuance(state: IdentityState, s: LoggedStatement) -> Passport:
    """The passport an agent-passport statement issues; raise the reason it cannot (state is not changed)."""
    controller = state.controllers.get(s.issuer)
    passport = parse_passport(s.payload["credential"], s.entry, s.index, controller.key if controller else "",
                              s.statement.payload)
    operator, agent = passport.operator, passport.agent
    if operator != s.issuer:
        raise Refused(Refusal.PASSPORT_ISSUER_MISMATCH,
                      f"iss {s.issuer[:200]} is not the passport's issuer {operator[:200]}")
    controller = state.controllers.get(operator)
    if controller is None:
        raise Refused(Refusal.PASSPORT_OPERATOR_UNKNOWN,
                      f"passport issuer {operator[:200]} is not an operator registered on this log")
    for who, did, refusal in (("operator", operator, Refusal.OPERATOR_REVOKED),
                              ("agent", agent, Refusal.AGENT_REVOKED)):
        revoked = state.revocation_of(did)
        if revoked is not None:
            raise Refused(refusal, f"the {who} {did[:200]} was revoked at entry {revoked.index} ({revoked.reason})")
    if state.bound_operator(agent) != operator:
        raise Refused(Refusal.CONSENT_MISSING,
                      f"the agent {agent[:200]} has not consented to operator {operator[:200]} (agent-consent)")
    check_tier(state, operator, agent, passport.tier, passport.machine_fingerprint)
    cap = TIER_CAPS[passport.tier]
    if passport.valid_until <= passport.valid_from:
        raise Refused(Refusal.PASSPORT_VALIDITY_EMPTY, "passport validUntil is not after validFrom")
    if passport.valid_until - passport.valid_from > cap:
        raise Refused(
            Refusal.PASSPORT_VALIDITY_OVER_CAP,
            f"passport validity of {passport.valid_until - passport.valid_from} s is over the {passport.tier} "
            f"tier cap of {cap} s"
        )
    if s.issued_at is not None and s.issued_at >= passport.valid_until:
        raise Refused(Refusal.PASSPORT_EXPIRED_AT_ISSUE,
                      f"the passport had already expired when it was issued (iat {s.issued_at})")
    used = state.status_indices.get((operator, passport.status_index))
    if used is not None:
        raise Refused(
            Refusal.PASSPORT_STATUS_INDEX_USED,
            f"statusListIndex {passport.status_index} is already used by this operator's passport entry {used}"
        )
    try:
        # the credential as decoded from the payload (``passport.credential`` would decode it again)
        verify_proof(s.payload["credential"], _current_key_of(state, operator), PROOF_PURPOSE)
    except TabellionError as exc:
        raise Refused(Refusal.PASSPORT_PROOF_INVALID, f"the passport's proof does not verify: {exc}") from exc
    return passport


def _current_key_of(state: IdentityState, operator: str) -> KeyResolver:
    controller = state.controllers[operator]

    def resolve(method: str) -> Ed25519PublicKey:
        did, _, fragment = method.partition("#")
        if did != operator:
            raise ProofInvalid(f"verification method {method[:200]} is not a key of the issuer {operator[:200]}")
        if fragment != controller.key:
            if any(event.key == fragment for event in controller.history):
                raise ProofInvalid(
                    f"the proof is made with key {fragment[:60]}, which the operator rotated out (its current key "
                    f"dates from entry {controller.history[-1].index})"
                )
            raise ProofInvalid(f"the proof names {fragment[:60]!r}, which is not the operator's current key")
        key = multikey_key(fragment)
        if not isinstance(key, Ed25519PublicKey):
            raise ProofInvalid("the operator's current key is P-256; eddsa-jcs-2022 needs an Ed25519 key")
        return key

    return resolve


# --- queries ------------------------------------------------------------------------------------------------


def check_standing(state: IdentityState, passport: Passport) -> None:
    """Raise ``PassportRefused`` (``revoked``/``operator_revoked``) if anything revoked takes the passport away."""
    for what, target in (("the agent", passport.agent), ("the passport", passport.entry)):
        revoked = state.revocation_of(target) if target.startswith("did:") else state.revoked.get(target)
        if revoked is not None:
            raise PassportRefused(
                f"{what} {target[:200]} was revoked at entry {revoked.index} ({revoked.reason})", "revoked"
            )
    if passport.tier in HARDWARE_TIERS and enrolment_of(state, passport.agent) is None:
        raise PassportRefused(f"the agent's TPM enrolment behind passport entry {passport.entry} was revoked",
                              "enrolment_revoked")
    policy = hardware_required(state, passport.operator) if passport.tier not in HARDWARE_TIERS else None
    if policy is not None:
        raise PassportRefused(f"namespace {policy.namespace!r} requires hardware-rooted agents since entry "
                              f"{policy.entry}; this passport is of tier {passport.tier}", "hardware_required")
    revoked = state.revocation_of(passport.operator)
    if revoked is not None:
        raise PassportRefused(
            f"the issuing operator {passport.operator[:200]} was revoked at entry {revoked.index} ({revoked.reason})",
            "operator_revoked",
        )
    revoked = state.revoked.get(passport.signing_key)
    if revoked is not None and revoked.reason in COMPROMISE_REASONS:
        raise PassportRefused(
            f"the operator key that signed the passport was revoked at entry {revoked.index} ({revoked.reason})",
            "operator_revoked",
        )


def require_passport(state: IdentityState, agent: str, now: int) -> PassportStatus:
    """The agent's passport status at ``now`` if it is usable (ALLOW or WARN); raise ``PassportRefused`` if not."""
    passport = state.passports.get(agent)
    if passport is None:
        raise PassportRefused(f"no passport was issued to {agent[:200]} on this log", "not_issued")
    check_standing(state, passport)
    if now < passport.valid_from:
        raise PassportRefused(
            f"passport entry {passport.entry} is valid from {format_timestamp(passport.valid_from)}", "not_yet_valid"
        )
    if now >= passport.valid_until:
        raise PassportRefused(
            f"passport entry {passport.entry} expired at {format_timestamp(passport.valid_until)}", "expired"
        )
    remaining = passport.valid_until - now
    if remaining * WARN_FRACTION < passport.valid_until - passport.valid_from:
        return PassportStatus(Verdict.WARN, "expiring_soon", passport, f"{remaining} s of validity remain")
    return PassportStatus(Verdict.ALLOW, "ok", passport, f"valid until {format_timestamp(passport.valid_until)}")


def passport_status(state: IdentityState, agent: str, now: int) -> PassportStatus:
    """ALLOW (``ok``), WARN (``expiring_soon``: under a tenth of the validity left) or BLOCK with the reason."""
    try:
        return require_passport(state, agent, now)
    except PassportRefused as exc:
        return PassportStatus(Verdict.BLOCK, exc.reason_code, state.passports.get(agent), exc.detail)
