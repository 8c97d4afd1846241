"""did:web proof of control, offline: DID -> URL (the did:web spec's examples), what a DID document must list,
and the fold's evidence rules (trusted signer only; registration needs fresh evidence for the DID and key)."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.base64url import b64url
from schemas.errors import (
    DidWebDocumentInvalid,
    DidWebEvidenceMissing,
    DidWebEvidenceStale,
    DidWebEvidenceUntrusted,
    DidWebInvalid,
    DidWebKeyNotListed,
    TabellionError,
)
from schemas.statement import parse_statement
from tests.unit.verifier.identity_world import T0, World, snapshot
from verifier.did_web import EVIDENCE_MAX_AGE_S, did_web_url, listed_method, service_signers
from verifier.fold import Fold, key_digest
from verifier.keys import KeySet

DID = "did:web:bank.example"


@pytest.mark.parametrize(
    ("did", "url"),
    [
        # the examples of the did:web method specification
        ("did:web:w3c-ccg.github.io", "https://w3c-ccg.github.io/.well-known/did.json"),
        ("did:web:w3c-ccg.github.io:user:alice", "https://w3c-ccg.github.io/user/alice/did.json"),
        ("did:web:example.com%3A3000", "https://example.com:3000/.well-known/did.json"),
        ("did:web:example.com%3A3000:user:alice", "https://example.com:3000/user/alice/did.json"),
        ("did:web:example.com:u:bob", "https://example.com/u/bob/did.json"),
        ("did:web:localhost%3A8443", "https://localhost:8443/.well-known/did.json"),
        ("did:web:localhost%3a8443:a.b_c-d", "https://localhost:8443/a.b_c-d/did.json"),
    ],
)
def test_did_to_url(did: str, url: str) -> None:
    assert did_web_url(did) == url


@pytest.mark.parametrize(
    "did",
    [
        "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp", "did:web:", "did:web:example.com:", "did:web::a",
        "did:web:example.com%3A", "did:web:example.com%3A0", "did:web:example.com%3A70000", "did:web:-bad.example",
        "did:web:exa_mple.com", "did:web:example.com%2Fevil", "did:web:example.com:..", "did:web:example.com:.",
        "did:web:example.com:a%2Fb", "did:web:example.com:a/b", "did:web:user@example.com", "did:web:example..com",
        "did:web:" + "a" * 600,
    ],
)
def test_dids_that_name_no_single_document_are_refused(did: str) -> None:
    with pytest.raises(DidWebInvalid):
        did_web_url(did)


# --- the DID document ----------------------------------------------------------------------------------------


def _document(did: str, multikey: str, **extra: Any) -> dict[str, Any]:
    method = {"id": f"{did}#key-1", "type": "Multikey", "controller": did, "publicKeyMultibase": multikey}
    return {"@context": ["https://www.w3.org/ns/did/v1"], "id": did, "verificationMethod": [method],
            "assertionMethod": [f"{did}#key-1"], **extra}


def test_a_key_referenced_under_assertion_method_is_listed() -> None:
    world = World()
    mk = world.mk("op")
    assert listed_method(_document(DID, mk), DID, mk) == f"{DID}#key-1"
    relative = _document(DID, mk, assertionMethod=["#key-1"])
    relative["verificationMethod"][0]["id"] = "#key-1"
    assert listed_method(relative, DID, mk) == f"{DID}#key-1"
    embedded = {"id": DID, "assertionMethod": [{"id": "#k", "type": "Multikey", "publicKeyMultibase": mk}]}
    assert listed_method(embedded, DID, mk) == f"{DID}#k"


def test_an_ed25519_jwk_lists_the_key_too() -> None:
    world = World()
    raw = world.key("op").public_key().public_bytes_raw()
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
    document = {"id": DID, "verificationMethod": [{"id": f"{DID}#j", "type": "JsonWebKey", "publicKeyJwk": jwk}],
                "assertionMethod": [f"{DID}#j"]}
    assert listed_method(document, DID, world.mk("op")) == f"{DID}#j"
    with pytest.raises(DidWebKeyNotListed):
        listed_method(document, DID, world.mk("other"))


def test_a_key_not_under_assertion_method_is_not_listed() -> None:
    world = World()
    mk = world.mk("op")
    with pytest.raises(DidWebKeyNotListed, match="listed only in verificationMethod, authentication"):
        listed_method(_document(DID, mk, assertionMethod=[], authentication=[f"{DID}#key-1"]), DID, mk)
    with pytest.raises(DidWebKeyNotListed, match="does not list key"):
        listed_method(_document(DID, world.mk("someone-else")), DID, mk)
    with pytest.raises(DidWebKeyNotListed):  # a reference to a method the document does not hold
        listed_method(_document(DID, mk, assertionMethod=["did:web:other.example#key-1"]), DID, mk)


@pytest.mark.parametrize(
    "document",
    [[], "x", {"id": "did:web:other.example"}, {"id": DID, "assertionMethod": "#k"},
     {"id": DID, "assertionMethod": [1]}, {"id": DID, "verificationMethod": {}}],
)
def test_a_document_of_another_did_or_shape_is_invalid(document: Any) -> None:
    with pytest.raises(DidWebDocumentInvalid):
        listed_method(document, DID, World().mk("op"))


# --- the fold -------------------------------------------------------------------------------------------------


def _evidence(world: World, did: str = DID, key: str = "op", *, signer: str = "log", fetched_at: int = T0,
              url: str | None = None) -> str:
    payload = {"did": did, "url": url or did_web_url(did), "document_sha256": "ab" * 32, "fetched_at": fetched_at,
               "key": world.mk(key), "method": f"{did}#key-1", "relationship": "assertionMethod"}
    return world.add(signer, "did-web-evidence", payload, iat=fetched_at)


def _registration(world: World, did: str = DID, key: str = "op", namespace: str = "bank", *, iat: int | None = T0,
                  ) -> str:
    payload = {"operator": did, "namespace": namespace, "key": world.mk(key),
               "next_key_digest": key_digest(world.mk(key + "+1")), "witnesses": [], "witness_threshold": 0}
    return world.add(key, "operator-registration", payload, iss=did, iat=iat)


def _fold(world: World, signers: frozenset[str] | None = None) -> Fold:
    fold = Fold(service_signers=frozenset({world.did("log")}) if signers is None else signers)
    fold.apply_all(world.entries)
    return fold


def _refused_last(world: World, error: type[TabellionError], signers: frozenset[str] | None = None) -> None:
    """The last entry is refused with ``error`` (by ``check`` and by ``apply``), the state left as it was."""
    fold = _fold(World(world.keys, world.entries[:-1]), signers)
    before = snapshot(fold.state)
    with pytest.raises(error) as refused:
        fold.check(parse_statement(world.entries[-1].statement))
    assert type(refused.value) is error
    outcome = fold.apply(world.entries[-1])
    assert not outcome.accepted and outcome.reason.startswith(error.title), outcome.reason
    assert snapshot(fold.state) == before


def test_trusted_evidence_then_the_registration_of_that_key() -> None:
    world = World()
    evidence = _evidence(world)
    registration = _registration(world, iat=T0 + EVIDENCE_MAX_AGE_S)
    state = _fold(world).state
    assert [o.accepted for o in state.outcomes] == [True, True]
    assert state.controllers[DID].key == world.mk("op")
    assert state.controllers[DID].history[0].entry == registration
    recorded = state.did_web_evidence[(DID, world.mk("op"))]
    assert (recorded.entry, recorded.index, recorded.signer) == (evidence, 0, world.did("log"))
    # the operator then acts with its key, and rotates by the log's pre-rotation rules alone (no new evidence)
    rotation = {"controller": DID, "sequence": 1, "previous": registration, "key": world.mk("op+1"),
                "next_key_digest": key_digest(world.mk("op+2")), "witness_signatures": []}
    world.add("op+1", "key-rotation", rotation, iss=DID)
    assert _fold(world).state.controllers[DID].key == world.mk("op+1")


def test_without_evidence_a_did_web_registration_is_refused() -> None:
    world = World()
    _registration(world)
    _refused_last(world, DidWebEvidenceMissing)


def test_the_squatter_evidence_names_another_key() -> None:
    world = World()
    _evidence(world, key="op")  # the domain lists op's key
    _registration(world, key="squatter")
    _refused_last(world, DidWebEvidenceMissing)


def test_evidence_for_another_did_does_not_count() -> None:
    world = World()
    _evidence(world, did="did:web:bank.example:branch")
    _registration(world)
    _refused_last(world, DidWebEvidenceMissing)


@pytest.mark.parametrize("iat", [T0 + EVIDENCE_MAX_AGE_S + 1, T0 - EVIDENCE_MAX_AGE_S - 1, None])
def test_stale_evidence_does_not_count(iat: int | None) -> None:
    world = World()
    _evidence(world)
    _registration(world, iat=iat)
    _refused_last(world, DidWebEvidenceStale)


def test_evidence_from_a_stranger_is_refused_and_does_not_count() -> None:
    world = World()
    _evidence(world, signer="stranger")
    _refused_last(world, DidWebEvidenceUntrusted)
    _registration(world)
    state = _fold(world).state
    assert [o.accepted for o in state.outcomes] == [False, False]
    assert state.outcomes[1].reason.startswith(DidWebEvidenceMissing.title)


def test_a_fold_without_evidence_signers_trusts_no_evidence() -> None:
    world = World()
    _evidence(world)
    _refused_last(world, DidWebEvidenceUntrusted, signers=frozenset())
    _registration(world)
    assert [o.accepted for o in _fold(world, frozenset()).state.outcomes] == [False, False]
    assert [o.accepted for o in Fold().apply_all(world.entries).outcomes] == [False, False]


def test_evidence_with_another_url_or_after_the_registration_is_refused() -> None:
    world = World()
    _evidence(world, url="https://bank.example/did.json")
    assert not _fold(world).state.outcomes[0].accepted
    world = World()
    _evidence(world)
    _registration(world)
    _evidence(world)  # the DID is registered: evidence serves only its registration
    assert [o.accepted for o in _fold(world).state.outcomes] == [True, True, False]


def test_did_key_operators_need_no_evidence() -> None:
    world = World()
    world.register("op")
    assert _fold(world, frozenset()).state.outcomes[0].accepted


def test_the_evidence_signers_of_a_key_set_are_their_did_keys() -> None:
    world = World()
    keys = KeySet.from_keys([world.key("log").public_key(), world.key("old-log").public_key()])
    assert service_signers(keys) == {world.did("log"), world.did("old-log")}
