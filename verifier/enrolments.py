"""Hardware-rooted agents, as the fold sees them: pinned TPM roots, agent enrolments, namespace policies.

The TPM evidence itself (EK certificate chain, quote, certification, credential activation) is checked online by
the transparency service's six gates (``transparency.tpm``, docs/tpm.md), which need no TPM but do need X.509 and
TPM structure parsing. The fold reads only what the service logged, and checks what can be checked offline:

- ``trust-anchor`` (log service only) of kind ``x509-root-pem`` and purpose ``tpm-endorsement``: a root that EK
  certificate chains may reach. Its PEM must be one X.509 certificate; the fold keeps the SHA-256 of its DER.
- ``agent-enrolment`` (log service only): the agent's TPM-resident P-256 did:key, its operator and namespace, the
  evidence's digests, the pinned root its EK chained to (the trust-anchor entry, which must be accepted earlier in
  the log and still unrevoked, with that root), and the operator's approval: a WebAuthn assertion, user
  verified, by a passkey enrolled as an approver of the namespace (``approver-enrolment``) for a human whose DID is
  not revoked, whose challenge is ``enrolment_digest``, recomputed here from the payload. The operator must own
  the namespace. The newest enrolment of an agent wins; it is revoked by a ``revocation`` of its entry by the
  operator or the agent.
- ``namespace-policy``, signed by the namespace's owner: with ``require_hardware``, passports of the software tier
  issued by that operator are refused from then on (``verifier.passports``). The newest policy wins, and a new one
  needs an ``iat`` later than the policy in force (``namespace-policy-not-newer``): an ES256 signature can be
  re-made without the key, so anyone could otherwise re-log an old policy as a new entry.

A passport of tier ``tpm`` is accepted only for an agent with an unrevoked enrolment by the same operator, whose
machine fingerprint it repeats; ``secure-enclave`` passports are refused (Apple Secure Enclave / App Attest is not
supported: nothing on the log could vouch for it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from schemas.base64url import b64url
from schemas.errors import AssertionCredentialRevoked, AssertionCredentialUnknown
from schemas.identity_statements import canonical_json
from verifier.identity_state import IdentityState, LoggedStatement
from verifier.refusals import Refusal, Refused
from verifier.webauthn import Assertion, b64url_decode, verify_assertion

TPM_ENDORSEMENT: Final = "tpm-endorsement"
X509_ROOT_PEM: Final = "x509-root-pem"
GATES: Final = ("G1", "G2", "G3", "G4", "G5", "G6")
ENROLMENT_REQUEST: Final = ("agent", "operator", "namespace", "platform", "machine_fingerprint",
                            "ek_certificate_sha256", "ak_name", "quote_sha256", "certify_sha256", "agent_key_name",
                            "nonce")
"""The members of an enrolment that the operator's passkey approves (``enrolment_digest``)."""
HARDWARE_TIERS: Final = frozenset({"tpm"})
UNSUPPORTED_TIERS: Final = frozenset({"secure-enclave"})
Commit = Callable[[], None]


@dataclass(frozen=True)
class TrustAnchor:
    """An accepted trust-anchor pinning a TPM endorsement root: the SHA-256 of the root's DER, and its PEM."""

    entry: str
    index: int
    root_sha256: str
    pem: str


@dataclass(frozen=True)
class AgentEnrolment:
    """An accepted ``agent-enrolment``: the agent's key is TPM-resident, its EK chained to ``root_sha256``."""

    entry: str
    index: int
    agent: str
    operator: str
    namespace: str
    machine_fingerprint: str
    ek_certificate_sha256: str
    root_sha256: str
    trust_anchor: str
    ak_name: str
    approver: str  # the approver-enrolment entry whose passkey approved it
    enrolled_at: int


@dataclass(frozen=True)
class NamespacePolicy:
    entry: str
    index: int
    namespace: str
    require_hardware: bool
    issued_at: int  # its CWT iat: a later policy of the namespace must be issued later (a replay is not)


def enrolment_digest(payload: dict[str, Any]) -> bytes:
    """SHA-256 of the RFC 8785 JSON of the enrolment request's members (``ENROLMENT_REQUEST``): the challenge the
    operator's passkey signs (G6). Agent, service and fold compute it from the same values."""
    return hashlib.sha256(canonical_json({k: payload[k] for k in ENROLMENT_REQUEST})).digest()


