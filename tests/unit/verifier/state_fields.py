"""The fold's identity state as values to compare: every field a snapshot encodes, dict order included."""

from __future__ import annotations

import dataclasses
from typing import Any

from verifier.fold import IdentityState
from verifier.fold_snapshot import NOT_ENCODED


def fields_of(state: IdentityState) -> dict[str, Any]:
    """Every field of the state but its outcomes, as values to compare (dict order included)."""
    return {f.name: _ordered(getattr(state, f.name)) for f in dataclasses.fields(state) if f.name not in NOT_ENCODED}


def _ordered(value: Any) -> Any:
    return list(value.items()) if isinstance(value, dict) else value
