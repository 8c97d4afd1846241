"""Delegations: authority passed from a principal to an agent, narrowing at every hop.

A ``delegation`` statement is signed by its ``principal`` (CWT iss == principal). A root delegation
(``parent`` null) is granted by an operator registered on the log, to an agent that consented to that operator
(``agent-consent``); a child delegation is granted by the agent
of its parent, an accepted delegation whose whole chain is still valid. At each hop the scope narrows
(``verifier.scopes``), ``not_after`` does not move later, and ``max_depth`` (how many further hops are
allowed) shrinks: a parent with ``max_depth`` 0 cannot be delegated further. A delegation cannot be made once
its parent has expired (by the statement's ``iat``), nor by or to a revoked identity.

Revoking a delegation (``revocation`` naming its entry id) voids every delegation below it: the chain is
checked, root to leaf, whenever it is used (``check_chain``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from schemas.errors import DelegationRefused, EntryNotFound
from verifier.identity_state import Delegation, IdentityState, LoggedStatement, Scope
from verifier.refusals import Refusal, Refused
from verifier.scopes import check_narrower

MAX_DEPTH: Final = 16


@dataclass(frozen=True)
class Chain:
    """The delegations from the root (granted by ``root_principal``, an operator) down to one delegation."""

    delegations: tuple[Delegation, ...]

    @property
    def root_principal(self) -> str:
        return self.delegations[0].principal

    @property
    def entries(self) -> tuple[str, ...]:
        return tuple(d.entry for d in self.delegations)

    @property
    def leaf(self) -> Delegation:
        return self.delegations[-1]


def chain_of(state: IdentityState, entry: str) -> Chain:
    """The chain root -> ``entry`` ("who authorised this"), whether or not it is still valid."""
    delegation = state.delegations.get(entry)
    if delegation is None:
        raise EntryNotFound(f"{entry[:80]} is not an accepted delegation on this log")
    links = [delegation]
    while links[-1].parent is not None:
        links.append(state.delegations[links[-1].parent])  # a parent is always an earlier accepted delegation
    return Chain(tuple(reversed(links)))


def check_chain(state: IdentityState, entry: str, now: int | None) -> Chain:
    """The chain to ``entry`` if every link holds at ``now``; raise ``DelegationRefused`` naming the first that
    does not (``delegation_revoked``: the delegation, its principal or its agent was revoked;
    ``delegation_expired``: ``now`` is at or past its ``not_after``). ``now`` None checks revocation only."""
    chain = chain_of(state, entry)
    for link in chain.delegations:
        revoked = state.revoked.get(link.entry)
        if revoked is not None:
            raise DelegationRefused(
                f"delegation entry {link.entry} was revoked at entry {revoked.index} ({revoked.reason})",
                "delegation_revoked",
            )
        for role, did in (("principal", link.principal), ("agent", link.agent)):
            revoked = state.revocation_of(did)
            if revoked is not None:
                raise DelegationRefused(
                    f"the {role} {did[:200]} of delegation entry {link.entry} was revoked at entry {revoked.index} "
                    f"({revoked.reason})",
                    "delegation_revoked",
                )
        if now is not None and now >= link.not_after:
            raise DelegationRefused(
                f"delegation entry {link.entry} expired at {link.not_after} (now {now})", "delegation_expired"
            )
    return chain


def check_delegation(state: IdentityState, s: LoggedStatement) -> Delegation:
    """The delegation a statement grants; raise ``Refused`` with the reason it cannot."""
    p = s.payload
    principal, agent, not_after, max_depth = p["principal"], p["agent"], p["not_after"], p["max_depth"]
    if s.issuer != principal:
        raise Refused(Refusal.DELEGATION_ISSUER_MISMATCH,
                      f"iss {s.issuer[:200]} is not the delegation's principal {principal[:200]}")
    for role, did, refusal in (("principal", principal, Refusal.DELEGATION_PRINCIPAL_REVOKED),
                               ("agent", agent, Refusal.AGENT_REVOKED)):
        revoked = state.revocation_of(did)
        if revoked is not None:
            raise Refused(refusal, f"the {role} {did[:200]} was revoked at entry {revoked.index} ({revoked.reason})")
    if s.signed_content in state.delegation_contents:
        raise Refused(Refusal.DELEGATION_REPLAYED,
                      "this delegation was logged before (the same signed content under another signature)")
    if max_depth > MAX_DEPTH:
        raise Refused(Refusal.DELEGATION_TOO_DEEP, f"too deep: max_depth {max_depth} is over the limit of {MAX_DEPTH}")
    scope = Scope.from_json(p["scope"])
    if p["parent"] is None:
        if principal not in state.controllers:
            raise Refused(
                Refusal.DELEGATION_ROOT_NOT_OPERATOR,
                f"a root delegation must be granted by an operator registered on this log; {principal[:200]} is not",
            )
        if state.bound_operator(agent) != principal:
            raise Refused(Refusal.CONSENT_MISSING,
                          f"the agent {agent[:200]} has not consented to operator {principal[:200]} (agent-consent)")
        _check_not_expired(s)
        return Delegation(s.entry, s.index, principal, agent, None, scope, not_after, max_depth, 0, principal)
    parent = state.delegations.get(p["parent"])
    if parent is None:
        raise Refused(Refusal.DELEGATION_PARENT_UNKNOWN,
                      f"parent {p['parent']} is not an accepted delegation on this log")
    if parent.agent != principal:
        raise Refused(
            Refusal.DELEGATION_PARENT_AGENT_MISMATCH,
            f"parent {parent.entry} delegates to {parent.agent[:200]}, not to the principal {principal[:200]}"
        )
    try:
        check_chain(state, parent.entry, s.issued_at)
    except DelegationRefused as exc:
        raise Refused(Refusal.DELEGATION_PARENT_INVALID,
                      f"the parent delegation no longer holds: {exc.detail}") from exc
    if parent.max_depth == 0:
        raise Refused(Refusal.DELEGATION_TOO_DEEP,
                      f"too deep: parent {parent.entry} has max_depth 0 and cannot be delegated further")
    if max_depth >= parent.max_depth:
        raise Refused(Refusal.DELEGATION_TOO_DEEP,
                      f"too deep: max_depth {max_depth} must be below the parent's {parent.max_depth}")
    if not_after > parent.not_after:
        raise Refused(Refusal.DELEGATION_OUTLIVES_PARENT,
                      f"not_after {not_after} is later than the parent's {parent.not_after}")
    check_narrower(scope, parent.scope)
    _check_not_expired(s)
    return Delegation(
        s.entry, s.index, principal, agent, parent.entry, scope, not_after, max_depth, parent.depth + 1,
        parent.root_principal,
    )


def _check_not_expired(s: LoggedStatement) -> None:
    not_after = s.payload["not_after"]
    if s.issued_at is not None and s.issued_at >= not_after:
        raise Refused(Refusal.DELEGATION_EXPIRED_AT_ISSUE,
                      f"the delegation had already expired (not_after {not_after}) at iat {s.issued_at}")