def root_sha256(pem: str) -> str:
    """SHA-256 (hex) of the DER of the one X.509 certificate ``pem`` holds; ``Refused`` if it holds none."""
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode())
    except ValueError as exc:
        raise Refused(Refusal.TRUST_ANCHOR_INVALID, f"the anchor is not a PEM X.509 certificate: {exc}") from exc
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


# --- transitions ---------------------------------------------------------------------------------------------


def accept_trust_anchor(state: IdentityState, s: LoggedStatement) -> Commit:
    """A trust-anchor from the log service (the caller checked the signer): a TPM endorsement root is recorded."""
    p = s.payload
    if p.get("purpose") != TPM_ENDORSEMENT:
        return _nothing
    if p["kind"] != X509_ROOT_PEM:
        raise Refused(Refusal.TRUST_ANCHOR_INVALID, "a tpm-endorsement anchor must be an x509-root-pem")
    anchor = TrustAnchor(s.entry, s.index, root_sha256(p["anchor"]), p["anchor"])
    return lambda: state.trust_anchors.__setitem__(s.entry, anchor)


def check_agent_enrolment(state: IdentityState, s: LoggedStatement) -> tuple[AgentEnrolment, int]:
    """The enrolment an ``agent-enrolment`` from the log service records, with the approver passkey's signature
    counter; raise why it cannot be (module docstring). The caller checked that a service signer signed it."""
    p = s.payload
    agent, operator, namespace = p["agent"], p["operator"], p["namespace"]
    if state.namespaces.get(namespace) != operator:
        raise Refused(Refusal.AGENT_ENROLMENT_OPERATOR_MISMATCH,
                      f"{operator[:200]} is not the owner of namespace {namespace!r} on this log")
    for who, did in (("operator", operator), ("agent", agent)):
        revoked = state.revocation_of(did)
        if revoked is not None:
            raise Refused(Refusal.AGENT_REVOKED if who == "agent" else Refusal.OPERATOR_REVOKED,
                          f"the {who} {did[:200]} was revoked at entry {revoked.index} ({revoked.reason})")
    anchor = state.trust_anchors.get(p["trust_anchor"])
    if anchor is None or p["trust_anchor"] in state.revoked or anchor.root_sha256 != p["ek_root_sha256"]:
        raise Refused(Refusal.AGENT_ENROLMENT_ROOT_NOT_PINNED,
                      f"entry {p['trust_anchor']} is not an unrevoked trust anchor pinning root {p['ek_root_sha256']}")
    digest = enrolment_digest(p)
    if digest.hex() != p["enrolment_digest"]:
        raise Refused(Refusal.AGENT_ENROLMENT_DIGEST_MISMATCH,
                      "enrolment_digest is not SHA-256 of the canonical enrolment request it names")
    approver_entry, sign_count = check_operator_approval(state, namespace, p["webauthn"], digest)
    return AgentEnrolment(s.entry, s.index, agent, operator, namespace, p["machine_fingerprint"],
                          p["ek_certificate_sha256"], p["ek_root_sha256"], p["trust_anchor"], p["ak_name"],
                          approver_entry, p["enrolled_at"]), sign_count


