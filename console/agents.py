"""Agents: each one's passport, tier, expiry and standing; its delegation chains drawn; its audit timeline; its
revocation (an RFC 5280 reason) behind the signed-in approver's passkey; and the token inspector.

    GET  /agents                   the agents bound to this console's operator, or holding its passports
    GET  /agents/{did}             one agent: passport, the chain graph, the timeline of its audit bundle
    POST /agents/revoke/options    {agent, reason} -> request options over the revocation's payload
    POST /agents/revoke            {agent, reason, credential} -> checked, signed with the namespace key, logged
                                   (``agent``: one of the operator's agents, else 404: never the operator itself)
    GET  /tokens, POST /tokens     decode a task-bound token and check it against the registry keys and the log

Everything shown is read through the issuer and checked here where it can be: the audit bundle is verified
against the log's receipt keys before it is drawn (``verifier.bundles``), each timeline entry with its receipt.
A revocation statement has no place for an assertion, so the passkey's assertion over ``{target, reason}``
(``decision_digest``) is checked here only, before the operator's key signs; the log records the operator's
revocation.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from console.pages import pages
from console.passkeys import passkey_request_options, verify_decision
from console.state import check_csrf, console, csrf_token, json_body, signed_in, text_field
from issuer.statements import revocation
from schemas.base64url import b64url_decode
from schemas.errors import InvalidParameter, NotFound, TabellionError
from schemas.identity_statements import REVOCATION_REASONS, statement_type_of
from schemas.statement import parse_statement
from verifier.bundles import verify_bundle_state
from verifier.passports import format_timestamp
from verifier.tokens import parse_jws, verify_token
from webui.authorised import drawing, edges

log = logging.getLogger(__name__)


def _operator(request: Request) -> str:
    return console(request).owner.identity


async def _own_agent(c: Any, did: str) -> dict[str, Any]:
    """The agent ``did`` as the issuer lists it among the console's operator's agents; else ``NotFound``. An approver
    acts in the operator's name on its agents only: the operator's key could sign a revocation of any DID, and of
    the operator itself the log would accept it (a DID revokes itself), so a signed-in approver could otherwise
    revoke the operator's own identity from the agents page."""
    found = next((a for a in await c.call(c.issuer.agents, c.owner.identity) if a["agent"] == did), None)
    if found is None:
        raise NotFound(f"{did[:200]} is not an agent of this console's operator")
    agent: dict[str, Any] = found
    return agent


async def agents(request: Request) -> Response:
    signed_in(request)
    c = console(request)
    found = await c.call(c.issuer.agents, _operator(request))
    return pages.render(request, "agents.html", {"title": "Agents", "agents": found, "csrf": csrf_token(request),
                                                 "when": format_timestamp})


async def agent(request: Request) -> Response:
    signed_in(request)
    c = console(request)
    did = request.path_params["did"]
    found = await _own_agent(c, did)
    bundle = await c.call(c.issuer.audit, did)
    verified = verify_bundle_state(bundle, c.keys)
    facts = edges(verified)
    timeline = []
    for item, outcome in zip(bundle["entries"], _outcomes(verified.state, bundle), strict=True):
        signed = parse_statement(b64url_decode(item["statement"], "statement"))
        stype = statement_type_of(signed.content_type) or str(signed.content_type)
        timeline.append({"index": item["index"], "type": stype, "signer": signed.issuer,
                         "iat": format_timestamp(signed.issued_at or 0), "outcome": outcome})
    return pages.render(request, "agent.html", {
        "title": "Agent", "agent": found, "did": did, "facts": facts, "timeline": timeline,
        "graph": await run_in_threadpool(drawing, verified, facts, c.config.explorer + "/explorer/entries/{}"),
        "size": verified.checkpoint.size, "reasons": REVOCATION_REASONS, "csrf": csrf_token(request),
        "when": format_timestamp, "explorer": c.config.explorer,
    })


def _outcomes(state: Any, bundle: dict[str, Any]) -> list[str]:
    """Each bundle entry's standing: its receipt verified (all did, or the bundle was refused) and the fold's
    verdict on it within the bundle."""
    by_index = {o.index: o for o in state.outcomes}
    result = []
    for item in bundle["entries"]:
        outcome = by_index.get(item["index"])
        result.append("receipt verified, accepted" if outcome is None or outcome.accepted
                      else f"receipt verified, rejected: {outcome.code}")
    return result


