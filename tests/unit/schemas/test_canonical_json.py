"""canonical_json's fast path (Python's C encoder) against the rfc8785 package, on arbitrary JSON values."""

from __future__ import annotations

from typing import Any

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.identity_statements import canonical_json

TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=10)
SCALARS = (
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | TEXT
    | st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(["\x00\x1f\x7f\"\\", "\ue000", "\U0001f600"])
)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
                    max_leaves=12)


def _reference(value: Any) -> bytes | None:
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, ValueError, TypeError):
        return None


@settings(max_examples=500, deadline=None)
@given(JSON)
def test_same_bytes_as_rfc8785(value: Any) -> None:
    expected = _reference(value)
    if expected is None:
        try:
            canonical_json(value)
        except (rfc8785.CanonicalizationError, ValueError, TypeError):
            return
        raise AssertionError(f"rfc8785 refuses {value!r}, canonical_json did not")
    assert canonical_json(value) == expected


def test_utf16_key_order_differs_from_code_point_order() -> None:
    value = {"\ue000": 1, "\U0001f600": 2}  # U+1F600 is D83D DE00 in UTF-16: before U+E000
    assert canonical_json(value) == bytes(rfc8785.dumps(value))
    assert canonical_json(value).index("\U0001f600".encode()) < canonical_json(value).index("\ue000".encode())
