"""Who may do what, now: the decision a gateway takes from the folded identity state (pure, explicit ``now``).

``authorise`` lets an agent use ``action`` on ``resource`` of ``service`` when all three hold at ``now``:

1. its passport is valid (``verifier.passports.require_passport``: ALLOW, or WARN when it expires soon);
2. a delegation to it, whose whole chain from an operator is unrevoked and unexpired, has a scope covering the
   request (``verifier.scopes``); when several do, the most recent one is used;
3. a claim it submitted is approved, not revoked, and covers the request: the claim's ``service`` or one of its
   scope's services is ``service``, its actions hold ``action`` and its resources cover ``resource``.

Otherwise it raises an ``AuthorityRefused`` whose ``reason_code`` names why (see ``schemas.errors``). When no
delegation holds, the reason is that of the agent's most recent delegation.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.errors import AuthorityRefused, ClaimRefused, DelegationRefused, ScopeRefused
from verifier.delegation import Chain, check_chain
from verifier.identity_state import Claim, IdentityState
from verifier.passports import Verdict, require_passport
from verifier.scopes import check_request, resource_covered


@dataclass(frozen=True)
class Authorisation:
    """An allowed request: ``verdict`` is ALLOW, or WARN (``reason_code`` ``expiring_soon``) for a passport
    close to its end; ``chain`` lists delegation entry ids root -> the agent's, granted by ``root_principal``."""

    agent: str
    service: str
    action: str
    resource: str
    verdict: Verdict
    reason_code: str
    passport: str
    chain: tuple[str, ...]
    root_principal: str
    claim: str


def authorise(state: IdentityState, agent: str, service: str, action: str, resource: str, now: int) -> Authorisation:
    """The authorisation for the request, or raise the ``AuthorityRefused`` naming why it is refused."""
    status = require_passport(state, agent, now)  # raises unless the agent holds a usable passport
    chain = _delegation_chain(state, agent, service, action, resource, now)
    claim = _approved_claim(state, agent, service, action, resource)
    return Authorisation(
        agent, service, action, resource, status.verdict, status.reason_code, state.passports[agent].entry,
        chain.entries, chain.root_principal, claim.entry,
    )


def _delegation_chain(state: IdentityState, agent: str, service: str, action: str, resource: str, now: int) -> Chain:
    candidates = [state.delegations[e] for e in reversed(state.delegations_to.get(agent, ()))]  # newest first
    if not candidates:
        raise DelegationRefused(f"no delegation to {agent[:200]} was accepted on this log", "no_delegation")
    refusals: list[AuthorityRefused] = []
    for delegation in candidates:
        try:
            chain = check_chain(state, delegation.entry, now)
            check_request(delegation.scope, service, action, resource, f"delegation entry {delegation.entry}")
        except (DelegationRefused, ScopeRefused) as exc:
            refusals.append(exc)
            continue
        return chain
    raise refusals[0]


def _covers(claim: Claim, service: str, action: str, resource: str) -> bool:
    scope = claim.scope
    return (
        (service == claim.service or service in scope.services)
        and action in scope.actions
        and any(resource_covered(pattern, resource) for pattern in scope.resources)
    )


def _approved_claim(state: IdentityState, agent: str, service: str, action: str, resource: str) -> Claim:
    claims = (state.claims[e] for e in reversed(state.claims_of.get(agent, ())))  # newest first
    mine = [c for c in claims if _covers(c, service, action, resource)]
    for claim in mine:
        if claim.status == "approved" and state.revocation_of(state.namespaces[claim.namespace]) is None:
            return claim
    others = ", ".join(f"{c.entry} ({c.status})" for c in mine[:5])
    raise ClaimRefused(
        f"no approved, unrevoked claim by {agent[:200]} covers {action!r} on {resource[:200]!r} of {service!r}"
        + (f"; covering claims: {others}" if others else ""),
        "no_approved_claim",
    )
