"""Tabellion's own statement types (docs/architecture.md §4): one content type and one JSON Schema each.

A payload of one of these types is RFC 8785 canonical JSON (so that every signer, verifier and follower
hashes the same bytes) and must validate against its schema in ``schemas/json/<name>.schema.json``.
Statements of any other content type are general SCITT statements and are not interpreted here.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any, Final, cast

import fastjsonschema
import rfc8785

from schemas.errors import PayloadInvalid

CONTENT_TYPE_PREFIX: Final = "application/vnd.tabellion."
CONTENT_TYPE_SUFFIX: Final = "+json"

STATEMENT_TYPES: Final = (
    "operator-registration",
    "key-rotation",
    "agent-passport",
    "delegation",
    "claim-submission",
    "claim-approval",
    "claim-rejection",
    "claim-revocation",
    "revocation",
    "registration-policy",
    "trust-anchor",
    "action-record",
    "approver-enrolment",
    "agent-consent",
    "did-web-evidence",
    "agent-enrolment",
    "namespace-policy",
    "action-record-batch",
)

# RFC 5280 §5.3.1 CRLReason names, by code (7 is unused).
REVOCATION_REASONS: Final = {
    "unspecified": 0, "keyCompromise": 1, "cACompromise": 2, "affiliationChanged": 3, "superseded": 4,
    "cessationOfOperation": 5, "certificateHold": 6, "removeFromCRL": 8, "privilegeWithdrawn": 9,
    "aACompromise": 10,
}


def content_type(statement_type: str) -> str:
    _check_type(statement_type)
    return f"{CONTENT_TYPE_PREFIX}{statement_type}{CONTENT_TYPE_SUFFIX}"


def _check_type(statement_type: str) -> None:
    if not isinstance(statement_type, str) or statement_type not in _TYPES:
        raise PayloadInvalid(f"{statement_type!r} is not a Tabellion statement type")


_TYPES: Final = frozenset(STATEMENT_TYPES)
_TYPE_OF_CONTENT_TYPE: Final = {f"{CONTENT_TYPE_PREFIX}{name}{CONTENT_TYPE_SUFFIX}": name for name in STATEMENT_TYPES}


def statement_type_of(ctype: object) -> str | None:
    """The Tabellion statement type a content type names, or ``None`` for any other content type."""
    if type(ctype) is str:
        name = _TYPE_OF_CONTENT_TYPE.get(ctype)
        if name is not None:
            return name
    if not isinstance(ctype, str) or not ctype.startswith(CONTENT_TYPE_PREFIX) or not ctype.endswith(
        CONTENT_TYPE_SUFFIX
    ):
        return None
    name = ctype[len(CONTENT_TYPE_PREFIX) : -len(CONTENT_TYPE_SUFFIX)]
    if name not in STATEMENT_TYPES:
        raise PayloadInvalid(f"content type {ctype!r} names no Tabellion statement type")
    return name


@cache
def _schema(statement_type: str) -> dict[str, Any]:
    text = resources.files("schemas").joinpath("json", f"{statement_type}.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator(statement_type: str) -> Callable[[Any], Any]:
    """The schema compiled to Python (fastjsonschema); tests cross-check it with the jsonschema reference.

    fastjsonschema checks ``uniqueItems`` with a nested function and a generator per array (a third of a
    delegation's validation). Arrays of strings reached through ``properties`` alone are checked here instead
    (``len(set(array))``) after a validator compiled without their ``uniqueItems``; any refusal, by that
    validator or by this check, is left to the validator of the whole schema, so that a payload is refused in
    the reference's words. A property test compares the two on mutated payloads."""
    schema = _schema(statement_type)
    reference = fastjsonschema.compile(schema)
    quick_schema, unique = _unique_string_arrays(schema)
    if not unique:
        return reference
    quick = fastjsonschema.compile(quick_schema)

    def validate(value: Any) -> Any:
        try:
            quick(value)
        except fastjsonschema.JsonSchemaValueException:
            return reference(value)
        for path in unique:
            array = value
            for name in path:
                if type(array) is not dict or name not in array:
                    break
                array = array[name]
            else:
                if type(array) in _ARRAYS and len(set(array)) != len(array):
                    return reference(value)
        return value

    return validate


_ARRAYS: Final = frozenset({list, tuple})


def _unique_string_arrays(schema: dict[str, Any]) -> tuple[dict[str, Any], tuple[tuple[str, ...], ...]]:
    """``schema`` without the ``uniqueItems`` of each array whose items are strings and that is reached from the
    top through ``properties`` alone, and the property paths to those arrays."""
    paths: list[tuple[str, ...]] = []

    def strip(node: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
        node = dict(node)
        items = node.get("items")
        if node.get("uniqueItems") is True and isinstance(items, dict) and items.get("type") == "string":
            del node["uniqueItems"]
            paths.append(path)
        properties = node.get("properties")
        if isinstance(properties, dict):
            node["properties"] = {name: strip(sub, (*path, name)) if isinstance(sub, dict) else sub
                                  for name, sub in properties.items()}
        return node

    return strip(schema, ()), tuple(paths)


def schema_of(statement_type: str) -> dict[str, Any]:
    _check_type(statement_type)
    return _schema(statement_type)


def canonical_json(value: Any) -> bytes:
    """RFC 8785 (JCS) bytes of ``value``.

    For the values our payloads hold — strings, safe integers, booleans, null, arrays, objects — JCS
    coincides with Python's C JSON encoder with sorted keys, no spaces and no ASCII escaping (same string
    escapes, lower-case ``\\u00xx`` for other controls), as long as no key holds a character from U+E000
    up, where UTF-16 and code-point order can differ. Anything else (floats, big integers, such keys)
    goes through the rfc8785 package; a property test checks that both paths agree.
    """
    if _plain(value):
        return _dumps(value)
    return bytes(rfc8785.dumps(value))


def _dumps(value: Any) -> bytes:
    """Python's C JSON encoder with sorted keys, no spaces and no ASCII escaping: JCS for plain values."""
    return _ENCODE(value).encode()


_ENCODE = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode
"""``json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))`` without building an encoder
for each call (the encoder keeps no state between calls)."""


def _writes_back(value: Any, text: str) -> bool:
    """Whether the encoder writes ``value`` back as ``text``, the payload's UTF-8 decoded (compared as text: the
    same answer as comparing the bytes, without encoding the output; a lone surrogate, which has no UTF-8 and
    which ``canonical_json`` refuses, is never in a decoded text)."""
    try:
        return bool(_ENCODE(value) == text)
    except ValueError:
        return False


_NO_CHARACTER_FROM_E000 = re.compile(rb"[^\xee-\xff]*")
"""UTF-8 that holds no character from U+E000 up (each starts with a byte from 0xEE)."""


class _Numbers:
    """What ``json.loads`` met among the numbers of a payload: ``plain`` while every number is an integer
    within JCS's safe range (no fraction, exponent, NaN or Infinity), that is while ``_plain`` holds of them.

    With ``plain``, a payload with no character from U+E000 up (``_NO_CHARACTER_FROM_E000``) whose value
    Python's encoder writes back byte for byte is RFC 8785 canonical: its value is plain in the sense of
    ``_plain`` (its keys hold no such character either: the encoder writes every character of a key either as
    it is, which the payload would show, or as an escape of a control character), so its JCS bytes are that
    encoder's, which are the payload. Any other payload is checked through ``canonical_json``, as before."""

    __slots__ = ("plain",)

    def __init__(self) -> None:
        self.plain = True

    def integer(self, text: str) -> int:
        number = int(text)
        if not -_SAFE_INTEGER <= number <= _SAFE_INTEGER:
            self.plain = False
        return number

    def other(self, text: str) -> Any:
        self.plain = False
        return json.loads(text)  # what json.loads would have made of it: a float, NaN or an infinity


_SAFE_INTEGER = 2**53 - 1


class _Decoders(threading.local):
    """One JSON decoder per thread whose number hooks are those of one ``_Numbers``, reset for each payload:
    ``json.loads`` with hooks would build a decoder and its scanner for every payload (a few µs each)."""

    def __init__(self) -> None:
        self.numbers = _Numbers()
        decoder = json.JSONDecoder(parse_int=self.numbers.integer, parse_float=self.numbers.other,
                                   parse_constant=self.numbers.other)
        self.decode = decoder.decode
        # one value from an index (``decode`` without its two whitespace matches); typeshed does not declare it
        self.scan: Callable[[str, int], tuple[Any, int]] = cast(Any, decoder).scan_once


_DECODERS = _Decoders()


_STRINGS: Final = {str}


def _plain(value: Any) -> bool:
    """Whether every number in ``value`` is an integer within JCS's safe range, every other value a string, a
    boolean, null, a list or a dict, and every key a string with no character from U+E000 up. Keys are checked
    at the end, all at once (joined, then ``isascii`` or ``max`` in C); a property test compares this with the
    plain walk it replaces."""
    keys: list[Any] = []
    stack = [value]
    pop, push, collect = stack.pop, stack.append, keys.extend
    while stack:
        container = pop()
        kind = type(container)
        if kind is dict:
            collect(container)
            items = container.values()
        elif kind is list:
            items = container
        else:  # only the top-level value can be other than a container here
            items = (container,)
        for item in items:
            kind = type(item)
            if kind is str or kind is bool or item is None:
                continue
            if kind is int:
                if -_SAFE_INTEGER <= item <= _SAFE_INTEGER:
                    continue
                return False
            if kind is dict or kind is list:
                push(item)
                continue
            return False
    if not keys:
        return True
    if set(map(type, keys)) != _STRINGS:
        return False
    joined = "".join(keys)
    return joined.isascii() or max(joined) < "\ue000"


def validate_payload(statement_type: str, value: Any) -> None:
    """Raise ``PayloadInvalid`` unless ``value`` meets the statement type's schema (its canonical bytes are not
    made: for a check before signing, where the value is built of strings, integers, lists and objects)."""
    _check_type(statement_type)
    try:
        _validator(statement_type)(value)
    except fastjsonschema.JsonSchemaValueException as exc:
        where = "/".join(str(p) for p in exc.path[1:]) or "(top level)"  # path[0] is fastjsonschema's "data"
        raise PayloadInvalid(f"the {statement_type} payload is invalid at {where}: {exc.message[:300]}") from exc


def parse_payload(statement_type: str, payload: bytes) -> dict[str, Any]:
    """Decode, check canonical form and validate a payload; raise ``PayloadInvalid`` naming the defect."""
    _check_type(statement_type)
    value = canonical_value(statement_type, payload)
    validate_payload(statement_type, value)
    if not isinstance(value, dict):
        raise PayloadInvalid(f"the {statement_type} payload is not a JSON object")
    return value


def canonical_value(statement_type: str, payload: bytes) -> Any:
    """The JSON value of ``payload``, which must be RFC 8785 canonical; ``PayloadInvalid`` naming the defect."""
    decoders = _DECODERS
    numbers = decoders.numbers
    numbers.plain = True
    try:
        text = payload.decode("utf-8")
        try:
            value, end = decoders.scan(text, 0)
        except (StopIteration, json.JSONDecodeError):
            end = -1
        if end != len(text):  # not one value from the first character to the last: decoded (or refused) in full
            numbers.plain = True
            if text.startswith("\ufeff"):  # as json.loads refuses it, in its words
                raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
            value = decoders.decode(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadInvalid(f"the {statement_type} payload is not JSON: {exc}") from exc
    except RecursionError as exc:
        raise PayloadInvalid(f"the {statement_type} payload nests too deeply") from exc
    if not (numbers.plain and (payload.isascii() or _NO_CHARACTER_FROM_E000.fullmatch(payload))
            and _writes_back(value, text)):
        try:
            canonical = canonical_json(value)
        except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
            raise PayloadInvalid(f"the {statement_type} payload cannot be canonicalised: {exc}") from exc
        if canonical != payload:
            raise PayloadInvalid(f"the {statement_type} payload is not RFC 8785 canonical JSON")
    return value


def encode_payload(statement_type: str, value: dict[str, Any]) -> bytes:
    """Canonical bytes of a payload, validated first: what a signer puts in the statement."""
    payload = canonical_json(value)
    parse_payload(statement_type, payload)
    return payload
