"""did:web proof of control, offline: the DID's URL, what its document must list, and the fold's evidence check.

A did:web operator is registered only with evidence that its domain's DID document, fetched over verified HTTPS
at registration time, lists the key it registers (docs/identity.md, "did:web proof of control"). The transparency
service fetches the document (``transparency.did_web``) and logs what it saw as a ``did-web-evidence`` statement
that it signs itself; the fold never fetches anything and reads only the log:

- ``accept_evidence``: a ``did-web-evidence`` entry is accepted only from a configured evidence signer (the log's
  own did:key; followers derive it from the log's key set with ``service_signers``), with the URL its DID maps
  to, and only while the DID is not registered yet (evidence serves its registration, nothing else);
- ``check_did_web_registration``: the registration of a ``did:web`` operator needs an accepted evidence entry
  earlier in the log naming that DID and the very key being registered, under ``assertionMethod``, fetched
  within ``EVIDENCE_MAX_AGE_S`` seconds of the registration's ``iat``.

The relationship is ``assertionMethod``: the registered key signs the operator's statements and passports (VC
proofs with proofPurpose assertionMethod); a key listed only under ``authentication`` is not enough. A key is
listed when a verification method under ``assertionMethod`` (embedded, or referenced by absolute or relative id)
has ``publicKeyMultibase`` equal to the multikey, or, for an Ed25519 key, a ``publicKeyJwk`` (RFC 8037 OKP,
``crv`` Ed25519) with the same ``x``. The document is checked only at registration: later rotations follow the
log's pre-rotation rules alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from schemas.base64url import b64url
from schemas.errors import (
    DidWebDocumentInvalid,
    DidWebEvidenceMissing,
    DidWebEvidenceStale,
    DidWebEvidenceUntrusted,
    DidWebInvalid,
    DidWebKeyNotListed,
    TransitionInvalid,
)
from verifier.did_key import did_key_from_public
from verifier.identity_state import DidWebEvidence, IdentityState, LoggedStatement, multikey_key
from verifier.keys import KeySet, public_key_bytes

DID_WEB: Final = "did:web:"
RELATIONSHIP: Final = "assertionMethod"
EVIDENCE_MAX_AGE_S: Final = 300
"""How far apart (either way) the evidence's ``fetched_at`` and the registration's ``iat`` may be, in seconds."""

MAX_DID_LENGTH: Final = 512
_HOST: Final = re.compile(r"(?P<host>[A-Za-z0-9.-]{1,253})(?:%3[Aa](?P<port>[0-9]{1,5}))?", re.ASCII)
_LABEL: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?", re.ASCII)
_SEGMENT: Final = re.compile(r"[A-Za-z0-9._-]+", re.ASCII)

Commit = Callable[[], None]


def did_web_url(did: str) -> str:
    """The HTTPS URL of ``did``'s DID document (did:web method, "Read (Resolve)").

    ``did:web:example.com`` -> ``https://example.com/.well-known/did.json``; ``did:web:example.com:user:alice``
    -> ``https://example.com/user/alice/did.json``; ``did:web:example.com%3A8443`` ->
    ``https://example.com:8443/.well-known/did.json``. Only the port's ``:`` may be percent-encoded; path
    segments are unreserved characters (no ``.`` or ``..`` segment), so the URL names exactly one document.
    """
    if not isinstance(did, str) or not did.startswith(DID_WEB) or len(did) > MAX_DID_LENGTH:
        raise DidWebInvalid(f"{str(did)[:200]!r} is not a did:web DID of at most {MAX_DID_LENGTH} characters")
    authority, *segments = did[len(DID_WEB) :].split(":")
    match = _HOST.fullmatch(authority)
    if match is None or not all(_LABEL.fullmatch(label) for label in match["host"].split(".")):
        raise DidWebInvalid(f"{did[:200]!r} does not name a domain (host, then an optional %3A and port)")
    port = match["port"]
    if port is not None and not 0 < int(port) < 65536:
        raise DidWebInvalid(f"{did[:200]!r} names port {port}, outside 1-65535")
    for segment in segments:
        if not _SEGMENT.fullmatch(segment) or segment in (".", ".."):
            raise DidWebInvalid(f"{did[:200]!r} has path segment {segment[:60]!r}; only A-Z a-z 0-9 . _ - are read")
    origin = "https://" + match["host"] + (f":{port}" if port is not None else "")
    return origin + ("/" + "/".join(segments) if segments else "/.well-known") + "/did.json"


def did_web_segments(did: str) -> tuple[str, ...]:
    """The method-specific segments of a well-formed did:web: its host with its port (the percent-encoded
    ``host[%3Aport]``, in lower case, as hosts and percent-encodings compare), then its path segments as written.
    ``did:web:Acme.example:people:alice`` -> ``("acme.example", "people", "alice")``; ``did:web:acme.example%3A8443``
    -> ``("acme.example%3a8443",)``, another host than ``acme.example``. ``DidWebInvalid`` if ``did`` is not a
    did:web ``did_web_url`` reads."""
    did_web_url(did)
    host, *path = did[len(DID_WEB):].split(":")
    return (host.lower(), *path)


def listed_method(document: Any, did: str, multikey: str) -> str:
    """The id (absolute DID URL) of the verification method of ``document`` that lists ``multikey`` under
    ``assertionMethod``; raises ``DidWebDocumentInvalid`` if it is not ``did``'s document, else
    ``DidWebKeyNotListed``."""
    if not isinstance(document, dict):
        raise DidWebDocumentInvalid("the DID document is not a JSON object")
    if document.get("id") != did:
        raise DidWebDocumentInvalid(f"the DID document's id is {str(document.get('id'))[:200]!r}, not {did[:200]}")
    methods = {_absolute(did, m["id"]): m for m in _list(document, "verificationMethod")
               if isinstance(m, dict) and isinstance(m.get("id"), str)}
    for item in _list(document, RELATIONSHIP):
        ident, method = _dereference(did, item, methods)
        if method is not None and _lists_key(method, multikey):
            return ident
    elsewhere = [name for name in ("verificationMethod", "authentication", "capabilityInvocation", "keyAgreement",
                                   "capabilityDelegation")
                 if any(_lists_key(m, multikey) for m in _methods_in(document, name, did, methods))]
    where = f"; it is listed only in {', '.join(elsewhere)}" if elsewhere else ""
    raise DidWebKeyNotListed(f"the DID document of {did[:200]} does not list key {multikey[:60]} under {RELATIONSHIP}"
                             + where)


def _list(document: dict[str, Any], name: str) -> list[Any]:
    value = document.get(name, [])
    if not isinstance(value, list):
        raise DidWebDocumentInvalid(f"the DID document's {name} is not a list")
    return value


def _absolute(did: str, ident: str) -> str:
    return did + ident if ident.startswith("#") else ident


def _dereference(did: str, item: Any, methods: dict[str, Any]) -> tuple[str, Any]:
    """A relationship entry: a reference to a verification method of the document, or an embedded one."""
    if isinstance(item, str):
        ident = _absolute(did, item)
        return ident, methods.get(ident)
    if isinstance(item, dict) and isinstance(item.get("id"), str):
        return _absolute(did, item["id"]), item
    raise DidWebDocumentInvalid("a verification relationship entry is neither a reference nor a verification method")


def _methods_in(document: dict[str, Any], name: str, did: str, methods: dict[str, Any]) -> list[Any]:
    if name == "verificationMethod":
        return list(methods.values())
    return [method for _, method in (_dereference(did, item, methods) for item in _list(document, name))
            if method is not None]


def _lists_key(method: Any, multikey: str) -> bool:
    """Does the verification method name ``multikey`` (as publicKeyMultibase, or an Ed25519 OKP JWK)?"""
    if not isinstance(method, dict):
        return False
    if method.get("publicKeyMultibase") == multikey:
        return True
    jwk = method.get("publicKeyJwk")
    if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        return False
    key = multikey_key(multikey)
    return isinstance(key, Ed25519PublicKey) and jwk.get("x") == b64url(public_key_bytes(key))


# --- the fold --------------------------------------------------------------------------------------------


def service_signers(keys: KeySet) -> frozenset[str]:
    """The did:key of every key in the log's key set: the signers whose did:web evidence a follower of that log
    trusts (the log signs evidence with its own key)."""
    return frozenset(did_key_from_public(keys.get(kid)) for kid in keys)


def accept_evidence(state: IdentityState, s: LoggedStatement, signers: frozenset[str]) -> Commit:
    """Check a ``did-web-evidence`` entry; return the change that records it for its (DID, key)."""
    if s.issuer not in signers:
        trusted = "no evidence signer is configured" if not signers else "it is not a configured evidence signer"
        raise DidWebEvidenceUntrusted(f"did:web evidence signed by {s.issuer[:200]}: {trusted}")
    p = s.payload
    did, key = p["did"], p["key"]
    url = did_web_url(did)
    if p["url"] != url:
        raise TransitionInvalid(f"the evidence names URL {p['url'][:200]}; {did[:200]} maps to {url[:200]}")
    if did in state.controllers:
        raise TransitionInvalid(f"{did[:200]} is already registered on this log; did:web evidence serves only "
                                "its registration")
    evidence = DidWebEvidence(s.entry, s.index, did, key, url, p["document_sha256"], p["fetched_at"], p["method"],
                              p["relationship"], s.issuer)
    return lambda: state.did_web_evidence.__setitem__((did, key), evidence)


def check_did_web_registration(state: IdentityState, s: LoggedStatement) -> None:
    """A did:web operator registration needs accepted, fresh evidence for its DID and key (module docstring)."""
    operator, key = s.payload["operator"], s.payload["key"]
    if not operator.startswith(DID_WEB):
        return
    evidence = state.did_web_evidence.get((operator, key))
    if evidence is None:
        raise DidWebEvidenceMissing(
            f"no accepted did-web-evidence earlier in the log shows the DID document of {operator[:200]} listing "
            f"key {key[:60]} under {RELATIONSHIP}"
        )
    check_fresh(evidence.fetched_at, s.issued_at, f"evidence entry {evidence.index}")


def check_fresh(fetched_at: int, issued_at: int | None, what: str) -> None:
    """Evidence fetched at ``fetched_at`` vouches for a registration issued at ``issued_at`` only within
    ``EVIDENCE_MAX_AGE_S`` seconds either way."""
    if issued_at is None:
        raise DidWebEvidenceStale("a did:web operator registration must carry its CWT iat")
    if abs(issued_at - fetched_at) > EVIDENCE_MAX_AGE_S:
        raise DidWebEvidenceStale(
            f"{what} fetched the DID document at {fetched_at}, {abs(issued_at - fetched_at)} s from the "
            f"registration's iat {issued_at} (at most {EVIDENCE_MAX_AGE_S} s)"
        )