def check_operator_approval(state: IdentityState, namespace: str, webauthn: dict[str, Any],
                            digest: bytes) -> tuple[str, int]:
    """G6, offline: ``webauthn`` is a user-verified assertion over ``digest`` by a passkey enrolled (and not revoked)
    as an approver of ``namespace``, for a human whose DID is not revoked either (``approver-revoked``), its counter
    above that of the passkey's last logged use. Returns the approver-enrolment entry and the new counter; raises
    the WebAuthn check's own error."""
    credential = b64url(b64url_decode(webauthn.get("credential_id"), "webauthn credential_id"))
    entry = state.approver_credentials.get((namespace, credential))
    if entry is None:
        raise AssertionCredentialUnknown(f"credential {credential[:60]} is not an enrolled approver of {namespace!r}")
    revoked = state.revoked.get(entry)
    if revoked is not None:
        raise AssertionCredentialRevoked(f"credential {credential[:60]} (enrolment {entry}) was revoked at entry "
                                         f"{revoked.index} ({revoked.reason})")
    approver = state.approvers[entry]
    human = state.revocation_of(approver.approver)
    if human is not None:
        raise Refused(Refusal.APPROVER_REVOKED,
                      f"the approver {approver.approver[:200]} whose passkey made the approval was revoked at entry "
                      f"{human.index} ({human.reason})")
    verified = verify_assertion(Assertion.from_json(webauthn),
                                credential_public_key=b64url_decode(approver.public_key, "public_key"),
                                challenge=digest, rp_id=approver.rp_id, origin=approver.origin,
                                stored_sign_count=state.sign_counts.get(entry, 0))
    return entry, verified.sign_count


def check_namespace_policy(state: IdentityState, s: LoggedStatement) -> NamespacePolicy:
    namespace = s.payload["namespace"]
    owner = state.namespaces.get(namespace)
    if owner is None:
        raise Refused(Refusal.NAMESPACE_UNKNOWN, f"namespace {namespace!r} is not registered on this log")
    if s.issuer != owner:
        raise Refused(Refusal.NOT_NAMESPACE_OWNER,
                      f"{s.issuer[:200]} is not the owner of namespace {namespace!r}; only {owner[:200]} sets its "
                      "policy")
    current = state.namespace_policies.get(namespace)
    if s.issued_at is None or (current is not None and s.issued_at <= current.issued_at):
        raise Refused(
            Refusal.NAMESPACE_POLICY_NOT_NEWER,
            f"a namespace policy needs an iat later than the namespace's policy in force "
            f"({current.issued_at if current else '-'}); an older policy, or the same one signed again (an ECDSA "
            "signature can be re-made without the key), cannot be replayed",
        )
    return NamespacePolicy(s.entry, s.index, namespace, s.payload["require_hardware"], s.issued_at)


# --- queries -------------------------------------------------------------------------------------------------


def hardware_required(state: IdentityState, operator: str) -> NamespacePolicy | None:
    """The policy of ``operator``'s namespace if it requires hardware-rooted agents."""
    controller = state.controllers.get(operator)
    policy = state.namespace_policies.get(controller.namespace) if controller is not None else None
    return policy if policy is not None and policy.require_hardware else None


def enrolment_of(state: IdentityState, agent: str) -> AgentEnrolment | None:
    """The agent's newest enrolment, unless it was revoked."""
    enrolment = state.enrolments.get(agent)
    if enrolment is None or enrolment.entry in state.revoked:
        return None
    return enrolment


def check_tier(state: IdentityState, operator: str, agent: str, tier: str, machine_fingerprint: str) -> None:
    """Raise why a passport of ``tier`` cannot be issued by ``operator`` to ``agent`` (module docstring)."""
    if tier in UNSUPPORTED_TIERS:
        raise Refused(Refusal.PASSPORT_TIER_UNSUPPORTED,
                      f"substrate tier {tier!r} is not supported: nothing on this log can attest it (docs/tpm.md)")
    if tier in HARDWARE_TIERS:
        enrolment = enrolment_of(state, agent)
        if enrolment is None or enrolment.operator != operator:
            raise Refused(Refusal.PASSPORT_ENROLMENT_MISSING,
                          f"a {tier} passport needs an unrevoked agent-enrolment of {agent[:200]} approved by "
                          f"{operator[:200]}; there is none on this log")
        if machine_fingerprint != enrolment.machine_fingerprint:
            raise Refused(Refusal.PASSPORT_FINGERPRINT_MISMATCH,
                          "the passport's machineFingerprint is not the enrolled TPM's "
                          f"({enrolment.machine_fingerprint}, enrolment entry {enrolment.entry})")
        return
    policy = hardware_required(state, operator)
    if policy is not None:
        raise Refused(Refusal.PASSPORT_HARDWARE_REQUIRED,
                      f"namespace {policy.namespace!r} requires hardware-rooted agents (namespace-policy entry "
                      f"{policy.entry}); a {tier} passport is refused")


def _nothing() -> None:
    return None
