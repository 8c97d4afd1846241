"""The issuer's HTTP API (JSON; refusals are RFC 9457 problem+json through the one error handler).

Writes take a signed statement (``application/cose``) of the type the endpoint is for and answer 201
with the log entry, its receipt and the checkpoint; reads answer from the folded log, each naming the
checkpoint it was decided on. See docs/http-api.md.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from issuer.audit import audit_bundle
from issuer.dids import DID_MEDIA_TYPE, did_document, resolution, service_document
from issuer.registry_keys import JWK_SET_MEDIA_TYPE
from issuer.service import Issuer
from issuer.status_lists import operator_status_list
from schemas import jsonld_contexts, media_types
from schemas.errors import InvalidParameter, NotFound
from schemas.leaf import parse_entry_id
from transparency.request_bodies import read_json_object, read_limited_body, require_content_type
from transparency.request_params import query_int

MAX_BODY_BYTES = 1024 * 1024
RESOLUTION_MEDIA_TYPE = 'application/ld+json;profile="https://w3id.org/did-resolution"'
DECISIONS = {"approve": "claim-approval", "reject": "claim-rejection", "revoke": "claim-revocation"}
MAX_JSON_BYTES = 256 * 1024


def _issuer(request: Request) -> Issuer:
    issuer: Issuer = request.app.state.issuer
    return issuer


async def _statement(request: Request) -> bytes:
    require_content_type(request, media_types.COSE)
    return await read_limited_body(request, MAX_BODY_BYTES)


def _query(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if not value:
        raise InvalidParameter(f"the query parameter {name!r} is required")
    return value


def _submitting(*types: str) -> Any:
    async def endpoint(request: Request) -> Response:
        logged = await _issuer(request).submit(await _statement(request), types)
        return JSONResponse(logged.json(), 201, {"Location": f"/entries/{logged.entry}"})

    return endpoint


async def claim_decision(request: Request) -> Response:
    """``POST /v1/claims/{id}/approve|reject|revoke``: the statement must name the claim in the path."""
    claim = parse_entry_id(request.path_params["claim"]).hex()
    kind = DECISIONS.get(request.path_params["decision"])
    if kind is None:
        raise NotFound(f"claims can be {', '.join(DECISIONS)}d, not {request.path_params['decision'][:40]!r}d")
    issuer = _issuer(request)
    statement = await _statement(request)
    logged = await issuer.submit(statement, (kind,), must_name=("claim", claim))
    return JSONResponse(logged.json(), 201, {"Location": f"/entries/{logged.entry}"})


async def verify_agent(request: Request) -> Response:
    body = await read_json_object(request, MAX_JSON_BYTES)
    credential = body.get("credential")
    agent = body.get("agent")
    if agent is None and isinstance(credential, dict):
        subject = credential.get("credentialSubject")
        agent = subject.get("id") if isinstance(subject, dict) else None
    if not isinstance(agent, str) or not agent.startswith("did:"):
        raise InvalidParameter("give the agent's DID as 'agent', or its passport as 'credential'")
    if credential is not None and not isinstance(credential, dict):
        raise InvalidParameter("'credential' must be a JSON object (the passport VC)")
    return JSONResponse(_issuer(request).verify_passport(agent, credential))


async def verify_request(request: Request) -> Response:
    issuer = _issuer(request)
    answer = issuer.authorise(_query(request, "agent"), _query(request, "service"), _query(request, "action"),
                              _query(request, "resource"))
    return JSONResponse(answer)


async def get_claim(request: Request) -> Response:
    return JSONResponse(_issuer(request).claim(parse_entry_id(request.path_params["claim"]).hex()))


CLAIM_STATUSES = ("submitted", "approved", "rejected", "revoked")


async def list_claims(request: Request) -> Response:
    """``GET /v1/claims?namespace=NS[&status=submitted|approved|rejected|revoked]``: the namespace's claims."""
    status = request.query_params.get("status")
    if status is not None and status not in CLAIM_STATUSES:
        raise InvalidParameter(f"status must be one of {', '.join(CLAIM_STATUSES)}")
    return JSONResponse(_issuer(request).claims(_query(request, "namespace"), status))


async def list_approvers(request: Request) -> Response:
    """``GET /v1/approvers?namespace=NS``: the passkeys enrolled for the namespace (public keys, counters)."""
    return JSONResponse(_issuer(request).approvers(_query(request, "namespace")))


async def list_agents(request: Request) -> Response:
    """``GET /v1/agents?operator=DID``: the agents bound to the operator or holding its passports."""
    return JSONResponse(_issuer(request).agents(_query(request, "operator")))


