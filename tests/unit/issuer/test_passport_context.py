"""The agent passport's JSON-LD context (schemas/contexts/agent-passport-v1.jsonld), processed by an independent
JSON-LD 1.1 processor (PyLD), offline: the VC 2.0 context comes from tests/vectors/jsonld-contexts, Tabellion's from
the package data, and any other URL is refused. Expansion runs in "safe mode" (PyLD has no such option; its
``on_property_dropped`` hook raises here, as jsonld.js's ``safe: true`` does): an issued passport expands with no
term dropped, every credentialSubject member to an IRI of https://tabellion.dev/ns/agent-passport#, while a
passport with a term no context defines is caught. The context is served at /ns/agent-passport/v1; the
eddsa-jcs-2022 proof needs no context at all (JCS signs the JSON as it is)."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pyld import jsonld
from starlette.applications import Starlette

from issuer.routes import ROUTES
from issuer.statements import PassportRequest, Signer, agent_passport
from schemas.jsonld_contexts import AGENT_PASSPORT_CONTEXT, MEDIA_TYPE, context_document
from schemas.statement import parse_statement
from tests.vectors import vectors_dir
from verifier.data_integrity import verify_proof
from verifier.passports import PASSPORT_CONTEXT

VC_V2 = "https://www.w3.org/ns/credentials/v2"
NS = "https://tabellion.dev/ns/agent-passport#"
SUBJECT_TERMS = ("agentKey", "operator", "machineFingerprint", "substrateTier", "jurisdiction", "policyBundle")


def offline_loader(url: str, options: Any = None) -> dict[str, Any]:
    """Only the two contexts a passport names, from files in this repository; never the network."""
    if url == VC_V2:
        document = json.loads((vectors_dir() / "jsonld-contexts" / "credentials-v2.jsonld").read_text("utf-8"))
    elif url == AGENT_PASSPORT_CONTEXT:
        document = json.loads(context_document(url))
    else:
        raise LookupError(f"no offline copy of {url}")
    return {"contentType": MEDIA_TYPE, "contextUrl": None, "documentUrl": url, "document": document}


class Dropped(Exception):
    pass


def _refuse(term: str | None) -> None:
    raise Dropped(term)


def expand_safely(document: dict[str, Any]) -> list[dict[str, Any]]:
    expanded: list[dict[str, Any]] = jsonld.expand(document, {"documentLoader": offline_loader},
                                                   on_property_dropped=_refuse)
    return expanded


def dropped_terms(document: dict[str, Any]) -> list[str | None]:
    dropped: list[str | None] = []
    jsonld.expand(document, {"documentLoader": offline_loader}, on_property_dropped=dropped.append)
    return dropped


@pytest.fixture(scope="module")
def passport() -> dict[str, Any]:
    """A passport as the issuer issues it: the credential in the payload of an agent-passport statement."""
    operator, agent = Signer(Ed25519PrivateKey.generate()), Signer(Ed25519PrivateKey.generate())
    statement = agent_passport(operator, PassportRequest(
        agent.identity, "tpm", "sha256:" + "ab" * 32, "EU", "sha256:" + "cd" * 32, "https://status.example/1", 7))
    credential: dict[str, Any] = json.loads(parse_statement(statement).payload)["credential"]
    assert credential["@context"] == list(PASSPORT_CONTEXT)
    return credential


def test_an_issued_passport_expands_with_no_term_dropped(passport: dict[str, Any]) -> None:
    (node,) = expand_safely(passport)
    assert node["@type"] == ["https://www.w3.org/2018/credentials#VerifiableCredential", NS + "AgentPassport"]
    (subject,) = node["https://www.w3.org/2018/credentials#credentialSubject"]
    assert set(subject) == {"@id", *(NS + term for term in SUBJECT_TERMS)}
    assert subject["@id"] == passport["credentialSubject"]["id"]
    assert subject[NS + "operator"] == [{"@id": passport["issuer"]}]  # a DID, so an IRI
    assert subject[NS + "agentKey"] == [{"@value": passport["credentialSubject"]["agentKey"],
                                         "@type": "https://w3id.org/security#multibase"}]
    for term in ("machineFingerprint", "substrateTier", "jurisdiction", "policyBundle"):
        assert subject[NS + term] == [{"@value": passport["credentialSubject"][term]}]
    (proof_graph,) = node["https://w3id.org/security#proof"]
    (proof,) = proof_graph["@graph"]
    assert proof["@type"] == ["https://w3id.org/security#DataIntegrityProof"]


def test_every_term_of_the_context_is_defined_under_the_passport_namespace() -> None:
    context = json.loads(context_document(AGENT_PASSPORT_CONTEXT))["@context"]
    assert context["@version"] == 1.1 and context["@protected"] is True
    defined = {term for term in context if not term.startswith("@")} - {"id", "type"}
    assert defined == {"AgentPassport", *SUBJECT_TERMS}
    assert all(context[term]["@id"] == NS + term for term in defined)


def test_an_unknown_term_is_dropped_and_caught(passport: dict[str, Any]) -> None:
    unknown = copy.deepcopy(passport)
    unknown["credentialSubject"]["favouriteColour"] = "blue"
    assert dropped_terms(unknown) == ["favouriteColour"]
    with pytest.raises(Dropped):
        expand_safely(unknown)


def test_without_the_passport_context_its_terms_are_dropped(passport: dict[str, Any]) -> None:
    """What a processor made of a passport while the context could not be had: every subject term lost."""
    bare = {**copy.deepcopy(passport), "@context": [VC_V2]}
    del bare["proof"]  # the proof's own @context names the passport context too
    assert sorted(term for term in dropped_terms(bare) if term is not None) == sorted(SUBJECT_TERMS)


def test_the_context_is_protected(passport: dict[str, Any]) -> None:
    redefined = {**copy.deepcopy(passport), "@context": [*PASSPORT_CONTEXT, {"agentKey": "https://evil.example#k"}]}
    with pytest.raises(jsonld.JsonLdError, match="protected"):
        expand_safely(redefined)


def test_the_eddsa_jcs_2022_proof_needs_no_context(passport: dict[str, Any]) -> None:
    """JCS signs the JSON as it is: the proof verifies with no document loader at all, and expansion leaves the
    credential it verified unchanged."""
    before = copy.deepcopy(passport)
    assert verify_proof(passport).verification_method == passport["proof"]["verificationMethod"]
    expand_safely(passport)
    assert passport == before and verify_proof(passport).verification_method


async def _get(path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=Starlette(routes=ROUTES))
    async with httpx.AsyncClient(transport=transport, base_url="http://tabellion.test") as client:
        return await client.get(path)


def test_the_service_serves_the_context() -> None:
    answer = asyncio.run(_get("/ns/agent-passport/v1"))
    assert answer.status_code == 200 and answer.headers["content-type"] == MEDIA_TYPE
    assert answer.content == context_document(AGENT_PASSPORT_CONTEXT)
    assert answer.headers["access-control-allow-origin"] == "*"
    assert offline_loader(AGENT_PASSPORT_CONTEXT)["document"] == answer.json()
