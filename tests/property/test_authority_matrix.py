"""The authority matrix (docs/authority.md) against the fold, in worlds of many actors.

Hypothesis builds a world of two registered operators (each owning a namespace), three agents, two humans with
passkeys and a stranger, then lets *any* of them send random statements: consents, passports, delegations,
claims, decisions (the owner's own, a human's with their passkey, or one in a human's name without it),
approver enrolments (with the human's consent, or with someone else's passkey; naming as the approver the
passkey's own did:key, the owner itself, or any other actor's DID, which the owner is not entitled to name) and
revocations of any DID or entry. ``Matrix`` is an independent reference written from docs/authority.md alone
(it imports nothing of the fold): for each statement it lists the codes of every rule the statement breaks. The
fold must then accept exactly what the matrix entitles, refuse everything else with one of those codes, and leave
its state unchanged by a refusal; and a rebuild from the log must equal the incremental fold.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, given, settings

from tests.property.authority_matrix import Run, steps
from tests.unit.verifier.identity_world import snapshot
from verifier.fold import Fold, FoldEntry


@settings(max_examples=int(os.environ.get("AUTHORITY_EXAMPLES", "200")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(steps)
def test_the_fold_grants_exactly_what_the_matrix_entitles(plan: list[tuple[Any, ...]]) -> None:
    run = Run()
    for step in plan:
        run.send(step)
    rebuilt = Fold().apply_all([FoldEntry(e.index, e.statement) for e in run.world.entries])
    assert snapshot(rebuilt) == snapshot(run.fold.state)
    assert rebuilt.outcomes == run.fold.state.outcomes
