"""The one strict integer parser of request parameters."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.errors import InvalidParameter
from transparency.request_params import MAX_INT64, parse_int


@pytest.mark.parametrize("text", ["0", "7", "0007", str(MAX_INT64), "9" * 18])
def test_ascii_digits_in_range(text: str) -> None:
    assert parse_int(text, "x") == int(text)


@pytest.mark.parametrize("text", ["", "²", "١", "٣٤", "𝟗", "-1", "+1", " 1", "1 ", "1\n", "1.0", "1e3", "0x1", "1_0",
                                  str(MAX_INT64 + 1), "1" * 20, "1" * 5000, "\x00"])
def test_everything_else_is_refused(text: str) -> None:
    with pytest.raises(InvalidParameter):
        parse_int(text, "x")


def test_range() -> None:
    assert parse_int("5", "x", low=5, high=5) == 5
    for text in ("4", "6"):
        with pytest.raises(InvalidParameter):
            parse_int(text, "x", low=5, high=5)


@given(st.text(max_size=30))
def test_any_text_is_a_number_in_range_or_invalid_parameter(text: str) -> None:
    try:
        value = parse_int(text, "x")
    except InvalidParameter:
        return
    assert text.isascii() and text.isdigit() and 0 <= value <= MAX_INT64
