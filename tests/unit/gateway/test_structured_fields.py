"""RFC 8941 Dictionaries, Inner Lists, Parameters and bare items: the examples of the RFC, refusals of what
its parsing algorithms refuse, and round trips (serialize(parse(x)) parses to the same value)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.structured_fields import (
    InnerList,
    Item,
    Token,
    parse_dictionary,
    parse_item,
    serialize_dictionary,
    serialize_item,
)
from schemas.errors import BadInput, StructuredFieldMalformed


def test_rfc8941_dictionary_examples() -> None:
    assert parse_dictionary('en="Applepie", da=:w4ZibGV0w6ZydGU=:') == {
        "en": Item("Applepie"),
        "da": Item("Æbletærte".encode()),
    }
    assert parse_dictionary("a=?0, b, c; foo=bar") == {
        "a": Item(False),
        "b": Item(True),
        "c": Item(True, (("foo", Token("bar")),)),
    }
    assert parse_dictionary("rating=1.5, feelings=(joy sadness)") == {
        "rating": Item(Decimal("1.5")),
        "feelings": InnerList((Item(Token("joy")), Item(Token("sadness")))),
    }
    assert parse_dictionary("a=(1 2), b=3, c=4;aa=bb, d=(5 6);valid") == {
        "a": InnerList((Item(1), Item(2))),
        "b": Item(3),
        "c": Item(4, (("aa", Token("bb")),)),
        "d": InnerList((Item(5), Item(6)), (("valid", True),)),
    }
    assert parse_dictionary("") == {}


def test_signature_input_shape() -> None:
    parsed = parse_dictionary('sig1=("@method" "content-digest");created=1618884473;keyid="k";nonce="n"')
    assert parsed["sig1"] == InnerList(
        (Item("@method"), Item("content-digest")), (("created", 1618884473), ("keyid", "k"), ("nonce", "n"))
    )
    assert serialize_dictionary(parsed) == 'sig1=("@method" "content-digest");created=1618884473;keyid="k";nonce="n"'


def test_whitespace_is_not_part_of_the_value() -> None:
    assert serialize_dictionary(parse_dictionary('  a=( 1   2 );x ,   b="s"  ')) == 'a=(1 2);x, b="s"'


def test_repeated_key_overwrites_in_place_unless_unique_keys() -> None:
    assert list(parse_dictionary("a=1, b=2, a=3").items()) == [("a", Item(3)), ("b", Item(2))]
    with pytest.raises(StructuredFieldMalformed, match="twice"):
        parse_dictionary("a=1, b=2, a=3", unique_keys=True)


def test_items_and_escapes() -> None:
    assert parse_item('"a \\"quoted\\" \\\\ string"') == Item('a "quoted" \\ string')
    assert parse_item("-999999999999999") == Item(-999_999_999_999_999)
    assert parse_item(":aGVsbG8:") == Item(b"hello")  # unpadded base64 is accepted (§4.2.7)
    assert serialize_item(Item(Decimal("1.2345"))) == "1.234"  # ties to even, 3 digits at most
    assert serialize_item(Item(Decimal("-2"))) == "-2.0"
    assert serialize_item(Item(b"hello")) == ":aGVsbG8=:"


@pytest.mark.parametrize(
    "text",
    [
        "a=1,",  # trailing comma
        "a=1 b=2",  # no comma
        "A=1",  # keys are lower case
        "a=(1 2",  # unclosed inner list
        "a=(1,2)",
        'a="unterminated',
        'a="bad \\n escape"',
        "a=:not base64!:",
        "a=:aGVsbG8",  # unclosed byte sequence
        "a=:aGVsb=G8=:",  # '=' inside
        "a=?2",
        "a=1234567890123456",  # 16 digits
        "a=1234567890123.5",  # 13 integer digits in a decimal
        "a=1.2345",  # 4 fractional digits
        "a=1.",
        "a=-",
        "a=@1",
        "a=1;B=2",
        "a=é",
        "a=1,\tb=2 ,",
    ],
)
def test_malformed_values_are_refused(text: str) -> None:
    with pytest.raises(StructuredFieldMalformed):
        parse_dictionary(text)


def test_oversized_field_is_refused() -> None:
    with pytest.raises(StructuredFieldMalformed, match="exceeds"):
        parse_dictionary("a=1, " * 20_000)


@pytest.mark.parametrize("value", [Item(2**60), Item("é"), Item(Token("1x")), Item(Decimal("1e13"))])
def test_unserializable_values_are_refused(value: Item) -> None:
    with pytest.raises(StructuredFieldMalformed):
        serialize_item(value)


SF_CHARS = st.sampled_from(list('abcxyz019 ,;=()"\\:?-.*@/+%\t') + ["é", "\x00"])


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(SF_CHARS, max_size=40), st.text(max_size=40)))
def test_any_text_parses_or_is_refused_as_bad_input(text: str) -> None:
    try:
        parsed = parse_dictionary(text)
    except BadInput as e:
        assert isinstance(e, StructuredFieldMalformed)
        return
    assert parse_dictionary(serialize_dictionary(parsed)) == parsed


KEYS = st.from_regex(r"[a-z*][a-z0-9_\-.*]{0,6}", fullmatch=True)
BARE = st.one_of(
    st.booleans(),
    st.integers(-999_999_999_999_999, 999_999_999_999_999),
    st.decimals(min_value=-(10**11), max_value=10**11, places=3, allow_nan=False),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12),
    st.from_regex(r"[A-Za-z*][A-Za-z0-9!#$%&'*+\-.^_`|~:/]{0,6}", fullmatch=True).map(Token),
    st.binary(max_size=12),
)
PARAMS = st.dictionaries(KEYS, BARE, max_size=3).map(lambda d: tuple(d.items()))
ITEMS = st.builds(Item, BARE, PARAMS)
MEMBERS = st.one_of(ITEMS, st.builds(InnerList, st.lists(ITEMS, max_size=3).map(tuple), PARAMS))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, MEMBERS, max_size=4))
def test_serialize_then_parse_round_trips(members: dict[str, Item | InnerList]) -> None:
    assert parse_dictionary(serialize_dictionary(members)) == members
