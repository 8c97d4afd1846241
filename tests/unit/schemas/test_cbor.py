"""Strict CBOR decoding, and the cbor2 pin that keeps pycose 1.1.0 working."""

from __future__ import annotations

from importlib.metadata import version

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pycose.messages.sign1message import Sign1Message

from schemas import cbor
from schemas.errors import MalformedCbor
from tests.cose_builder import sign1


def test_cbor2_is_pinned_below_6_for_pycose() -> None:
    # pycose 1.1.0 checks isinstance(decoded, list); cbor2 6.x decodes arrays as tuples and breaks it.
    assert int(version("cbor2").split(".")[0]) < 6


def test_pycose_decodes_a_statement_with_the_pinned_cbor2() -> None:
    key = Ed25519PrivateKey.generate()
    message = Sign1Message.decode(sign1(key, None))
    assert message.payload == b'{"hello":"world"}'


@pytest.mark.parametrize(
    "data",
    [b"", b"\x1c", b"\xff", b"\x82\x01\xff", b"\x43\xa1", b"\x01\x02", b"\x9f\x01", b"\xbf\x01"],
    ids=["empty", "reserved-ai", "stray-break", "nested-break", "truncated", "trailing", "open-array", "open-map"],
)
def test_not_well_formed_is_refused(data: bytes) -> None:
    with pytest.raises(MalformedCbor):
        cbor.decode(data)


def test_deterministic_encoding_sorts_map_keys() -> None:
    assert cbor.encode({-1: 1, 1: 2, "a": 3}) == bytes.fromhex("a30102200161610" + "3")
    assert cbor.decode(cbor.encode({-1: 1, 1: 2})) == {1: 2, -1: 1}
