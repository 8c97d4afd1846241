"""Strict CBOR decoding on cbor2 6, and pycose (an independent COSE implementation) checking the statements we sign
without pycose (``transparency.client.signing``: our own Sig_structure)."""

from __future__ import annotations

from importlib.metadata import version

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pycose.keys.curves import P256, Ed25519
from pycose.keys.ec2 import EC2Key
from pycose.keys.okp import OKPKey
from pycose.messages.sign1message import Sign1Message

from schemas import cbor
from schemas.cose_sign1 import decode_sign1
from schemas.errors import MalformedCbor
from transparency.client import sign_statement


def test_cbor2_is_6_or_later() -> None:
    # py_webauthn 3 needs cbor2 >= 6.1.2; what a tag holds is read back as lists and dicts (schemas.cbor)
    assert int(version("cbor2").split(".")[0]) >= 6
    tagged = cbor.decode(bytes.fromhex("d28443a10126a1041801f640"))
    assert type(tagged.value) is list and type(tagged.value[1]) is dict


@pytest.mark.parametrize("kind", ["ed25519", "p256"])
def test_pycose_verifies_the_statements_we_sign(kind: str) -> None:
    key: Ed25519PrivateKey | ec.EllipticCurvePrivateKey
    if kind == "ed25519":
        key = Ed25519PrivateKey.generate()
        raw = key.public_key().public_bytes_raw()
        pycose_key: OKPKey | EC2Key = OKPKey(crv=Ed25519, x=raw)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
        numbers = key.public_key().public_numbers()
        pycose_key = EC2Key(crv=P256, x=numbers.x.to_bytes(32, "big"), y=numbers.y.to_bytes(32, "big"))
    statement = sign_statement(key, b'{"hello":"world"}', subject="did:example:agent-1",
                               content_type="application/json")
    decoded = decode_sign1(statement)  # pycose's own decoder reads CBOR arrays as lists only, not cbor2 6's tuples
    message = Sign1Message(phdr_encoded=decoded.protected_bytes, payload=decoded.payload)
    message.signature = decoded.signature
    message.key = pycose_key
    assert message.verify_signature()
    message.payload = b'{"hello":"there"}'
    assert not message.verify_signature()


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
