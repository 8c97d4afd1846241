"""Stray breaks (0xFF) wherever cbor2 can put one, and items that value sharing turns into graphs."""

from __future__ import annotations

import time

import cbor2
import pytest

from schemas import cbor
from schemas.errors import MalformedCbor


@pytest.mark.parametrize(
    "hex_item",
    [
        "ff",  # the item itself
        "8201ff",  # an array element
        "a101ff",  # a map value
        "a1ff01",  # a map key
        "d903e8ff",  # a tag's content
        "d901028201ff",  # an element of a set (tag 258)
        "a1a101ff02",  # a value inside a map used as a map key (FrozenDict)
        "a1a1ff0102",  # a key inside a map used as a map key
        "a1820aff02",  # an element of an array used as a map key (tuple)
        "d81c81ff",  # inside a shareable value (tag 28)
        "d81c8341ffd81d0081ff",  # inside an item that contains itself
    ],
)
def test_a_stray_break_is_refused_wherever_it_is(hex_item: str) -> None:
    with pytest.raises(MalformedCbor, match="stray break"):
        cbor.decode(bytes.fromhex(hex_item))


def test_breaks_of_indefinite_items_and_0xff_bytes_in_strings_are_fine() -> None:
    assert cbor.decode(bytes.fromhex("9f01ff")) == [1]
    assert cbor.decode(bytes.fromhex("bf0102ff")) == {1: 2}
    assert cbor.decode(bytes.fromhex("8241ff18ff")) == [b"\xff", 255]
    assert cbor.decode(bytes.fromhex("18ff")) == 255


def test_an_item_that_contains_itself_is_walked_once() -> None:
    # shareable([h'ff', sharedref(0)]): a list holding itself, with a 0xFF byte that starts the walk
    item = cbor.decode(bytes.fromhex("d81c8241ffd81d00"))
    assert item[0] == b"\xff" and item[1] is item


def test_a_graph_with_exponentially_many_paths_is_walked_in_linear_time() -> None:
    node: list[object] = [b"\xff"]
    for _ in range(40):
        node = [node, node]  # 2**40 paths from the top to the byte string, 41 distinct lists
    data = cbor2.dumps(node, value_sharing=True)
    started = time.perf_counter()
    assert cbor.decode(data)[0][1][0] is not None
    assert time.perf_counter() - started < 5
    with pytest.raises(MalformedCbor, match="stray break"):
        cbor.decode(data.replace(b"\x41\xff", b"\x81\xff", 1))  # the byte string becomes [break]
