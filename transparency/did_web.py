"""did:web proof of control, online: fetch a did:web DID document over verified HTTPS and log what it lists.

The fold (``verifier.did_web``) accepts a did:web operator registration only after a ``did-web-evidence`` entry,
signed by the log, for its DID and key. When a registration reaches the log without such evidence (the fold
refuses it with ``DidWebEvidenceMissing``), the service (``TransparencyService.register``) asks
``DidWebProver.evidence`` for it, registers that statement through the normal sequencer path, waits for it to be
folded, then checks the registration again. ``evidence``:

1. maps the DID to its URL (did:web method: ``did:web:example.com`` -> ``https://example.com/.well-known/did.json``)
   and passes it to ``_check_target`` (outbound address filtering);
2. fetches it with httpx over HTTPS with certificate verification (the CA bundle ``did_web_ca_file``, else the
   system's trust store; no proxy or TLS settings from the environment), within ``did_web_timeout_s`` for the
   whole fetch, following at most ``MAX_REDIRECTS`` redirects and only to the same host and port;
3. requires a 200 answer with a JSON media type, at most ``MAX_DOCUMENT_BYTES``, that is a JSON object without
   repeated member names whose ``id`` is the DID, and that lists the registering key under ``assertionMethod``;
4. signs ``{did, url, document_sha256, fetched_at, key, method, relationship}`` with the log's own Ed25519 key,
   ``iss`` = that key's did:key (followers derive it from the log's key set: ``verifier.did_web.service_signers``).

Any failure raises a precise error (``did-web-unreachable``, ``did-web-certificate-invalid``,
``did-web-document-invalid``, ``did-web-key-not-listed``, ``did-web-invalid``) and nothing is logged.
``DidWebClock`` (a registration policy) refuses a did:web registration whose ``iat`` is not within
``EVIDENCE_MAX_AGE_S`` of the log's clock, so evidence that vouches for it is never older than twice that.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas import cose_labels as L
from schemas.errors import (
    ConfigurationError,
    DidWebCertificateInvalid,
    DidWebDocumentInvalid,
    DidWebRegistrationStale,
    DidWebUnreachable,
)
from schemas.identity_statements import content_type, encode_payload, parse_payload, statement_type_of
from schemas.statement import SignedStatement
from transparency.client.signing import did_of, sign_statement
from transparency.outbound import AllowedTargets, check_outbound_url, pinned_target
from transparency.settings import Settings
from verifier.did_web import DID_WEB, EVIDENCE_MAX_AGE_S, RELATIONSHIP, check_fresh, did_web_url, listed_method

MAX_DOCUMENT_BYTES: Final = 64 * 1024
MAX_REDIRECTS: Final = 3
_JSON_TYPES: Final = ("application/json", "application/did+json", "application/did+ld+json", "application/ld+json")
_HEADERS: Final = {"Accept": "application/did+json, application/json", "Accept-Encoding": "identity"}
Clock = Callable[[], float]


@dataclass(frozen=True)
class DidWebClock:
    """Registration policy: a did:web operator registration must carry an ``iat`` within ``EVIDENCE_MAX_AGE_S``
    of the log's clock (evidence fetched now, or already logged for it, is then at most twice that old)."""

    clock: Clock = time.time

    def check(self, statement: SignedStatement) -> None:
        if not statement.issuer.startswith(DID_WEB) or statement_type_of(statement.content_type) != (
            "operator-registration"
        ):
            return
        now, iat = int(self.clock()), statement.issued_at
        if iat is None:
            raise DidWebRegistrationStale("a did:web operator registration must carry its CWT iat")
        if abs(now - iat) > EVIDENCE_MAX_AGE_S:
            raise DidWebRegistrationStale(
                f"the registration's iat {iat} is {abs(now - iat)} s from the log's clock {now} (at most "
                f"{EVIDENCE_MAX_AGE_S} s for a did:web operator, whose DID document is fetched at registration)"
            )


