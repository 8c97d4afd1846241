"""The structured-field-tests vectors (tests/vectors/structured-field-tests/, see SOURCES.md) through the gateway's
structured fields (``gateway.structured_fields`` on ``http-sf``): every Dictionary and Item vector is parsed to the
expected value (converted here, independently of http-sf, from the vectors' JSON form), every negative one refused,
and canonical serializations reproduced; List vectors go to http-sf directly (the gateway reads no List). The two
RFC 9651 types (Date, Display String) are refused by the gateway, which RFC 9421 and RFC 9530 do not need."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

import http_sf
import pytest

from gateway.structured_fields import (
    InnerList,
    Item,
    Token,
    parse_dictionary,
    parse_item,
    serialize_dictionary,
    serialize_item,
)
from schemas.errors import StructuredFieldMalformed
from tests.vectors import vectors_dir

FOLDER = vectors_dir() / "structured-field-tests"
RFC9651_ONLY = ("date.json", "display-string.json")


def cases(*, serialisation: bool = False) -> list[Any]:
    folder = FOLDER / "serialisation-tests" if serialisation else FOLDER
    found = []
    for path in sorted(folder.glob("*.json")):
        for case in json.loads(path.read_text()):
            found.append(pytest.param(path.name, case, id=f"{path.name}:{case['name']}"))
    return found


def bare(value: Any) -> Any:
    """The vectors' JSON form of a bare item -> the gateway's value."""
    if isinstance(value, dict):
        kind, raw = value["__type"], value["value"]
        if kind == "token":
            return Token(raw)
        if kind == "binary":
            return base64.b32decode(raw)
        raise AssertionError(f"{kind} is an RFC 9651 type")
    if isinstance(value, float):
        return Decimal(str(value))
    return value


def params(raw: list[Any]) -> tuple[tuple[str, Any], ...]:
    return tuple((key, bare(value)) for key, value in raw)


def member(raw: list[Any]) -> Item | InnerList:
    value, parameters = raw
    if isinstance(value, list):
        return InnerList(tuple(Item(bare(v), params(p)) for v, p in value), params(parameters))
    return Item(bare(value), params(parameters))


@pytest.mark.parametrize(("name", "case"), cases())
def test_parsing_vectors(name: str, case: dict[str, Any]) -> None:
    text = ", ".join(case["raw"])
    kind = case["header_type"]
    if kind == "list":
        if case.get("must_fail"):
            with pytest.raises(ValueError):
                http_sf.parse(text.encode("latin-1"), tltype="list")
        else:
            http_sf.parse(text.encode("latin-1"), tltype="list")
        return
    parse = parse_dictionary if kind == "dictionary" else parse_item
    if case.get("must_fail") or name in RFC9651_ONLY:
        with pytest.raises(StructuredFieldMalformed):
            parse(text)
        return
    try:
        parsed = parse(text)
    except StructuredFieldMalformed:
        assert case.get("can_fail"), f"refused a value the vectors accept: {text!r}"
        return
    expected = {key: member(value) for key, value in case["expected"]} if kind == "dictionary" else member(
        case["expected"])
    assert parsed == expected
    if "canonical" in case:
        serialized = serialize_dictionary(parsed) if isinstance(parsed, dict) else serialize_item(parsed)
        assert ([serialized] if serialized else []) == case["canonical"]


@pytest.mark.parametrize(("name", "case"), cases(serialisation=True))
def test_serialisation_vectors(name: str, case: dict[str, Any]) -> None:
    kind = case["header_type"]
    if kind != "item":
        return
    try:
        item = member(case["expected"])
    except AssertionError:
        return
    if case.get("must_fail"):
        with pytest.raises(StructuredFieldMalformed):
            serialize_item(item)  # type: ignore[arg-type]
        return
    assert [serialize_item(item)] == case["canonical"]  # type: ignore[arg-type]
