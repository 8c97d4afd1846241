"""Bitstring Status List v1.0: the W3C vectors, an independent decoding path, every refusal, and a round trip."""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.errors import MalformedStatusList, StatusIndexOutOfRange
from schemas.status_list import (
    MAX_BITSTRING_BYTES,
    MIN_LENGTH,
    decode_status_list,
    encode_status_list,
    is_set,
    status_list_credential,
)
from tests.vectors import vectors_dir


def _vector(name: str) -> dict[str, Any]:
    path: Path = vectors_dir() / "bitstring-status-list" / name
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _multibase(compressed: bytes) -> str:
    return "u" + base64.urlsafe_b64encode(compressed).rstrip(b"=").decode("ascii")


def _set_bits(bitstring: bytes) -> set[int]:
    return {i * 8 + b for i, byte in enumerate(bitstring) if byte for b in range(8) if byte & (0x80 >> b)}


def _reference_bitstring(indices: set[int], length: int) -> bytes:
    """MSB first, written as the specification draws it: a string of '0'/'1', entry 0 on the left."""
    text = "".join("1" if i in indices else "0" for i in range(length))
    return int(text, 2).to_bytes(length // 8, "big")


def _independent_decode(encoded: str) -> bytes:
    assert encoded.startswith("u")
    text = encoded[1:]
    return gzip.decompress(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


# --- the W3C vectors ---------------------------------------------------------------------------------


def test_generated_revocation_list_has_exactly_its_bits_set() -> None:
    vector = _vector("generated-revocation-list.json")
    bits = decode_status_list(vector["encodedList"])
    assert len(bits) * 8 == vector["length_bits"] == MIN_LENGTH
    assert vector["statusSize"] == 1
    for index in vector["set_indexes"]:
        assert is_set(bits, index), index
    for index in vector["unset_examples"]:
        assert not is_set(bits, index), index
    assert _set_bits(bits) == set(vector["set_indexes"])
    assert bits[:2].hex() == vector["first_two_bytes_hex"]


def test_our_encoder_reproduces_the_generated_list() -> None:
    vector = _vector("generated-revocation-list.json")
    ours = encode_status_list(vector["set_indexes"], vector["length_bits"])
    assert decode_status_list(ours) == decode_status_list(vector["encodedList"])
    assert _independent_decode(ours) == _independent_decode(vector["encodedList"])
    assert ours == encode_status_list(reversed(vector["set_indexes"]), vector["length_bits"])  # deterministic


def test_example_credential_list_is_16kb_of_zeros() -> None:
    vector = _vector("status-list-credential-example.json")
    bits = decode_status_list(vector["credentialSubject"]["encodedList"])
    assert bits == bytes(16 * 1024)
    assert _set_bits(bits) == set()
    assert decode_status_list(encode_status_list([])) == bits


def test_example_credential_is_rebuilt_field_for_field() -> None:
    vector = _vector("status-list-credential-example.json")
    expected = {k: v for k, v in vector.items() if not k.startswith("_")}
    subject = vector["credentialSubject"]
    built = status_list_credential(
        vector["issuer"], vector["id"], subject["statusPurpose"], subject["encodedList"], vector["validFrom"],
        subject_id=subject["id"],
    )
    assert built == expected


def test_default_subject_id_is_the_list_fragment() -> None:
    built = status_list_credential(
        "did:example:1", "https://example.com/status/1", "suspension", encode_status_list([3]), "2024-01-01T00:00:00Z"
    )
    assert built["credentialSubject"]["id"] == "https://example.com/status/1#list"


# --- known answer by an independent path (stdlib gzip + base64) ---------------------------------------


@pytest.mark.parametrize(
    "indices",
    [set(), {0}, {7}, {8}, {0, 1, 2, 3, 4, 5, 6, 7}, {1, 130_000, MIN_LENGTH - 1}, set(range(0, 4096, 3))],
)
def test_encoding_is_msb_first_gzip_base64url(indices: set[int]) -> None:
    encoded = encode_status_list(indices)
    assert encoded.startswith("u") and "=" not in encoded
    raw = base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4))
    assert raw[:3] == b"\x1f\x8b\x08"  # a GZIP member with DEFLATE
    assert gzip.decompress(raw) == _reference_bitstring(indices, MIN_LENGTH)


