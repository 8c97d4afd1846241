"""The JSON-LD contexts Tabellion defines, shipped with the package (``schemas/contexts/``) and served by the
service at the path of their URL, so that a JSON-LD processor can process what Tabellion issues (VC 2.0 §4.3).

``AGENT_PASSPORT_CONTEXT`` (JSON-LD 1.1, ``@protected``) defines the ``AgentPassport`` type and every
``credentialSubject`` term of a passport (``verifier.passports``) under ``https://tabellion.dev/ns/agent-passport#``:
``agentKey`` (a Multikey value, typed ``https://w3id.org/security#multibase``), ``operator`` (a DID, an IRI),
``machineFingerprint``, ``substrateTier``, ``jurisdiction`` and ``policyBundle`` (strings). Every other term of a
passport is the VC 2.0 context's.
"""

from __future__ import annotations

from importlib import resources
from typing import Final
from urllib.parse import urlsplit

from schemas.errors import NotFound

AGENT_PASSPORT_CONTEXT: Final = "https://tabellion.dev/ns/agent-passport/v1"
MEDIA_TYPE: Final = "application/ld+json"
_FILES: Final = {AGENT_PASSPORT_CONTEXT: "agent-passport-v1.jsonld"}


def context_document(url: str) -> bytes:
    """The shipped context document of ``url`` (one of Tabellion's own), as served; ``NotFound`` otherwise."""
    name = _FILES.get(url)
    if name is None:
        raise NotFound(f"{url[:200]} is not a JSON-LD context Tabellion defines")
    return resources.files("schemas").joinpath("contexts", name).read_bytes()


def served_paths() -> dict[str, str]:
    """The path each context is served at (its URL's path) -> its URL."""
    return {urlsplit(url).path: url for url in _FILES}