@dataclass
class DidWebProver:
    """Fetches did:web DID documents and signs what they list as ``did-web-evidence`` with the log's key."""

    key: Ed25519PrivateKey = field(repr=False)
    ca_file: Path | None = None
    timeout_s: float = 5.0
    allow: AllowedTargets = field(default_factory=AllowedTargets)  # non-public ranges it may reach (outbound)
    clock: Clock = time.time
    context: ssl.SSLContext = field(init=False)

    def __post_init__(self) -> None:
        try:
            self.context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(f"the did:web CA bundle {self.ca_file}: {exc}") from exc

    @classmethod
    def from_settings(cls, key: Ed25519PrivateKey, settings: Settings) -> DidWebProver:
        return cls(key, settings.did_web_ca_file, settings.did_web_timeout_s, settings.allowed_targets)

    @property
    def signer(self) -> str:
        """The did:key that signs the evidence (the log key's)."""
        return did_of(self.key)

    async def evidence(self, registration: SignedStatement) -> bytes:
        """The signed ``did-web-evidence`` statement for a did:web operator registration (module docstring)."""
        payload = parse_payload("operator-registration", registration.payload)
        did, multikey = payload["operator"], payload["key"]
        url = did_web_url(did)
        body = await fetch_document(url, self.context, self.timeout_s, allow=self.allow)
        fetched_at = int(self.clock())
        method = listed_method(parse_document(body), did, multikey)
        check_fresh(fetched_at, registration.issued_at, "the DID document fetched now")
        evidence = {"did": did, "url": url, "document_sha256": hashlib.sha256(body).hexdigest(),
                    "fetched_at": fetched_at, "key": multikey, "method": method, "relationship": RELATIONSHIP}
        return sign_statement(self.key, encode_payload("did-web-evidence", evidence), subject=did,
                              content_type=content_type("did-web-evidence"), issuer=self.signer,
                              extra_claims={L.CWT_IAT: fetched_at})


async def fetch_document(url: str, context: ssl.SSLContext, timeout_s: float, *, allow: AllowedTargets) -> bytes:
    """GET ``url`` over verified HTTPS (same-host redirects only, size and time limited); the body's bytes.

    Every URL, redirects included, must resolve to public addresses only, unless ``allow`` names their range
    (``transparency.outbound``); the request then goes to the address checked, so DNS cannot change it between
    the check and the connection (the certificate is still verified for the DID's host name)."""
    try:
        async with asyncio.timeout(timeout_s), httpx.AsyncClient(
            verify=context, follow_redirects=False, trust_env=False, timeout=timeout_s, headers=_HEADERS
        ) as client:
            for _ in range(MAX_REDIRECTS + 1):
                addresses = await asyncio.to_thread(check_outbound_url, url, allow=allow)
                target = pinned_target(url, addresses[0])
                async with client.stream("GET", target.url, headers=target.headers,
                                         extensions=target.extensions) as response:
                    if response.is_redirect:
                        url = _same_host(url, response.headers.get("location", ""))
                        continue
                    return await _body(url, response)
            raise DidWebUnreachable(f"more than {MAX_REDIRECTS} redirects fetching the DID document")
    except TimeoutError as exc:
        raise DidWebUnreachable(f"no DID document from {url[:200]} within {timeout_s:g} s") from exc
    except httpx.HTTPError as exc:
        if _certificate_refused(exc):
            raise DidWebCertificateInvalid(f"the TLS certificate of {url[:200]} does not verify: {exc}") from exc
        raise DidWebUnreachable(f"cannot fetch {url[:200]}: {type(exc).__name__} {exc}") from exc


def _same_host(url: str, location: str) -> str:
    here = httpx.URL(url)
    there = here.join(location)
    if there.scheme != "https" or there.host != here.host or there.port != here.port:
        raise DidWebUnreachable(f"{url[:200]} redirects to {str(there)[:200]}, not on the same host over HTTPS")
    return str(there)


async def _body(url: str, response: httpx.Response) -> bytes:
    if response.status_code != 200:
        raise DidWebUnreachable(f"{url[:200]} answered {response.status_code}, not 200 with the DID document")
    media_type = response.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type not in _JSON_TYPES and not (media_type.startswith("application/") and media_type.endswith("+json")):
        raise DidWebDocumentInvalid(f"{url[:200]} answered with content type {media_type[:80]!r}, not JSON")
    declared = response.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_DOCUMENT_BYTES:
        raise DidWebDocumentInvalid(f"the DID document is {declared} bytes, over {MAX_DOCUMENT_BYTES}")
    body = bytearray()
    async for chunk in response.aiter_raw():
        body += chunk
        if len(body) > MAX_DOCUMENT_BYTES:
            raise DidWebDocumentInvalid(f"the DID document is over {MAX_DOCUMENT_BYTES} bytes")
    return bytes(body)


def parse_document(body: bytes) -> Any:
    """The DID document's JSON (an object is checked by ``listed_method``); repeated member names are refused,
    as two readers could take different values."""
    try:
        return json.loads(body.decode("utf-8"), object_pairs_hook=_unique_members)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise DidWebDocumentInvalid(f"the DID document is not UTF-8 JSON: {str(exc)[:200]}") from exc


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        raise DidWebDocumentInvalid("the DID document repeats a member name in an object")
    return value


def _certificate_refused(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)