def test_index_zero_is_the_most_significant_bit_of_byte_zero() -> None:
    assert _independent_decode(encode_status_list([0]))[0] == 0x80
    assert _independent_decode(encode_status_list([7]))[0] == 0x01
    assert _independent_decode(encode_status_list([8]))[:2] == b"\x00\x80"


def test_a_longer_list_round_trips() -> None:
    length = MIN_LENGTH * 2
    encoded = encode_status_list([length - 1], length)
    bits = decode_status_list(encoded)
    assert len(bits) * 8 == length and _set_bits(bits) == {length - 1}


def test_lists_compressed_by_other_gzip_writers_are_accepted() -> None:
    plain = _reference_bitstring({5, 99_999}, MIN_LENGTH)
    for compressed in (
        gzip.compress(plain),  # a real MTIME, another XFL/OS
        gzip.compress(plain, compresslevel=1),
        gzip.compress(plain[:100]) + gzip.compress(plain[100:]),  # two members: still one RFC 1952 file
    ):
        assert decode_status_list(_multibase(compressed)) == plain


# --- refusals ------------------------------------------------------------------------------------------


_VALID = encode_status_list([1, 2, 3])
_PLAIN = bytes(MIN_LENGTH // 8)


@pytest.mark.parametrize(
    "encoded",
    [
        _VALID[1:],  # no multibase prefix
        "z" + _VALID[1:],  # base58btc
        "U" + _VALID[1:],  # base64url with padding is another multibase code
        "m" + base64.b64encode(gzip.compress(_PLAIN)).decode().rstrip("="),  # plain base64
        "",
    ],
)
def test_wrong_multibase_prefix_is_refused(encoded: str) -> None:
    with pytest.raises(MalformedStatusList, match="multibase"):
        decode_status_list(encoded)


def test_non_string_is_refused() -> None:
    with pytest.raises(MalformedStatusList, match="multibase"):
        decode_status_list(b"u" + _VALID[1:].encode())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "encoded",
    [
        _VALID + "=",  # padding
        _VALID[:20] + "+" + _VALID[21:],  # base64 (not url) alphabet
        _VALID[:20] + "/" + _VALID[21:],
        _VALID[:20] + " " + _VALID[20:],
        _VALID[:20] + "\n" + _VALID[20:],
        _VALID[:20] + "é" + _VALID[21:],
        "u" + "A" * 4001,  # a length no base64 string has
    ],
)
def test_bad_base64url_is_refused(encoded: str) -> None:
    with pytest.raises(MalformedStatusList, match="base64url"):
        decode_status_list(encoded)


@pytest.mark.parametrize(
    "compressed",
    [
        zlib.compress(_PLAIN),  # zlib, not GZIP
        _PLAIN,  # not compressed at all
        b"",
        b"\x1f\x8b\x09" + gzip.compress(_PLAIN)[3:],  # compression method 9 does not exist
    ],
)
def test_not_gzip_is_refused(compressed: bytes) -> None:
    with pytest.raises(MalformedStatusList, match="GZIP"):
        decode_status_list(_multibase(compressed))


def test_corrupt_gzip_is_refused() -> None:
    good = gzip.compress(_PLAIN)
    bad_crc = good[:-8] + bytes([good[-8] ^ 1]) + good[-7:]
    bad_size = good[:-4] + (len(_PLAIN) + 1).to_bytes(4, "little")
    for compressed, reason in (
        (bad_crc, "GZIP"),
        (bad_size, "GZIP"),
        (good[:-5], "truncated"),
        (good + b"garbage!", "GZIP"),
    ):
        with pytest.raises(MalformedStatusList, match=reason):
            decode_status_list(_multibase(compressed))