async def approved_claims(request: Request) -> Response:
    issuer = _issuer(request)
    after, limit = query_int(request, "after", 0), query_int(request, "limit", 100, low=1, high=1000)
    return JSONResponse(await run_in_threadpool(issuer.approved_claims, after, limit))  # reads entries: off the loop


async def resolve_did(request: Request) -> Response:
    issuer = _issuer(request)
    issuer.log.refresh()
    with issuer.log.view() as state:
        document, metadata = did_document(state, request.path_params["did"])
    return JSONResponse(resolution(document, metadata), media_type=RESOLUTION_MEDIA_TYPE)


async def service_did(request: Request) -> Response:
    issuer = _issuer(request)
    registry = [(key.kid, key.public) for key in issuer.registry_keys.generations()]
    document = service_document(issuer.public_url, issuer.receipt_keys, issuer.current_kid, registry)
    return JSONResponse(document, media_type=DID_MEDIA_TYPE)


async def audit(request: Request) -> Response:
    bundle = await run_in_threadpool(audit_bundle, _issuer(request).log, request.path_params["did"])  # reads entries
    return JSONResponse(bundle)


async def status_list(request: Request) -> Response:
    issuer = _issuer(request)
    issuer.log.refresh()
    operator = request.path_params["operator"]
    with issuer.log.view() as state:
        if operator not in state.controllers:
            raise NotFound(f"{operator[:200]} is not an operator registered on this log")
        credential = operator_status_list(state, operator, issuer.public_url, issuer.registry_keys.current,
                                          issuer.now())
    return JSONResponse(credential, media_type="application/vc+ld+json", headers={"Cache-Control": "no-cache"})


async def registry_keys(request: Request) -> Response:
    """The registry's token-signing keys as a JWK Set (RFC 7517 §5), current first, retired kept."""
    return JSONResponse(_issuer(request).key_generations(), media_type=JWK_SET_MEDIA_TYPE)


async def mint_token(request: Request) -> Response:
    """``POST /v1/tokens``: a task-bound token for the agent's signed request (issuer.tokens), 201."""
    minted = _issuer(request).mint_token(await read_json_object(request, MAX_JSON_BYTES))
    return JSONResponse(minted.json(), 201, {"Cache-Control": "no-store"})  # RFC 6749 §5.1


def _jsonld_context(url: str) -> Any:
    """A JSON-LD context Tabellion defines, served at its URL's path (``schemas.jsonld_contexts``); immutable, and
    readable cross-origin, as JSON-LD processors in browsers fetch contexts."""
    document = jsonld_contexts.context_document(url)

    async def endpoint(request: Request) -> Response:
        return Response(document, media_type=jsonld_contexts.MEDIA_TYPE,
                        headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=86400"})

    return endpoint


ROUTES: list[BaseRoute] = [
    Route("/api/agent/issue", _submitting("agent-passport"), methods=["POST"]),
    Route("/api/agent/verify", verify_agent, methods=["POST"]),
    Route("/registry/operators", _submitting("operator-registration"), methods=["POST"]),
    Route("/registry/rotate", _submitting("key-rotation"), methods=["POST"]),
    Route("/registry/approvers", _submitting("approver-enrolment"), methods=["POST"]),
    Route("/registry/consents", _submitting("agent-consent"), methods=["POST"]),
    Route("/registry/revoke", _submitting("revocation"), methods=["POST"]),
    Route("/registry/keys", registry_keys, methods=["GET"]),
    Route("/v1/delegations", _submitting("delegation"), methods=["POST"]),
    Route("/v1/claims", _submitting("claim-submission"), methods=["POST"]),
    Route("/v1/claims", list_claims, methods=["GET"]),
    Route("/v1/approvers", list_approvers, methods=["GET"]),
    Route("/v1/agents", list_agents, methods=["GET"]),
    Route("/v1/claims/approved", approved_claims, methods=["GET"]),
    Route("/v1/claims/{claim}", get_claim, methods=["GET"]),
    Route("/v1/claims/{claim}/{decision:str}", claim_decision, methods=["POST"]),
    Route("/v1/verify", verify_request, methods=["GET"]),
    Route("/v1/audit/{did:path}", audit, methods=["GET"]),
    Route("/v1/status-lists/{operator:path}", status_list, methods=["GET"]),
    Route("/.well-known/did.json", service_did, methods=["GET"]),
    Route("/1.0/identifiers/{did:path}", resolve_did, methods=["GET"]),
    Route("/v1/tokens", mint_token, methods=["POST"]),
    *(Route(path, _jsonld_context(url), methods=["GET"]) for path, url in jsonld_contexts.served_paths().items()),
]
