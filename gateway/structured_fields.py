"""RFC 8941 Structured Field Values, through the ``http-sf`` package (its parser and serializer, checked here
against the structured-field-tests vectors: ``tests/unit/gateway/test_structured_fields.py``).

This module is the gateway's view of them: frozen values (``Item``, ``InnerList``, ``Token``, parameters as
ordered pairs) for what RFC 9421 and RFC 9530 need — Dictionaries whose members are Items or Inner Lists, and the
bare item types Integer, Decimal, String, Token, Byte Sequence and Boolean. Anything ``http-sf`` refuses is
``StructuredFieldMalformed``; so are the two types RFC 9651 added (Date, Display String), which RFC 9421 and
9530 do not use. Serialization is canonical, so parsing a value and serializing it again gives the form a signer
must have signed (RFC 9421 §2.3, §3.2 step 7).

Where RFC 8941 leaves a choice open: a Byte Sequence without its ``=`` padding is accepted (§4.2.7, as
``http-sf`` does); a repeated Dictionary key or parameter overwrites the earlier value in its original position
(§4.2.2), unless the caller asks for unique keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import http_sf
from http_sf.innerlist import ser_innerlist

from schemas.errors import StructuredFieldMalformed

MAX_FIELD_LENGTH = 64 * 1024


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


# --- parsing ------------------------------------------------------------------------------------------


def parse_dictionary(text: str, *, unique_keys: bool = False) -> Dictionary:
    """Parse a field value as an RFC 8941 Dictionary (an empty value is an empty Dictionary).

    With ``unique_keys`` a repeated key is refused instead of overwriting the earlier member (for fields such
    as ``Signature-Input`` where a second member under the same label can only be a mistake or an attack).
    """
    parsed = _parse(text, "dictionary", unique_keys)
    assert isinstance(parsed, dict)
    return {key: _member(value) for key, value in parsed.items()}


def parse_item(text: str) -> Item:
    """Parse a field value as an RFC 8941 Item."""
    return _item(_parse(text, "item", False))


def _parse(text: str, kind: str, unique_keys: bool) -> Any:
    if len(text) > MAX_FIELD_LENGTH:
        raise StructuredFieldMalformed(f"field value of {len(text)} characters exceeds {MAX_FIELD_LENGTH}")
    if not text.isascii():
        raise StructuredFieldMalformed("structured field values are ASCII only")

    def duplicate(key: str, where: str) -> None:
        if unique_keys and where == "dictionary":
            raise StructuredFieldMalformed(f"dictionary key {key!r} appears twice")

    try:
        return http_sf.parse(text.encode("ascii"), tltype=kind, on_duplicate_key=duplicate)
    except http_sf.StructuredFieldError as exc:
        raise StructuredFieldMalformed(f"{exc} in {text[:200]!r}") from exc


def _member(value: Any) -> Member:
    bare, params = value
    if isinstance(bare, list):
        return InnerList(tuple(_item(i) for i in bare), _params(params))
    return _item(value)


def _item(value: Any) -> Item:
    bare, params = value
    return Item(_bare(bare), _params(params))


def _params(params: dict[str, Any]) -> Parameters:
    return tuple((key, _bare(value)) for key, value in params.items())


def _bare(value: Any) -> BareItem:
    if isinstance(value, http_sf.Token):
        return Token(str(value))
    if isinstance(value, http_sf.DisplayString | datetime):
        raise StructuredFieldMalformed("Dates and Display Strings (RFC 9651) are not used in these fields")
    if isinstance(value, bool | int | Decimal | str | bytes):
        return value
    raise StructuredFieldMalformed(f"unexpected structured-field value {type(value).__name__}")


# --- serialization ------------------------------------------------------------------------------------


def serialize_dictionary(members: Dictionary) -> str:
    if not members:
        return ""  # an empty Dictionary is an empty field value (RFC 8941 §4.1.2: the field is not sent)
    return _serialize({key: _sf_member(member) for key, member in members.items()})


def serialize_member(member: Member) -> str:
    return serialize_inner_list(member) if isinstance(member, InnerList) else serialize_item(member)


def serialize_inner_list(inner: InnerList) -> str:
    return _serialize(_sf_member(inner), ser_innerlist)


def serialize_item(item: Item) -> str:
    return _serialize(_sf_item(item))


def _serialize(structure: Any, serializer: Any = http_sf.ser) -> str:
    try:
        return str(serializer(structure))
    except (http_sf.StructuredFieldError, ValueError, TypeError) as exc:
        raise StructuredFieldMalformed(f"cannot serialize as a structured field: {exc}") from exc


def _sf_member(member: Member) -> Any:
    if isinstance(member, InnerList):
        return [_sf_item(i) for i in member.items], _sf_params(member.params)
    return _sf_item(member)


def _sf_item(item: Item) -> Any:
    return _sf_bare(item.value), _sf_params(item.params)


def _sf_params(params: Parameters) -> dict[str, Any]:
    return {key: _sf_bare(value) for key, value in params}


def _sf_bare(value: BareItem) -> Any:
    return http_sf.Token(value.value) if isinstance(value, Token) else value
