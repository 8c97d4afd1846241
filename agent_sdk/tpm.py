"""The hook for an agent key that lives in a TPM (filled by the TPM work, issue 13).

A TPM-resident key signs inside the TPM and never leaves it; to the SDK it is an ``AgentKey`` like any other
(``keyid`` and ``sign``). ``load_tpm_key`` is where the TPM work plugs in its loader; until then it refuses with
``TpmKeyUnavailable``, so an agent configured for a TPM key never falls back to a software key.
"""

from __future__ import annotations

from collections.abc import Callable

from schemas.errors import ConfigurationError

from .keys import AgentKey

TpmLoader = Callable[[str], AgentKey]
_loader: TpmLoader | None = None


class TpmKeyUnavailable(ConfigurationError):
    code = "tpm-key-unavailable"
    title = "TPM key unavailable"


def register_tpm_loader(loader: TpmLoader) -> None:
    """Install the function that opens a TPM key by its handle or path and returns an ``AgentKey``."""
    global _loader
    _loader = loader


def load_tpm_key(handle: str) -> AgentKey:
    """The TPM key named ``handle``, from the registered loader; ``TpmKeyUnavailable`` without one."""
    if _loader is None:
        raise TpmKeyUnavailable(f"no TPM support is installed to open the key {handle!r}")
    return _loader(handle)