@pytest.mark.parametrize("size", [0, 1, MIN_LENGTH // 8 - 1])
def test_list_shorter_than_16kb_is_refused(size: int) -> None:
    with pytest.raises(MalformedStatusList, match="at least 131072"):
        decode_status_list(_multibase(gzip.compress(bytes(size))))


def test_gzip_bomb_beyond_the_cap_is_refused() -> None:
    bomb = gzip.compress(bytes(MAX_BITSTRING_BYTES + 1), compresslevel=9)
    assert len(bomb) < 64 * 1024
    with pytest.raises(MalformedStatusList, match="more than"):
        decode_status_list(_multibase(bomb))
    # a bomb split over many members is refused as well
    members = gzip.compress(bytes(MAX_BITSTRING_BYTES // 4), compresslevel=9) * 5
    with pytest.raises(MalformedStatusList, match="more than"):
        decode_status_list(_multibase(members))


def test_a_list_at_the_cap_is_accepted() -> None:
    assert len(decode_status_list(_multibase(gzip.compress(bytes(MAX_BITSTRING_BYTES))))) == MAX_BITSTRING_BYTES


@pytest.mark.parametrize("index", [-1, MIN_LENGTH, MIN_LENGTH + 7, 10**30])
def test_index_out_of_range_is_refused(index: int) -> None:
    bits = decode_status_list(_VALID)
    with pytest.raises(StatusIndexOutOfRange):
        is_set(bits, index)
    with pytest.raises(StatusIndexOutOfRange):
        encode_status_list([index])


@pytest.mark.parametrize("index", [True, 1.0, "1", None])
def test_non_integer_index_is_refused(index: Any) -> None:
    with pytest.raises(StatusIndexOutOfRange, match="integer"):
        is_set(decode_status_list(_VALID), index)
    with pytest.raises(StatusIndexOutOfRange, match="integer"):
        encode_status_list([index])


@pytest.mark.parametrize("length", [MIN_LENGTH - 8, 0, -8, MIN_LENGTH + 1, (MAX_BITSTRING_BYTES + 1) * 8])
def test_bad_lengths_are_refused_when_encoding(length: int) -> None:
    with pytest.raises(MalformedStatusList):
        encode_status_list([], length)


@pytest.mark.parametrize("length", [float(MIN_LENGTH), True, "131072"])
def test_non_integer_length_is_refused(length: Any) -> None:
    with pytest.raises(MalformedStatusList, match="integer"):
        encode_status_list([], length)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("id", "https://example.com/status/3#list", "fragment"),
        ("id", "", "non-empty"),
        ("issuer", "", "non-empty"),
        ("purpose", "message", "status purpose"),
        ("purpose", "Revocation", "status purpose"),
        ("valid_from", "2021-04-05T14:27:40", "dateTimeStamp"),  # no time zone
        ("valid_from", "2021-04-05", "dateTimeStamp"),
        ("valid_from", "2021-02-30T00:00:00Z", "valid date"),
        ("encoded_list", "uAAAA", "GZIP"),
        ("encoded_list", encode_status_list([1])[1:], "multibase"),
    ],
)
def test_bad_credential_fields_are_refused(field: str, value: str, reason: str) -> None:
    args = {
        "issuer": "did:example:12345",
        "id": "https://example.com/credentials/status/3",
        "purpose": "revocation",
        "encoded_list": _VALID,
        "valid_from": "2021-04-05T14:27:40Z",
    }
    args[field] = value
    with pytest.raises(MalformedStatusList, match=reason):
        status_list_credential(**args)


# --- round trip ----------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.sets(st.integers(min_value=0, max_value=MIN_LENGTH - 1), max_size=300),
    st.sampled_from([MIN_LENGTH, MIN_LENGTH + 8, MIN_LENGTH * 3]),
)
def test_decode_of_encode_has_exactly_those_bits(indices: set[int], length: int) -> None:
    bits = decode_status_list(encode_status_list(indices, length))
    assert len(bits) * 8 == length
    assert _set_bits(bits) == indices
    for index in list(indices)[:20]:
        assert is_set(bits, index)
