"""JSON bodies: nesting bounded by a scan before parsing, strict JSON, never a RecursionError."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.errors import ConfigurationError, JsonTooDeep, PayloadInvalid
from transparency.request_bodies import MAX_JSON_DEPTH, check_json_depth, parse_json_object
from transparency.settings import load_settings


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


def _nested(depth: int) -> str:
    text = "1"
    for level in range(depth):
        text = f'{{"k{level}": {text}}}' if level % 2 else f"[0, {text}]"
    return text


def test_the_bound_is_exact() -> None:
    check_json_depth(_nested(MAX_JSON_DEPTH))
    with pytest.raises(JsonTooDeep):
        check_json_depth(_nested(MAX_JSON_DEPTH + 1))


def test_brackets_inside_strings_do_not_count() -> None:
    check_json_depth(json.dumps({"a": "[" * 1000 + "{" * 1000, "b": ['"]]]\\"[[[' * 100]}))
    check_json_depth('{"\\\\": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\""}')


@pytest.mark.parametrize("text", ["[" * 10**6, "[" * 10**6 + "]" * 10**6, '{"a":' * 10**5 + "1" + "}" * 10**5,
                                  "[{" * 10**5 + "}]" * 10**5])
def test_deep_input_is_refused_before_parsing(text: str) -> None:
    """Refused by the bracket scan (no RecursionError reaches the caller, whatever the depth)."""
    with pytest.raises(JsonTooDeep):
        parse_json_object(text.encode())


def test_wide_input_is_accepted() -> None:
    """Depth, not size, is bounded: 20,000 shallow members parse (speed is for benchmarks, not tests)."""
    text = json.dumps({"a": [{"b": [1, 2, {}]} for _ in range(20_000)]})
    assert len(parse_json_object(text.encode())["a"]) == 20_000


@pytest.mark.parametrize("body", [b"", b"[]", b"1", b'"x"', b"\xff", b'{"a": NaN}', b'{"a": -Infinity}',
                                  b'{"a": ' + b"9" * 5000 + b"}", b'{"a": 1', b'[{]}', '{"a": 1}'.encode("utf-16")])
def test_not_a_json_object(body: bytes) -> None:
    with pytest.raises(PayloadInvalid):
        parse_json_object(body)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab,:'),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(alphabet='[]{}"\\a'), children,
                                                                       max_size=3),
    max_leaves=60,
)


@given(json_values)
def test_the_scan_agrees_with_the_parsed_depth(value: Any) -> None:
    text = json.dumps(value)
    if _depth(value) > MAX_JSON_DEPTH:
        with pytest.raises(JsonTooDeep):
            check_json_depth(text)
    else:
        check_json_depth(text)


@given(st.binary(max_size=200) | st.text(alphabet='[]{}"\\:,1 a', max_size=200).map(str.encode))
def test_any_bytes_are_an_object_or_a_refusal(body: bytes) -> None:
    with contextlib.suppress(PayloadInvalid, JsonTooDeep):
        assert isinstance(parse_json_object(body), dict)


def test_the_body_timeout_is_a_setting() -> None:
    assert load_settings(env={}).body_read_timeout_s == 10.0
    assert load_settings(env={"TABELLION_BODY_READ_TIMEOUT_S": "2.5"}).body_read_timeout_s == 2.5
    assert load_settings({"body_read_timeout_s": 1.0}, env={"TABELLION_BODY_READ_TIMEOUT_S": "2.5"}
                         ).body_read_timeout_s == 1.0
    for bad in ("0", "-1", "soon", "inf", "nan"):
        with pytest.raises(ConfigurationError):
            load_settings(env={"TABELLION_BODY_READ_TIMEOUT_S": bad})
