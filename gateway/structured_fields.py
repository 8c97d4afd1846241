"""A small, strict RFC 8941 (Structured Field Values for HTTP) parser and serializer.

Only what RFC 9421 and RFC 9530 need: Dictionaries whose members are Items or Inner Lists, Parameters,
and the bare item types Integer, Decimal, String, Token, Byte Sequence and Boolean. The parsing follows
the algorithms of RFC 8941 §4.2 step by step; anything they do not accept is refused with
``StructuredFieldMalformed`` (there is no "best effort"). Serialization (§4.1) is canonical, so parsing a
value and serializing it again gives the form a signer must have signed (RFC 9421 §2.3, §3.2 step 7).

Where RFC 8941 leaves a choice open this module takes it as follows: a Byte Sequence without its ``=``
padding is accepted (§4.2.7 says parsers SHOULD NOT fail on it); a repeated Dictionary key or parameter
name overwrites the earlier value in its original position (§4.2.2, §4.2.3.2).
"""

from __future__ import annotations

import base64
import binascii
import string
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from schemas.errors import StructuredFieldMalformed

MAX_INTEGER = 999_999_999_999_999
MAX_DECIMAL_INTEGER_DIGITS = 12
MAX_FIELD_LENGTH = 64 * 1024

_LCALPHA = string.ascii_lowercase
_KEY_FIRST = _LCALPHA + "*"
_KEY_CHARS = _LCALPHA + string.digits + "_-.*"
_TCHAR = "!#$%&'*+-.^_`|~" + string.digits + string.ascii_letters
_TOKEN_FIRST = string.ascii_letters + "*"
_TOKEN_CHARS = _TCHAR + ":/"
_BASE64_CHARS = frozenset(string.ascii_letters + string.digits + "+/=")


@dataclass(frozen=True)
class Token:
    """An RFC 8941 Token (kept apart from a String, which serializes with quotes)."""

    value: str


BareItem = bool | int | Decimal | str | Token | bytes
Parameters = tuple[tuple[str, BareItem], ...]


def param(params: Parameters, name: str) -> BareItem | None:
    """The value of parameter ``name``, or None when it is absent."""
    for key, value in params:
        if key == name:
            return value
    return None


@dataclass(frozen=True)
class Item:
    value: BareItem
    params: Parameters = ()


@dataclass(frozen=True)
class InnerList:
    items: tuple[Item, ...]
    params: Parameters = ()


Member = Item | InnerList
Dictionary = dict[str, Member]


# --- parsing (RFC 8941 §4.2) -----------------------------------------------------------------------


