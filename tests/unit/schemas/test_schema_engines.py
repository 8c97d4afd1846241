"""The compiled validator (fastjsonschema, used at run time) against the JSON Schema 2020-12 reference
implementation (jsonschema): every schema is a valid 2020-12 schema, and both agree on mutated payloads.

The one known difference is ECMA-262 ``$``: fastjsonschema anchors it at the very end, while jsonschema
(Python ``re``) also matches before a final newline — so ours is the stricter, correct one there.
"""

from __future__ import annotations

import copy
from typing import Any

import fastjsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from schemas.identity_statements import STATEMENT_TYPES, _validator, schema_of
from tests.unit.schemas.good_payloads import GOOD

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *_strings(v)]]
    return []


def _valid_compiled(name: str, value: Any) -> bool:
    try:
        _validator(name)(value)
    except fastjsonschema.JsonSchemaValueException:
        return False
    return True


@pytest.mark.parametrize("name", STATEMENT_TYPES)
def test_every_schema_is_a_valid_2020_12_schema(name: str) -> None:
    Draft202012Validator.check_schema(schema_of(name))


@pytest.mark.parametrize("name", STATEMENT_TYPES)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_compiled_validator_agrees_with_the_reference(name: str, data: st.DataObject) -> None:
    value = copy.deepcopy(GOOD[name])
    path = data.draw(st.sampled_from(sorted(value)))
    value[path] = data.draw(JSON | st.just(value[path]))
    if any(s.endswith("\n") for s in _strings(value)):
        return  # the documented ECMA-262 "$" difference
    assert _valid_compiled(name, value) == Draft202012Validator(schema_of(name)).is_valid(value)


def test_dollar_anchors_at_the_very_end() -> None:
    value = {**GOOD["claim-submission"], "namespace": "acme\n"}
    assert not _valid_compiled("claim-submission", value)


# --- the validator with ``uniqueItems`` of string arrays checked outside fastjsonschema, against fastjsonschema on
# the whole schema: the same payloads accepted, every refusal in the same words at the same place ---------------

UNIQUE_CHECKED = ("operator-registration", "delegation", "claim-submission", "registration-policy")
ITEM = st.sampled_from(["a", "b", "mail", "", "x" * 300]) | JSON


ARRAYS = st.lists(ITEM, max_size=5) | st.lists(ITEM, min_size=1, max_size=4).map(lambda items: [*items, items[0]])
"""Short arrays of strings, often with a repeat, sometimes with other values in them."""


def _outcome(validate: Any, value: Any) -> str:
    try:
        validate(value)
    except fastjsonschema.JsonSchemaValueException as exc:
        return f"{exc.message} at {exc.path} ({exc.rule})"
    return "valid"


@pytest.mark.parametrize("name", UNIQUE_CHECKED)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_unique_items_checked_outside_agree_with_fastjsonschema(name: str, data: st.DataObject) -> None:
    value = copy.deepcopy(GOOD[name])
    scope = value.get("scope")
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from(["array", "array", "other"]))
        if where == "array" and isinstance(scope, dict):
            scope[data.draw(st.sampled_from(["services", "actions", "resources", "extra"]))] = data.draw(ARRAYS)
        elif where == "array":
            field = "witnesses" if name == "operator-registration" else "accepted_content_types"
            value[field] = data.draw(ARRAYS | st.lists(st.just(OPERATOR_DID), max_size=3) | JSON)
        else:
            value[data.draw(st.sampled_from(sorted(value)))] = data.draw(JSON)
    reference = fastjsonschema.compile(schema_of(name))
    assert _outcome(_validator(name), value) == _outcome(reference, value)


OPERATOR_DID = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
