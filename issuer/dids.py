"""DID documents derived from the log (W3C DID Core 1.0, Multikey verification methods).

- A controller registered on the log (operator, namespace owner): its current key, every earlier key of
  its rotation history with the log entry that made it current (a receipt is at ``/entries/{entry}``),
  and ``deactivated`` once the DID is revoked.
- Any other ``did:key``: the document the method itself defines (W3C CCG did:key v0.7, "Document Creation
  Algorithm", with its defaults: ``publicKeyFormat`` Multikey, ``enableEncryptionKeyDerivation`` false, so no
  ``keyAgreement``), plus what the log says about it (revocation, passport) in the document metadata.
- The service itself: a ``did:web`` document whose keys are the log's receipt keys (retired ones kept,
  for verifying what they signed) and whose services point at the transparency API.

``resolution`` wraps a document in the DID Resolution result shape that the Universal Resolver answers
at ``/1.0/identifiers/{did}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlsplit

from schemas.errors import NotFound
from verifier.did_key import multibase_of, resolve_did_key
from verifier.fold import IdentityState
from verifier.keys import KeySet, PublicKey
from verifier.passports import format_timestamp

DID_CONTEXT = ("https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1")
RESOLUTION_CONTEXT = "https://w3id.org/did-resolution/v1"
DID_MEDIA_TYPE = "application/did+ld+json"
SIGNATURE_RELATIONSHIPS = ("authentication", "assertionMethod", "capabilityInvocation", "capabilityDelegation")
"""The verification relationships the did:key method gives its one signature method (Ed25519 or P-256); a
controller's current key on the log gets the same ones. A revoked (deactivated) DID's are empty."""


class DidNotFound(NotFound):
    code = "did-not-found"
    title = "DID not found"


def _method(did: str, multikey: str) -> dict[str, str]:
    return {"id": f"{did}#{multikey}", "type": "Multikey", "controller": did, "publicKeyMultibase": multikey}


def did_document(state: IdentityState, did: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The DID document of ``did`` as the log has it, and its document metadata."""
    revocation = state.revocation_of(did)
    meta: dict[str, Any] = {"deactivated": revocation is not None}
    if revocation is not None:
        meta["revocation"] = {"entry": revocation.entry, "index": revocation.index, "reason": revocation.reason,
                              "receipt": f"/entries/{revocation.entry}"}
    controller = state.controllers.get(did)
    if controller is not None:
        current = _method(did, controller.key)
        methods = [current] + [_method(did, e.key) for e in reversed(controller.history[:-1])]
        first, last = controller.history[0], controller.history[-1]
        meta.update({
            "versionId": str(last.sequence),
            "created_entry": first.entry,
            "updated_entry": last.entry,
            "namespace": controller.namespace,
            "nextKeyDigest": controller.next_key_digest,
            "keyHistory": [{"sequence": e.sequence, "key": e.key, "entry": e.entry, "index": e.index,
                            "receipt": f"/entries/{e.entry}"} for e in controller.history],
        })
    elif did.startswith("did:key:"):
        try:
            multikey = multibase_of(resolve_did_key(did))
        except Exception as exc:  # noqa: BLE001 - any defect of the DID is "not found" here
            raise DidNotFound(f"{did[:200]} is not a did:key this resolver understands") from exc
        current = _method(did, multikey)
        methods = [current]
    else:
        raise DidNotFound(f"{did[:200]} is not registered on this log")
    passport = state.passports.get(did)
    if passport is not None:
        meta["passport"] = {"entry": passport.entry, "index": passport.index, "operator": passport.operator,
                            "validUntil": format_timestamp(passport.valid_until),
                            "receipt": f"/entries/{passport.entry}"}
    document = {
        "@context": list(DID_CONTEXT), "id": did, "verificationMethod": methods,
        **{relationship: [current["id"]] if revocation is None else [] for relationship in SIGNATURE_RELATIONSHIPS},
    }
    return document, meta


def resolution(document: dict[str, Any], metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": RESOLUTION_CONTEXT,
        "didDocument": document,
        "didResolutionMetadata": {"contentType": DID_MEDIA_TYPE},
        "didDocumentMetadata": metadata,
    }


def did_web(base_url: str) -> str:
    """``did:web`` for a base URL: the host, ``:`` of a port percent-encoded, path segments after ``:``."""
    parts = urlsplit(base_url)
    did = "did:web:" + quote(parts.netloc, safe="")
    path = parts.path.strip("/")
    return did + ("".join(":" + quote(p, safe="") for p in path.split("/")) if path else "")


def service_document(
    base_url: str, receipt_keys: KeySet, current_kid: bytes, registry_keys: Sequence[tuple[str, PublicKey]] = ()
) -> dict[str, Any]:
    """The service's own ``did:web`` document: its receipt keys (``#<multikey>``, current first), its registry
    keys (``#<kid>``, current first: they sign status lists and tokens) and its endpoints."""
    did = did_web(base_url)
    methods = [_method(did, multibase_of(receipt_keys.get(kid)))
               for kid in sorted(receipt_keys, key=lambda k: k != current_kid)]
    registry = [{**_method(did, multibase_of(key)), "id": f"{did}#{kid}"} for kid, key in registry_keys]
    base = base_url.rstrip("/")
    return {
        "@context": list(DID_CONTEXT), "id": did, "verificationMethod": methods + registry,
        "assertionMethod": [m["id"] for m in (methods[:1] + registry[:1])],
        "service": [
            {"id": f"{did}#scitt", "type": "TransparencyService", "serviceEndpoint": base},
            {"id": f"{did}#resolver", "type": "DIDResolver", "serviceEndpoint": f"{base}/1.0/identifiers/"},
        ],
    }
