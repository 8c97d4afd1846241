"""Passkeys: an approver's enrolment (their consent, logged) and sign-in.

Enrolment, from an invitation link (``console.ceremonies``), in the two ceremonies of the authority rules
(``docs/authority.md``): the passkey is created over the enrolment request (``/enrol/options``, ``/enrol/register``),
then signs the whole enrolment (``/enrol/consent``); only then does the console sign the ``approver-enrolment`` with
the namespace key and submit it. Sign-in: a discoverable passkey enrolled here, not revoked, with user
verification, over a one-time random challenge; the session then names the approver.

Who else could call these: anyone reaching the console. Without an invitation no enrolment starts; without an
enrolled passkey no sign-in succeeds; every POST needs the session's CSRF token and, from a browser, our origin.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from console.pages import pages
from console.passkeys import assertion_of, signin_options, verify_signin
from console.state import check_csrf, console, csrf_token, json_body, text_field
from issuer.passkeys import add_consent, consent_options, enrolment_registration_options, verify_registration
from issuer.statements import approver_enrolment
from schemas.base64url import b64url_decode
from schemas.errors import TabellionError

log = logging.getLogger(__name__)


async def enrol_page(request: Request) -> Response:
    c = console(request)
    invitation = c.invitations.read(request.query_params.get("invitation", ""))
    return pages.render(request, "enrol.html", {
        "title": "Enrol your passkey", "invitation": request.query_params["invitation"],
        "approver": invitation.approver, "name": invitation.name, "namespace": c.config.namespace,
        "csrf": csrf_token(request),
    })


async def enrol_options(request: Request) -> Response:
    c = console(request)
    body = await json_body(request)
    invitation = c.invitations.read(text_field(body, "invitation", limit=4096))
    enrolled = await c.call(c.issuer.approvers, c.config.namespace)
    exclude = [b64url_decode(p.credential_id, "credential_id") for p in enrolled
               if invitation.approver is not None and p.approver == invitation.approver]
    options = enrolment_registration_options(
        namespace=c.config.namespace, approver=invitation.approver, rp_id=c.config.rp_id, origin=c.config.origin,
        rp_name=c.config.rp_name, user_name=invitation.name, exclude_credential_ids=exclude)
    return JSONResponse({"options": options})


async def enrol_register(request: Request) -> Response:
    """The new passkey's creation, checked (py_webauthn); answer the options of its consent to the enrolment."""
    c = console(request)
    body = await json_body(request)
    invitation = c.invitations.read(text_field(body, "invitation", limit=4096))
    try:
        unconsented = verify_registration(body.get("credential") or {}, namespace=c.config.namespace,
                                          approver=invitation.approver, rp_id=c.config.rp_id, origin=c.config.origin)
    except TabellionError as exc:
        c.metrics.ceremonies.labels("enrolment", "refused", exc.code).inc()
        raise
    request.session["enrolment"] = c.ceremonies.put("enrolment", (invitation, unconsented))
    return JSONResponse({"options": consent_options(unconsented, owner=c.owner.identity)})


async def enrol_consent(request: Request) -> Response:
    """The passkey's assertion over the whole enrolment (its consent): checked, then signed and logged."""
    c = console(request)
    body = await json_body(request)
    invitation, unconsented = c.ceremonies.take("enrolment", request.session.pop("enrolment", None))
    approver = str(unconsented["approver"])  # the invitation's, or the new passkey's own did:key
    try:
        enrolment = add_consent(unconsented, assertion_of(body.get("credential")), owner=c.owner.identity)
        statement = approver_enrolment(c.owner, enrolment)
        with c.invitations.spending(invitation):  # one passkey a link, whatever other browsers have under way
            logged = await c.call(c.issuer.submit, "approver-enrolment", statement)
    except TabellionError as exc:
        c.metrics.ceremonies.labels("enrolment", "refused", exc.code).inc()
        raise
    c.metrics.ceremonies.labels("enrolment", "logged", "ok").inc()
    log.info("enrolled a passkey for %s in %s: entry %s", approver, c.config.namespace, logged.entry)
    return JSONResponse({"entry": logged.entry, "index": logged.index, "approver": approver,
                         "explorer": f"{c.config.explorer}/explorer/entries/{logged.index}"}, 201)


async def signin_page(request: Request) -> Response:
    return pages.render(request, "signin.html", {"title": "Sign in", "csrf": csrf_token(request)})


async def signin_start(request: Request) -> Response:
    c = console(request)
    await json_body(request)
    challenge, options = signin_options(c.config.rp_id)
    request.session["signin"] = c.ceremonies.put("sign-in", challenge)
    return JSONResponse({"options": options})


async def signin_finish(request: Request) -> Response:
    c = console(request)
    body: dict[str, Any] = await json_body(request)
    challenge = c.ceremonies.take("sign-in", request.session.pop("signin", None))
    try:
        passkeys = await c.call(c.issuer.approvers, c.config.namespace)
        passkey = verify_signin(body.get("credential"), challenge, passkeys)
    except TabellionError as exc:
        c.metrics.ceremonies.labels("sign-in", "refused", exc.code).inc()
        raise
    request.session.clear()  # a new session: nothing from before the sign-in carries over
    request.session.update({"approver": passkey.approver, "credential": passkey.credential_id})
    csrf_token(request)
    c.metrics.ceremonies.labels("sign-in", "signed-in", "ok").inc()
    return JSONResponse({"approver": passkey.approver, "next": "/approvals"})


async def signout(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, form.get("csrf"))
    request.session.clear()
    return RedirectResponse("/signin", 303)
