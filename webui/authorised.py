""""Who authorised this agent?": an audit bundle (``issuer.audit``) drawn as the chain from the agent back to the
operator and human decisions it rests on.

The bundle is first checked as ``tabellion verify bundle`` checks it (``verifier.bundles``: the checkpoint, every
receipt and consistency proof, then the fold of its entries); the drawing is made from that fold. A reader need not
trust the drawing: the page offers the bundle and the one command that checks it offline.
"""

from __future__ import annotations

from dataclasses import dataclass

import graphviz

from verifier.bundles import BundleReport, VerifiedBundle
from verifier.delegation import chain_of
from verifier.passports import format_timestamp
from webui.graphs import Drawing, digraph, render_svg
from webui.identities import short_did


@dataclass(frozen=True)
class Edge:
    """One fact of the chain: ``source`` did ``what`` to ``target``, in log entry ``entry``."""

    source: str
    target: str
    what: str
    entry: str


def edges(bundle: VerifiedBundle) -> list[Edge]:
    """The facts the bundle's fold holds about its subject, in log order."""
    state, agent = bundle.state, bundle.subject
    found: list[tuple[int, Edge]] = []
    for passport in state.passport_entries.values():
        if passport.agent == agent:
            until = format_timestamp(passport.valid_until)
            found.append((passport.index, Edge(passport.operator, agent, f"passport ({passport.tier}, until {until})",
                                               passport.entry)))
    for consent in state.consent_entries.values():
        if consent.agent == agent:
            found.append((consent.index, Edge(agent, consent.operator, "consents to its operator", consent.entry)))
    seen: set[str] = set()
    for leaf in state.delegations_to.get(agent, ()):
        for link in chain_of(state, leaf).delegations:
            if link.entry in seen:
                continue
            seen.add(link.entry)
            scope = f"{','.join(link.scope.services)}: {','.join(link.scope.actions)} {','.join(link.scope.resources)}"
            found.append((link.index, Edge(link.principal, link.agent, f"delegates {scope}", link.entry)))
    for entry in state.claims_of.get(agent, ()):
        claim = state.claims[entry]
        node = f"claim {claim.claim_id}"
        found.append((claim.index, Edge(agent, node, f"asks {claim.namespace} for {claim.service}", claim.entry)))
        for decision in claim.decisions:
            how = " with a passkey" if decision.webauthn else ""
            found.append((decision.index, Edge(decision.decided_by, node, f"{decision.kind}{how}", decision.entry)))
            if decision.enrolment is not None:
                enrolment = state.approvers[decision.enrolment]
                found.append((enrolment.index, Edge(enrolment.enrolled_by, enrolment.approver,
                                                    f"enrols a passkey for {enrolment.namespace}", enrolment.entry)))
    for target, revocation in state.revoked.items():
        if target == agent or target in seen:
            found.append((revocation.index, Edge(revocation.by, agent if target == agent else target,
                                                 f"revokes ({revocation.reason})", revocation.entry)))
    return [edge for _, edge in sorted(found, key=lambda item: item[0])]


def drawing(bundle: VerifiedBundle, facts: list[Edge], entry_url: str) -> Drawing:
    """The facts as an SVG graph (``entry_url`` formats an entry id into the link of its page), within the bounds
    of ``webui.graphs``: it may run ``dot`` for seconds, so call it off the event loop."""
    names = sorted({bundle.subject} | {e.source for e in facts} | {e.target for e in facts})
    title = f"Who authorised {bundle.subject}: the audit bundle's chain"
    graph: graphviz.Digraph = digraph("authorised")
    ids = {name: f"n{i}" for i, name in enumerate(names)}  # DOT reads "a:b" as node a, port b: DIDs are labels only
    for node in names:
        is_claim = node.startswith("claim ")
        label = node if is_claim else short_did(node)
        graph.node(ids[node], label, tooltip=node, shape="note" if is_claim else "box",
                   fillcolor="#dbeafe" if node == bundle.subject else "#f4f6fb")
    for edge in facts:
        graph.edge(ids[edge.source], ids[edge.target], label=edge.what, URL=entry_url.format(edge.entry),
                   tooltip=f"log entry {edge.entry}", color="#991b1b" if edge.what.startswith("revokes") else "#33415c")
    return render_svg(graph, title, len(names) + len(facts))


def report_lines(report: BundleReport) -> list[str]:
    return report.lines()