def _revocation(body: dict[str, Any], approver: str) -> dict[str, Any]:
    """The revocation payload the signed-in ``approver`` decides (and signs with their passkey): logged with that
    assertion, so the log shows which human revoked the agent in the operator's name."""
    target = text_field(body, "agent", limit=512)
    if not target.startswith("did:"):
        raise InvalidParameter("agent must be a DID")
    reason = text_field(body, "reason", limit=40)
    if reason not in REVOCATION_REASONS:
        raise InvalidParameter(f"reason must be an RFC 5280 reason code: {', '.join(REVOCATION_REASONS)}")
    return {"target": target, "reason": reason, "decided_by": approver}


async def revoke_options(request: Request) -> Response:
    approver = signed_in(request)
    c = console(request)
    payload = _revocation(await json_body(request), approver)
    await _own_agent(c, payload["target"])
    passkeys = await c.call(c.issuer.approvers, c.config.namespace)
    options = passkey_request_options(passkeys, approver, payload, c.config.rp_id, statement_type="revocation",
                                      signer=c.owner.identity)
    return JSONResponse({"options": options, "decision": payload})


async def revoke(request: Request) -> Response:
    approver = signed_in(request)
    c = console(request)
    body = await json_body(request)
    payload = _revocation(body, approver)
    try:
        await _own_agent(c, payload["target"])
        passkeys = await c.call(c.issuer.approvers, c.config.namespace)
        decided = verify_decision(passkeys, approver, payload, body.get("credential"), statement_type="revocation",
                                  signer=c.owner.identity)
        statement = revocation(c.owner, payload["target"], payload["reason"], decided_by=approver,
                               webauthn=decided["webauthn"])
        logged = await c.call(c.issuer.submit, "revocation", statement)
    except TabellionError as exc:
        c.metrics.ceremonies.labels("agent-revocation", "refused", exc.code).inc()
        raise
    c.metrics.ceremonies.labels("agent-revocation", "logged", "ok").inc()
    log.info("revoked %s (%s), approved by %s: entry %s", payload["target"], payload["reason"], approver,
             logged.entry)
    return JSONResponse({"entry": logged.entry, "index": logged.index, "target": payload["target"],
                         "explorer": f"{c.config.explorer}/explorer/entries/{logged.index}"}, 201)


async def tokens(request: Request) -> Response:
    signed_in(request)
    c = console(request)
    context: dict[str, Any] = {"title": "Token inspector", "csrf": csrf_token(request), "token": ""}
    if request.method == "POST":
        form = await request.form()
        check_csrf(request, form.get("csrf"))
        token = str(form.get("token", "")).strip()
        context["token"] = token
        try:
            await _inspect(c, token, context)
        except TabellionError as exc:
            context["refusal"] = exc
    return pages.render(request, "tokens.html", context)


async def _inspect(c: Any, token: str, shown: dict[str, Any]) -> None:
    """The token decoded into ``shown``, then checked offline against the registry keys and the fold of its agent's
    audit bundle (verified against the log's keys): the chain, the passport and the scope as of now."""
    if not token:
        raise InvalidParameter("paste a task-bound token (a JWS compact JWT)")
    jws = parse_jws(token)
    shown.update(header=json.dumps(jws.header, indent=2), claims=json.dumps(jws.claims, indent=2))
    act = jws.claims.get("act")
    agent = act.get("sub") if isinstance(act, dict) else None
    if not isinstance(agent, str):
        raise InvalidParameter("the token names no current actor (act.sub)")
    shown["agent"] = agent
    keys = await c.call(c.issuer.registry_keys)
    bundle = verify_bundle_state(await c.call(c.issuer.audit, agent), c.keys)
    verified = verify_token(token, keys, bundle.state, int(time.time()), audience=None, tool=None, resource=None)
    shown["verdict"] = (f"valid: {verified.agent} may use {', '.join(verified.tools)} on {verified.resource} at "
                        f"{verified.audience} until {format_timestamp(verified.expires_at)}, through delegations "
                        f"{', '.join(e[:12] for e in verified.chain)} (as of tree size {bundle.checkpoint.size})")
