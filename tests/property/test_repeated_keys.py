"""``cbor.refuse_repeated_keys`` against a reference that knows, from how each item was built, whether any map
in it repeats a key (hypothesis): nested maps and arrays, definite and indefinite lengths, heads of every
width, unknown tags, and byte strings that hold encoded maps (which must not count)."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import cbor
from schemas.errors import MalformedCbor
from tests.property.cbor_heads import head_of_width

Built = tuple[bytes, bool]  # an encoded item, and whether a map in it repeats a key


@st.composite
def _counted_head(draw: st.DrawFn, major: int, n: int) -> bytes:
    widths = [w for w in (0, 1, 2, 4, 8) if (w == 0 and n < 24) or (w and n < 1 << (8 * w))]
    return head_of_width(major << 5, n, draw(st.sampled_from(widths)))


_keys = st.one_of(st.integers(-5, 30), st.sampled_from(["a", "b", "kid", "1"]))
_scalars = st.one_of(st.integers(-(2**64), 2**64 - 1), st.text(max_size=5), st.binary(max_size=5), st.none())


@st.composite
def _container(draw: st.DrawFn, children: st.SearchStrategy[Built]) -> Built:
    kind = draw(st.sampled_from(["map", "map", "array", "tag", "bstr"]))
    if kind == "bstr":  # a byte string holding a whole encoded item: its maps are not this item's
        inner, _ = draw(children)
        return draw(_counted_head(2, len(inner))) + inner, False
    if kind == "tag":
        inner, dup = draw(children)
        return draw(_counted_head(6, draw(st.sampled_from([1000, 65000, 40])))) + inner, dup
    indefinite = draw(st.booleans())
    if kind == "array":
        items = draw(st.lists(children, max_size=4))
        body = b"".join(e for e, _ in items)
        head = bytes((0x9F,)) if indefinite else draw(_counted_head(4, len(items)))
        return head + body + (b"\xff" if indefinite else b""), any(d for _, d in items)
    keys = draw(st.lists(_keys, max_size=5))
    values = [draw(children) for _ in keys]
    body = b"".join(bytes(cbor2.dumps(k)) + v for k, (v, _) in zip(keys, values, strict=True))
    head = bytes((0xBF,)) if indefinite else draw(_counted_head(5, len(keys)))
    return head + body + (b"\xff" if indefinite else b""), len(set(keys)) < len(keys) or any(d for _, d in values)


_items: st.SearchStrategy[Built] = st.recursive(
    _scalars.map(lambda v: (bytes(cbor2.dumps(v)), False)), _container, max_leaves=12)


@settings(max_examples=1500, deadline=None)
@given(_items)
def test_refuses_exactly_the_items_with_a_repeated_key(built: Built) -> None:
    data, repeated = built
    decoded = cbor.decode(data)
    if repeated:
        with pytest.raises(MalformedCbor, match="repeats a key"):
            cbor.refuse_repeated_keys(data, decoded, "item")
    else:
        cbor.refuse_repeated_keys(data, decoded, "item")


@pytest.mark.parametrize("data", [bytes.fromhex("d81ca10102"), bytes.fromhex("82d81ca10102d81d00")])
def test_value_sharing_is_refused(data: bytes) -> None:
    with pytest.raises(MalformedCbor, match="value sharing"):
        cbor.refuse_repeated_keys(data, cbor.decode(data), "item")
