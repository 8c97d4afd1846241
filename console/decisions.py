"""The approvals queue and the decisions on it: approve, reject or revoke a claim, each with a fresh assertion by
the signed-in approver's passkey over exactly that decision.

    GET  /approvals            the queue (pending claims) and the approved claims, updated live (``/events``)
    GET  /approvals/queue      the same tables alone, for the page to swap in when the log grows
    POST /decisions/options    {claim, kind, text} -> the WebAuthn request options whose challenge is the decision's
    POST /decisions            {claim, kind, text, credential} -> the decision, checked, signed, logged

The decision is rebuilt on the server from ``claim``, ``kind``, ``text`` and the session's approver; the passkey
must have signed *that* payload (a decision changed after signing fails its challenge). The console signs with the
namespace key only once py_webauthn accepted the assertion against the passkey enrolled on the log for the
signed-in approver (``console.passkeys``); then the issuer checks it again, and the log's fold offline. A refusal
at any step answers a problem with its stable code, and nothing is logged.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from console.pages import pages
from console.passkeys import passkey_request_options, verify_decision
from console.state import Console, console, csrf_token, json_body, signed_in, text_field
from issuer.statements import claim_decision, decision_payload
from schemas.base64url import b64url
from schemas.errors import InvalidParameter, NotFound, TabellionError
from schemas.identity_statements import REVOCATION_REASONS
from schemas.leaf import parse_entry_id
from verifier.refusals import Refusal, Refused

log = logging.getLogger(__name__)
KINDS: Final = {"approval": "submitted", "rejection": "submitted", "revocation": "approved"}


async def _queue(c: Console) -> dict[str, Any]:
    claims = await c.call(c.issuer.claims, c.config.namespace)
    return {"pending": [x for x in claims if x["status"] == "submitted"],
            "approved": [x for x in claims if x["status"] == "approved"],
            "decided": [x for x in claims if x["status"] in ("rejected", "revoked")],
            "reasons": REVOCATION_REASONS, "explorer": c.config.explorer}


async def approvals(request: Request) -> Response:
    approver = signed_in(request)
    c = console(request)
    return pages.render(request, "approvals.html", {
        "title": f"Approvals for {c.config.namespace}", "approver": approver, "csrf": csrf_token(request),
        **await _queue(c)})


async def queue(request: Request) -> Response:
    signed_in(request)
    return pages.render(request, "queue.html", {"csrf": csrf_token(request), **await _queue(console(request))})


def _decision(request: Request, body: dict[str, Any], approver: str) -> tuple[str, str, dict[str, Any]]:
    claim = parse_entry_id(text_field(body, "claim", limit=64)).hex()
    kind = text_field(body, "kind", limit=20)
    if kind not in KINDS:
        raise InvalidParameter(f"kind must be one of {', '.join(KINDS)}")
    text = text_field(body, "text", required=kind == "revocation", limit=1024)
    if kind == "revocation" and text not in REVOCATION_REASONS:
        raise InvalidParameter(f"a revocation's reason is an RFC 5280 reason code: {', '.join(REVOCATION_REASONS)}")
    return claim, kind, decision_payload(kind, claim, approver, text or None)


async def _check_claim(c: Console, claim: str, kind: str) -> None:
    """The claim is in this console's namespace and waits for this kind of decision (else: refused early)."""
    found = await c.call(c.issuer.claim, claim)
    if found["namespace"] != c.config.namespace:
        raise NotFound(f"claim {claim} is not in {c.config.namespace!r}; this console decides only there")
    if found["status"] != KINDS[kind]:
        raise Refused(Refusal.CLAIM_NOT_PENDING, f"claim {claim} is {found['status']}, not {KINDS[kind]}")


async def decision_options(request: Request) -> Response:
    approver = signed_in(request)
    c = console(request)
    claim, kind, payload = _decision(request, await json_body(request), approver)
    await _check_claim(c, claim, kind)
    passkeys = await c.call(c.issuer.approvers, c.config.namespace)
    options = passkey_request_options(passkeys, approver, payload, c.config.rp_id, statement_type=f"claim-{kind}",
                                      signer=c.owner.identity)
    return JSONResponse({"options": options, "decision": payload})


async def decide(request: Request) -> Response:
    approver = signed_in(request)
    c = console(request)
    body = await json_body(request)
    claim, kind, payload = _decision(request, body, approver)
    try:
        await _check_claim(c, claim, kind)
        passkeys = await c.call(c.issuer.approvers, c.config.namespace)
        decided = verify_decision(passkeys, approver, payload, body.get("credential"), statement_type=f"claim-{kind}",
                                  signer=c.owner.identity)
        statement = claim_decision(c.owner, kind, decided)
        logged = await c.call(c.issuer.submit, f"claim-{kind}", statement, claim=claim)
    except TabellionError as exc:
        c.metrics.ceremonies.labels(kind, "refused", exc.code).inc()
        log.info("refused a %s of claim %s by %s: %s", kind, claim, approver, exc.code)
        raise
    c.metrics.ceremonies.labels(kind, "logged", "ok").inc()
    log.info("logged the %s of claim %s by %s: entry %s", kind, claim, approver, logged.entry)
    found = await c.call(c.issuer.claim, claim)
    return JSONResponse({
        "kind": kind, "claim": claim, "entry": logged.entry, "index": logged.index,
        "receipt": b64url(logged.receipt), "checkpoint": logged.checkpoint, "decided_by": approver,
        "explorer": f"{c.config.explorer}/explorer/entries/{logged.index}",
        "commands": [f"tabellion fetch keys {c.config.explorer} -o log.keys",
                     f"tabellion fetch audit {c.config.explorer} --did {found['agent']} -o audit.json",
                     "tabellion verify bundle audit.json --log-keys log.keys"],
    }, 201)


__all__ = ["approvals", "decide", "decision_options", "queue"]