class _Reader:
    """The input string and a cursor; every ``parse_*`` consumes from it."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def take(self) -> str:
        c = self.peek()
        self.pos += 1
        return c

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def skip_sp(self) -> None:
        while self.peek() == " ":
            self.pos += 1

    def skip_ows(self) -> None:
        while self.peek() in (" ", "\t") and not self.at_end():
            self.pos += 1

    def fail(self, why: str) -> StructuredFieldMalformed:
        return StructuredFieldMalformed(f"{why} at offset {self.pos} of {self.text[:200]!r}")


def parse_dictionary(text: str, *, unique_keys: bool = False) -> Dictionary:
    """Parse a field value as an RFC 8941 Dictionary (an empty value is an empty Dictionary).

    With ``unique_keys`` a repeated key is refused instead of overwriting the earlier member (for fields such
    as ``Signature-Input`` where a second member under the same label can only be a mistake or an attack).
    """
    reader = _start(text)
    result: Dictionary = {}
    while not reader.at_end():
        key = _parse_key(reader)
        if unique_keys and key in result:
            raise reader.fail(f"dictionary key {key!r} appears twice")
        if reader.peek() == "=":
            reader.take()
            result[key] = _parse_item_or_inner_list(reader)
        else:
            result[key] = Item(True, _parse_parameters(reader))
        reader.skip_ows()
        if reader.at_end():
            break
        if reader.take() != ",":
            raise reader.fail("expected ',' between dictionary members")
        reader.skip_ows()
        if reader.at_end():
            raise reader.fail("trailing ',' after the last dictionary member")
    return result


def parse_item(text: str) -> Item:
    """Parse a field value as an RFC 8941 Item."""
    reader = _start(text)
    item = _parse_item(reader)
    reader.skip_sp()
    if not reader.at_end():
        raise reader.fail("unexpected characters after the item")
    return item


def _start(text: str) -> _Reader:
    if len(text) > MAX_FIELD_LENGTH:
        raise StructuredFieldMalformed(f"field value of {len(text)} characters exceeds {MAX_FIELD_LENGTH}")
    if not text.isascii():
        raise StructuredFieldMalformed("structured field values are ASCII only")
    reader = _Reader(text)
    reader.skip_sp()
    # Trailing SP is discarded by the top-level algorithm (§4.2 step 6): strip it up front.
    reader.text = reader.text.rstrip(" ")
    return reader


def _parse_item_or_inner_list(reader: _Reader) -> Member:
    if reader.peek() == "(":
        return _parse_inner_list(reader)
    return _parse_item(reader)


def _parse_inner_list(reader: _Reader) -> InnerList:
    reader.take()  # "("
    items: list[Item] = []
    while not reader.at_end():
        reader.skip_sp()
        if reader.peek() == ")":
            reader.take()
            return InnerList(tuple(items), _parse_parameters(reader))
        items.append(_parse_item(reader))
        if reader.peek() not in (" ", ")"):
            raise reader.fail("expected ' ' or ')' after an inner-list item")
    raise reader.fail("inner list is not closed with ')'")


def _parse_item(reader: _Reader) -> Item:
    value = _parse_bare_item(reader)
    return Item(value, _parse_parameters(reader))


def _parse_parameters(reader: _Reader) -> Parameters:
    params: dict[str, BareItem] = {}
    while reader.peek() == ";":
        reader.take()
        reader.skip_sp()
        key = _parse_key(reader)
        value: BareItem = True
        if reader.peek() == "=":
            reader.take()
            value = _parse_bare_item(reader)
        params[key] = value
    return tuple(params.items())


def _parse_key(reader: _Reader) -> str:
    if reader.peek() == "" or reader.peek() not in _KEY_FIRST:
        raise reader.fail("a key must start with a lowercase letter or '*'")
    start = reader.pos
    while reader.peek() != "" and reader.peek() in _KEY_CHARS:
        reader.pos += 1
    return reader.text[start : reader.pos]


def _parse_bare_item(reader: _Reader) -> BareItem:
    c = reader.peek()
    if c == "":
        raise reader.fail("expected an item, found the end of the value")
    if c == "-" or c.isdigit():
        return _parse_number(reader)
    if c == '"':
        return _parse_string(reader)
    if c in _TOKEN_FIRST:
        return _parse_token(reader)
    if c == ":":
        return _parse_byte_sequence(reader)
    if c == "?":
        return _parse_boolean(reader)
    raise reader.fail(f"{c!r} cannot start an item")


def _parse_number(reader: _Reader) -> int | Decimal:
    sign = 1
    if reader.peek() == "-":
        reader.take()
        sign = -1
    if not reader.peek().isdigit() or reader.at_end():
        raise reader.fail("a number needs a digit")
    start = reader.pos
    is_decimal = False
    while not reader.at_end():
        c = reader.peek()
        if c.isdigit():
            reader.pos += 1
        elif c == "." and not is_decimal:
            if reader.pos - start > MAX_DECIMAL_INTEGER_DIGITS:
                raise reader.fail("a decimal has at most 12 integer digits")
            is_decimal = True
            reader.pos += 1
        else:
            break
        if not is_decimal and reader.pos - start > 15:
            raise reader.fail("an integer has at most 15 digits")
        if is_decimal and reader.pos - start > 16:
            raise reader.fail("a decimal has at most 16 characters")
    digits = reader.text[start : reader.pos]
    if not is_decimal:
        return sign * int(digits)
    if digits.endswith("."):
        raise reader.fail("a decimal needs a digit after '.'")
    if len(digits.split(".")[1]) > 3:
        raise reader.fail("a decimal has at most 3 fractional digits")
    return sign * Decimal(digits)


def _parse_string(reader: _Reader) -> str:
    reader.take()  # '"'
    out: list[str] = []
    while not reader.at_end():
        c = reader.take()
        if c == "\\":
            if reader.at_end():
                raise reader.fail("a string ends inside an escape")
            escaped = reader.take()
            if escaped not in ('"', "\\"):
                raise reader.fail(f"'\\{escaped}' is not an escape a string may contain")
            out.append(escaped)
        elif c == '"':
            return "".join(out)
        elif not " " <= c <= "~":
            raise reader.fail("a string may contain only printable ASCII")
        else:
            out.append(c)
    raise reader.fail("a string is not closed with '\"'")


def _parse_token(reader: _Reader) -> Token:
    start = reader.pos
    reader.pos += 1
    while reader.peek() != "" and reader.peek() in _TOKEN_CHARS:
        reader.pos += 1
    return Token(reader.text[start : reader.pos])


def _parse_byte_sequence(reader: _Reader) -> bytes:
    reader.take()  # ":"
    end = reader.text.find(":", reader.pos)
    if end < 0:
        raise reader.fail("a byte sequence is not closed with ':'")
    encoded = reader.text[reader.pos : end]
    if not set(encoded) <= _BASE64_CHARS:
        raise reader.fail("a byte sequence holds only base64 characters")
    reader.pos = end + 1
    stripped = encoded.rstrip("=")
    if "=" in stripped or len(encoded) - len(stripped) > 2:
        raise reader.fail("'=' may only pad the end of a byte sequence")
    if stripped != encoded and len(encoded) % 4:
        raise reader.fail("a padded byte sequence has a multiple of 4 characters")
    try:
        return base64.b64decode(stripped + "=" * (-len(stripped) % 4), validate=True)
    except binascii.Error as e:
        raise reader.fail(f"a byte sequence is not valid base64 ({e})") from e


def _parse_boolean(reader: _Reader) -> bool:
    reader.take()  # "?"
    c = reader.take()
    if c == "1":
        return True
    if c == "0":
        return False
    raise reader.fail("a boolean is ?0 or ?1")


# --- serialization (RFC 8941 §4.1) -----------------------------------------------------------------


def serialize_dictionary(members: Dictionary) -> str:
    parts = []
    for key, member in members.items():
        _check_key(key)
        if isinstance(member, Item) and member.value is True:
            parts.append(key + serialize_parameters(member.params))
        else:
            parts.append(f"{key}={serialize_member(member)}")
    return ", ".join(parts)


def serialize_member(member: Member) -> str:
    if isinstance(member, InnerList):
        return serialize_inner_list(member)
    return serialize_item(member)


def serialize_inner_list(inner: InnerList) -> str:
    return "(" + " ".join(serialize_item(i) for i in inner.items) + ")" + serialize_parameters(inner.params)


def serialize_item(item: Item) -> str:
    return serialize_bare_item(item.value) + serialize_parameters(item.params)


def serialize_parameters(params: Parameters) -> str:
    out = []
    for key, value in params:
        _check_key(key)
        out.append(";" + key if value is True else f";{key}={serialize_bare_item(value)}")
    return "".join(out)


def serialize_bare_item(value: BareItem) -> str:
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        if abs(value) > MAX_INTEGER:
            raise StructuredFieldMalformed(f"integer {value} is out of the structured-field range")
        return str(value)
    if isinstance(value, Decimal):
        return _serialize_decimal(value)
    if isinstance(value, str):
        if any(not " " <= c <= "~" for c in value):
            raise StructuredFieldMalformed("a string may contain only printable ASCII")
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, Token):
        v = value.value
        if not v or v[0] not in _TOKEN_FIRST or any(c not in _TOKEN_CHARS for c in v):
            raise StructuredFieldMalformed(f"{v[:80]!r} is not a token")
        return v
    return ":" + base64.b64encode(value).decode("ascii") + ":"


def _serialize_decimal(value: Decimal) -> str:
    if not value.is_finite():
        raise StructuredFieldMalformed(f"decimal {value} is not a finite number")
    rounded = value.quantize(Decimal("0.001"), rounding=ROUND_HALF_EVEN)
    if abs(rounded) >= Decimal(10) ** MAX_DECIMAL_INTEGER_DIGITS:
        raise StructuredFieldMalformed(f"decimal {value} is out of the structured-field range")
    text = format(rounded, "f").rstrip("0")
    return text + "0" if text.endswith(".") else text


def _check_key(key: str) -> None:
    if not key or key[0] not in _KEY_FIRST or any(c not in _KEY_CHARS for c in key):
        raise StructuredFieldMalformed(f"{key[:80]!r} is not a structured-field key")
