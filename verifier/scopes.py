"""Scopes of delegations and claims: what narrows what, and whether a request falls inside.

Services and actions match by exact name. A resource pattern covers a resource when the two are equal, or when
the pattern ends with ``*`` and the resource starts with everything before it (``files/*`` covers
``files/a`` and ``files/a/*``; ``*`` covers everything). A child scope narrows its parent when each of its
services and actions is one of the parent's and each of its resources is covered by one of the parent's.
"""

from __future__ import annotations

from schemas.errors import ScopeRefused
from verifier.identity_state import Scope
from verifier.refusals import Refusal, Refused

WILDCARD = "*"


def resource_covered(pattern: str, resource: str) -> bool:
    if pattern.endswith(WILDCARD):
        return resource.startswith(pattern[: -len(WILDCARD)])
    return resource == pattern


def _covered(patterns: tuple[str, ...], resource: str) -> bool:
    return any(resource_covered(p, resource) for p in patterns)


def check_narrower(child: Scope, parent: Scope) -> None:
    """Raise ``Refused`` (delegation-scope-widened) naming the first service, action or resource that widens
    ``parent``."""
    for service in child.services:
        if service not in parent.services:
            raise Refused(Refusal.DELEGATION_SCOPE_WIDENED,
                          f"scope widens the parent's: service {service[:100]!r} is not delegated to it")
    for action in child.actions:
        if action not in parent.actions:
            raise Refused(Refusal.DELEGATION_SCOPE_WIDENED,
                          f"scope widens the parent's: action {action[:100]!r} is not delegated to it")
    for resource in child.resources:
        if not _covered(parent.resources, resource):
            raise Refused(
                Refusal.DELEGATION_SCOPE_WIDENED,
                f"scope widens the parent's: resource {resource[:200]!r} is not covered by the parent's resources"
            )


def check_request(scope: Scope, service: str, action: str, resource: str, what: str) -> None:
    """Raise ``ScopeRefused`` (service/action/resource_out_of_scope) unless ``scope`` covers the request."""
    if service not in scope.services:
        raise ScopeRefused(f"service {service[:100]!r} is outside {what}", "service_out_of_scope")
    if action not in scope.actions:
        raise ScopeRefused(f"action {action[:100]!r} is outside {what}", "action_out_of_scope")
    if not _covered(scope.resources, resource):
        raise ScopeRefused(f"resource {resource[:200]!r} is outside {what}", "resource_out_of_scope")
