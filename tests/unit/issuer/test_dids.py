"""DID documents (issuer.dids) against the did:key method's document creation algorithm (W3C CCG did:key v0.7):
for an Ed25519 or P-256 did:key, one Multikey verification method ``did:key:z…#z…`` that authentication,
assertionMethod, capabilityInvocation and capabilityDelegation all reference, the DID v1 and Multikey v1 contexts,
and no keyAgreement (enableEncryptionKeyDerivation defaults to false)."""

from __future__ import annotations

from typing import Any

import pytest

from issuer.dids import DidNotFound, did_document, resolution
from tests.unit.verifier.identity_world import World
from verifier.fold import Fold

# the did:key specification's Ed25519 example identifier, and a P-256 one of its test vectors (nist-curves.json)
ED25519_DID = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
P256_DID = "did:key:zDnaerDaTF5BXEavCrfRZEk316dpbLsfPDZ3WJ5hRTPFU2169"


def method_spec_document(did: str) -> dict[str, Any]:
    """What the did:key document creation algorithm yields for a signature key with the default options."""
    method_id = f"{did}#{did.removeprefix('did:key:')}"
    return {
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "id": did,
        "verificationMethod": [{"id": method_id, "type": "Multikey", "controller": did,
                                "publicKeyMultibase": did.removeprefix("did:key:")}],
        "authentication": [method_id],
        "assertionMethod": [method_id],
        "capabilityInvocation": [method_id],
        "capabilityDelegation": [method_id],
    }


@pytest.mark.parametrize("did", [ED25519_DID, P256_DID])
def test_a_did_key_unknown_to_the_log_gets_the_method_document(did: str) -> None:
    document, metadata = did_document(Fold().apply_all([]), did)
    assert document == method_spec_document(did)
    assert "keyAgreement" not in document
    assert metadata == {"deactivated": False}
    assert resolution(document, metadata)["didDocument"] is document


def test_an_agent_with_a_passport_keeps_the_method_document() -> None:
    world = World()
    world.register("op")
    world.passport("a")
    document, metadata = did_document(world.fold(), world.did("a"))
    assert document == method_spec_document(world.did("a"))
    assert metadata["passport"]["operator"] == world.did("op") and metadata["deactivated"] is False


def test_a_revoked_did_key_is_deactivated_and_references_no_method() -> None:
    world = World()
    world.register("op")
    world.passport("a")
    world.revoke("op", world.did("a"))
    document, metadata = did_document(world.fold(), world.did("a"))
    assert metadata["deactivated"] is True and metadata["revocation"]["reason"] == "privilegeWithdrawn"
    assert document["verificationMethod"] == method_spec_document(world.did("a"))["verificationMethod"]
    for relationship in ("authentication", "assertionMethod", "capabilityInvocation", "capabilityDelegation"):
        assert document[relationship] == []


def test_a_controller_references_its_current_key_in_every_relationship() -> None:
    world = World()
    registration = world.register("op")
    world.rotate("op", registration)
    document, metadata = did_document(world.fold(), world.did("op"))
    current, earlier = document["verificationMethod"]
    assert current["id"] == f"{world.did('op')}#{world.mk('op+1')}" != earlier["id"]
    for relationship in ("authentication", "assertionMethod", "capabilityInvocation", "capabilityDelegation"):
        assert document[relationship] == [current["id"]]
    assert len(metadata["keyHistory"]) == 2


@pytest.mark.parametrize("did", ["did:key:z6LSbysY2xFMRpGMhb7tFTLMpeuPRaqaWM1yECx2AtzE3KCc", "did:key:zzz",
                                 "did:example:123"])
def test_what_is_no_supported_did_key_is_not_found(did: str) -> None:
    with pytest.raises(DidNotFound):
        did_document(Fold().apply_all([]), did)
