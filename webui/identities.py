"""Identities as pages show them: a DID shortened for a label, with the whole DID kept for its title."""

from __future__ import annotations

from typing import Final

SHORT_DID: Final = 30


def short_did(did: str, keep: int = SHORT_DID) -> str:
    """``did:key:z6MkhaX…a2doK``: the method and the start of the identifier, the last few characters."""
    if len(did) <= keep:
        return did
    return f"{did[:keep - 8]}…{did[-6:]}"
