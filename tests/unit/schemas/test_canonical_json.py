"""canonical_json's fast path (Python's C encoder) against the rfc8785 package, on arbitrary JSON values; and the
check that a payload is canonical (``canonical_value``: Python's encoder writing the payload back, when every
number is a safe integer and no character is from U+E000 up) against rfc8785 on arbitrary JSON texts."""

from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.errors import PayloadInvalid
from schemas.identity_statements import _plain, canonical_json, canonical_value

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


# --- parse_payload's check of canonical form (``canonical_value``), against rfc8785 -------------------------

KEYS = TEXT | st.sampled_from(["\ue000", "\U0001f600", "\x01"])
WIDE_JSON = st.recursive(
    SCALARS | st.integers() | st.sampled_from([2**53 - 1, 2**53, -(2**53) + 1, -(2**53), 1e21, -0.0, 0.5]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4), max_leaves=12)


@st.composite
def _payloads(draw: st.DrawFn) -> bytes:
    """JSON texts: canonical ones, others that Python writes (unsorted, ASCII-escaped, spaced), and edits."""
    value = draw(WIDE_JSON)
    how = draw(st.sampled_from(["jcs", "sorted", "ascii", "spaced", "plain", "edited"]))
    try:
        if how == "jcs":
            return bytes(rfc8785.dumps(value))
        if how == "edited":
            text = bytearray(bytes(rfc8785.dumps(value)))
            at = draw(st.integers(0, max(len(text) - 1, 0)))
            text[at:at] = draw(st.sampled_from([b" ", b"\\u0041", b"0", b".0", b"e1", b"\xee\x80\x80", b"1"]))
            return bytes(text)
    except (rfc8785.CanonicalizationError, ValueError, TypeError):
        return json.dumps(value).encode()
    choices: dict[str, dict[str, Any]] = {
        "sorted": {"sort_keys": True, "ensure_ascii": False, "separators": (",", ":")},
        "ascii": {"sort_keys": True, "separators": (",", ":")}, "spaced": {"sort_keys": True, "ensure_ascii": False},
        "plain": {"ensure_ascii": False, "separators": (",", ":")}}
    return json.dumps(value, **choices[how]).encode("utf-8", "surrogatepass")


def _is_canonical(payload: bytes) -> bool:
    try:
        value = json.loads(payload.decode("utf-8"))
        return bytes(rfc8785.dumps(value)) == payload
    except (ValueError, TypeError, RecursionError, rfc8785.CanonicalizationError):
        return False


@settings(max_examples=1500, deadline=None)
@given(_payloads())
def test_canonical_value_accepts_exactly_the_canonical_payloads(payload: bytes) -> None:
    try:
        value = canonical_value("delegation", payload)
    except PayloadInvalid:
        assert not _is_canonical(payload)
        return
    assert _is_canonical(payload)
    assert value == json.loads(payload)


def test_canonical_value_refuses_what_only_python_writes_alike() -> None:
    for payload in (b'{"a":1.0}', b'{"a":9007199254740993}', '{"\ue000":1,"\U0001f600":2}'.encode(),
                    b'{"a":NaN}', b'["\\ud800"]', b'{"a":1,"a":1}'):
        with pytest.raises(PayloadInvalid):
            canonical_value("delegation", payload)
    assert canonical_value("delegation", '{"\U0001f600":2,"\ue000":1}'.encode()) == {"\U0001f600": 2, "\ue000": 1}
    assert canonical_value("delegation", b'{"a":9007199254740991,"b":"\\u001f"}') == {"a": 2**53 - 1, "b": "\x1f"}


# --- ``_plain`` (which values take the C encoder's path) against the plain walk it replaced ---------------------

def _plain_reference(value: Any) -> bool:
    """The walk ``_plain`` was first written as: one item at a time, each key checked on its own."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if -(2**53 - 1) <= item <= 2**53 - 1:
                continue
            return False
        if kind is list:
            stack.extend(item)
        elif kind is dict:
            for key in item:
                if type(key) is not str or (key and max(key) >= "\ue000"):
                    return False
            stack.extend(item.values())
        else:
            return False
    return True


class _Text(str):
    pass


ODD = st.sampled_from([1.5, 2**53, -(2**53), 2**53 - 1, True, (1,), _Text("a"), b"x", float("nan")])
ODD_KEYS = KEYS | st.sampled_from(["", "\ud7ff", "\ue000", "\uffff", "a\U00010000"])
ANY_JSON = st.recursive(
    SCALARS | st.integers() | ODD,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ODD_KEYS | st.sampled_from([1, _Text("k")]), inner,
                                                                max_size=4),
    max_leaves=14)


@settings(max_examples=1500, deadline=None)
@given(ANY_JSON)
def test_plain_agrees_with_the_plain_walk(value: Any) -> None:
    assert _plain(value) == _plain_reference(value)


def test_not_json_is_refused_in_json_loads_words() -> None:
    """The decoder kept per thread refuses a payload in the words ``json.loads`` uses (they are in the outcome)."""
    for payload in (b"\xef\xbb\xbf{}", b"", b"{} x", b"{", b'{"a":}', b"[1,]", b"\xff"):
        try:
            json.loads(payload.decode("utf-8"))
        except ValueError as exc:
            expected = f"the delegation payload is not JSON: {exc}"
        with pytest.raises(PayloadInvalid) as refused:
            canonical_value("delegation", payload)
        assert refused.value.detail == expected
