"""The CBOR written or read by hand on the receipt-verification path, against cbor2 (hypothesis).

- ``schemas.leaf.logged_statement`` (the leaf's encoding) equals cbor2's deterministic encoding of
  ``tag18([protected, {}, payload, signature])`` for arbitrary byte strings, every length boundary included.
- ``cbor.bstr_head``, ``cbor.read_head`` and ``cbor.read_bstr`` agree with cbor2 on heads of every width.
- ``cbor.read_shortest_bstr`` takes exactly the shortest-form heads.
- The readers of an inclusion proof and of a receipt in the log's own layout accept only what the strict
  readers accept, and read it the same way: on canonical encodings (which they must take), on other valid
  encodings, and on arbitrary mutations of both (where they must either decline or agree).
- ``statement_leaf_data`` gives the leaf of the decoded statement, or the same refusal, for statements,
  their mutations and arbitrary bytes.
- ``parse_statement``'s one pass over a statement in the logged layout gives the message that ``decode_sign1``
  and ``refuse_repeated_labels`` give, or the same refusal, on the same inputs and on protected headers that
  repeat a label; ``cbor.refuse_repeated_keys`` (which compares with cbor2's encoding first) agrees with
  counting the map entries, and ``cbor.decode_as_written`` returns only what ``decode`` builds and passes it.
- The strict decoder's stray-break check agrees with a plain recursive reference on mutated items.
- ``cbor.head``, ``InclusionProof.encode`` and ``transparency.receipts.assemble_receipt`` (written out by hand:
  the sequencer assembles a receipt per new entry) equal cbor2's deterministic encoding, every width included.
"""

from __future__ import annotations

import io
from hashlib import sha256
from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import cbor
from schemas import cose_labels as L
from schemas.cose_sign1 import CoseSign1, decode_sign1, refuse_repeated_labels
from schemas.errors import MalformedCbor, MalformedReceipt, TabellionError
from schemas.leaf import leaf_data, logged_statement, statement_leaf_data
from schemas.proofs import InclusionProof, _decode_triple_strictly, _shortest_form_triple
from schemas.receipt import (
    _log_receipt,
    _read_receipt_strictly,
    read_receipt,
    receipt_protected_header,
    receipt_to_verify,
)
from schemas.statement import _logged_message, parse_logged_statement, parse_statement
from tests.property.cbor_heads import head_of_width
from transparency.receipts import assemble_receipt

_BREAK = object()  # cbor2 5.x returned a break marker for a lone 0xFF; cbor2 6 refuses it (nothing to find)
_FROZEN_DICT: Any = cbor2.frozendict
LENGTHS = [0, 1, 23, 24, 25, 255, 256, 257, 65535, 65536, 65537]

_byte_strings = st.one_of(st.binary(max_size=300), st.sampled_from(LENGTHS).map(lambda n: b"\xa5" * n))
_uint64 = st.one_of(st.integers(0, 30), st.integers(0, 2**64 - 1), st.sampled_from([23, 24, 255, 256, 65535, 65536]))


# --- mutations ----------------------------------------------------------------------------------------


@st.composite
def _mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with a few bytes replaced, inserted, deleted, appended or cut off (often 0xFF or a head)."""
    out = bytearray(data)
    special = st.sampled_from([0xFF, 0x00, 0x18, 0x19, 0x1B, 0x1F, 0x20, 0x40, 0x58, 0x5F, 0x80, 0x83, 0x9F,
                               0xA0, 0xA1, 0xBF, 0xC0, 0xD2, 0xD8, 0xF6, 0xF7])
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["replace", "insert", "delete", "append", "truncate"]))
        byte = draw(st.one_of(special, st.integers(0, 255)))
        at = draw(st.integers(0, max(len(out) - 1, 0)))
        if kind == "replace" and out:
            out[at] = byte
        elif kind == "insert":
            out.insert(at, byte)
        elif kind == "delete" and out:
            del out[at]
        elif kind == "append":
            out.append(byte)
        elif kind == "truncate":
            del out[at:]
    return bytes(out)


def _outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args)
    except TabellionError as exc:  # MalformedCbor, MalformedReceipt, NotCoseSign1, UnsupportedAlgorithm ...
        return type(exc).__name__, str(exc)


# --- the leaf encoding and byte-string heads ----------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(_byte_strings, st.one_of(st.none(), _byte_strings), _byte_strings)
def test_logged_statement_equals_the_deterministic_encoding(
    protected: bytes, payload: bytes | None, signature: bytes
) -> None:
    message = CoseSign1(protected, {}, {99: "dropped"}, payload, signature)
    expected = cbor2.dumps(cbor2.CBORTag(18, [protected, {}, payload, signature]), canonical=True)
    assert logged_statement(message) == expected == message.encode(unprotected={})


@given(st.one_of(st.sampled_from(LENGTHS), st.integers(0, 70000)))
def test_bstr_head_is_cbor2s(n: int) -> None:
    content = b"\x01" * n
    assert cbor.bstr_head(n) + content == cbor2.dumps(content)


@st.composite
def _any_head(draw: st.DrawFn, major: int) -> tuple[int, bytes]:
    """A value and a head for it of any width that can hold it (not only the shortest)."""
    value = draw(_uint64)
    widths = [w for w in (0, 1, 2, 4, 8) if (w == 0 and value < 24) or (w and value < 1 << (8 * w))]
    return value, head_of_width(major, value, draw(st.sampled_from(widths)))


@given(_any_head(0x00), st.binary(max_size=4))
def test_read_head_reads_what_cbor2_reads(head: tuple[int, bytes], tail: bytes) -> None:
    value, encoded = head
    assert cbor2.loads(encoded) == value
    assert cbor.read_head(b"\x00" + encoded + tail, 1, 0x00) == (value, 1 + len(encoded))
    assert cbor.read_head(encoded, 0, 0x40) == (-1, -1)  # another major type
    assert cbor.read_head(encoded[:-1], 0, 0x00) == (-1, -1)  # truncated (or nothing left)


@given(st.binary(max_size=40), st.sampled_from([0, 1, 2, 4, 8]), st.binary(max_size=3))
def test_read_bstr_finds_the_content_cbor2_decodes(content: bytes, width: int, tail: bytes) -> None:
    if width == 0 and len(content) >= 24:
        width = 1
    encoded = head_of_width(0x40, len(content), width) + content
    start, end = cbor.read_bstr(encoded + tail, 0)
    assert (encoded + tail)[start:end] == content == cbor2.loads(encoded)
    assert cbor.read_bstr(encoded[:-1], 0) == (-1, -1)  # truncated content or head


@given(st.binary(max_size=12), st.integers(-2, 14))
def test_read_bstr_on_arbitrary_bytes(data: bytes, i: int) -> None:
    start, end = cbor.read_bstr(data, i)
    if start < 0:
        assert (start, end) == (-1, -1)
        return
    decoder = cbor2.CBORDecoder(io.BytesIO(data[i:]))
    assert decoder.decode() == data[start:end]
    assert i + decoder.fp.tell() == end


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.sampled_from(LENGTHS), st.integers(0, 70000)), st.sampled_from([0, 1, 2, 4, 8]),
       st.binary(max_size=3))
def test_read_shortest_bstr_takes_only_the_shortest_head(n: int, width: int, tail: bytes) -> None:
    content = b"\x07" * n
    fits = (width == 0 and n < 24) or (width > 0 and n < 1 << (8 * width))
    if not fits:
        return
    encoded = head_of_width(0x40, n, width) + content
    shortest = encoded == cbor2.dumps(content)
    expected = (len(encoded) - n, len(encoded)) if shortest else (-1, -1)
    assert cbor.read_shortest_bstr(encoded + tail, 0) == expected
    assert cbor.read_bstr(encoded + tail, 0) == (len(encoded) - n, len(encoded))


# --- the inclusion proof's shortest-form reader --------------------------------------------------------


@st.composite
def _triple_encodings(draw: st.DrawFn) -> tuple[tuple[int, int, tuple[bytes, ...]], bytes, bool]:
    """A triple, an encoding of it, and whether that encoding is the shortest-form one the log writes."""
    size, index = draw(_uint64), draw(_uint64)
    path = tuple(draw(st.lists(st.binary(min_size=32, max_size=32), max_size=20)))
    canonical = cbor.encode([size, index, list(path)])
    if draw(st.booleans()):
        return (size, index, path), canonical, True
    # another valid encoding: any-width heads, 32-byte strings with wide heads, indefinite arrays
    parts = [b"\x83" if draw(st.booleans()) else b"\x9f"]
    for n in (size, index):
        widths = [w for w in (0, 1, 2, 4, 8) if (w == 0 and n < 24) or (w and n < 1 << (8 * w))]
        parts.append(head_of_width(0x00, n, draw(st.sampled_from(widths))))
    indefinite_path = draw(st.booleans())
    if indefinite_path:
        parts.append(b"\x9f")
    else:
        parts.append(head_of_width(0x80, len(path), draw(st.sampled_from([0, 1, 2])) if len(path) < 24 else 1))
    for node in path:
        parts.append(head_of_width(0x40, 32, draw(st.sampled_from([1, 2, 4, 8]))) + node)
    if indefinite_path:
        parts.append(b"\xff")
    if parts[0] == b"\x9f":
        parts.append(b"\xff")
    encoding = b"".join(parts)
    return (size, index, path), encoding, encoding == canonical


@settings(max_examples=400, deadline=None)
@given(_triple_encodings())
def test_shortest_form_triple_reads_the_logs_encoding(case: tuple[Any, bytes, bool]) -> None:
    triple, encoding, canonical = case
    assert _decode_triple_strictly(encoding, "inclusion proof") == triple
    fast = _shortest_form_triple(encoding)
    if canonical:
        assert fast == triple
    else:
        assert fast in (None, triple)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_shortest_form_triple_declines_or_agrees_on_mutations(data: st.DataObject) -> None:
    _, encoding, _ = data.draw(_triple_encodings())
    mutated = data.draw(_mutated(encoding))
    fast = _shortest_form_triple(mutated)
    if fast is not None:
        assert _outcome(_decode_triple_strictly, mutated, "inclusion proof") == ("ok", fast)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=80))
def test_shortest_form_triple_on_arbitrary_bytes(data: bytes) -> None:
    for candidate in (data, b"\x83" + data):
        fast = _shortest_form_triple(candidate)
        if fast is not None:
            assert _outcome(_decode_triple_strictly, candidate, "inclusion proof") == ("ok", fast)


# --- the receipt's log-layout reader ---------------------------------------------------------------------


@st.composite
def _receipt_headers(draw: st.DrawFn) -> bytes:
    """Receipt protected headers as the log writes them, sometimes with heads of other widths, sometimes with
    another alg or a kid of another length (which the log-layout reader leaves to the strict one)."""
    alg = draw(st.sampled_from([L.ALG_EDDSA, L.ALG_ES256, L.ALG_EDDSA, 0, -65536]))
    kid = draw(st.one_of(st.binary(min_size=32, max_size=32), st.binary(max_size=300)))
    issuer, iat = draw(st.text(max_size=300)), draw(st.one_of(_uint64, st.integers(-(2**40), -1)))
    canonical = cbor.encode(receipt_protected_header(alg, kid, issuer, iat))
    if draw(st.booleans()) or iat < 0:
        return canonical
    text = issuer.encode()
    return (b"\xa4\x01" + cbor.encode(alg) + b"\x04" + head_of_width(0x40, len(kid), draw(st.sampled_from([1, 8])))
            + kid + b"\x0f\xa2\x01" + head_of_width(0x60, len(text), 4) + text + b"\x06"
            + head_of_width(0x00, iat, 8) + b"\x19\x01\x8b\x01")


@st.composite
def _log_layout_receipts(draw: st.DrawFn) -> bytes:
    """Receipts as the log writes them (EdDSA or ES256, a 32-byte kid, an unsigned iat, a 64-byte
    signature), sometimes with heads of other widths in the header and the proof."""
    alg = draw(st.sampled_from([L.ALG_EDDSA, L.ALG_ES256]))
    issuer, iat = draw(st.text(max_size=300)), draw(_uint64)
    protected = cbor.encode(receipt_protected_header(alg, draw(st.binary(min_size=32, max_size=32)), issuer, iat))
    if draw(st.booleans()):
        text = issuer.encode()
        protected = (protected[: 38] + b"\x0f\xa2\x01" + head_of_width(0x60, len(text), 4) + text + b"\x06"
                     + head_of_width(0x00, iat, 8) + b"\x19\x01\x8b\x01")
    proof = draw(_triple_encodings().map(lambda c: c[1]))
    signature = draw(st.binary(min_size=64, max_size=64))
    return cbor.encode(cbor.tag(18, [protected, {L.VDP: {L.VDP_INCLUSION: [proof]}}, None, signature]))


@st.composite
def _receipts(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return draw(_log_layout_receipts())
    if draw(st.integers(0, 2)):
        protected = draw(_receipt_headers())
    else:  # anything at all in the protected bstr, including what is not a header
        protected = draw(st.one_of(st.binary(max_size=60), st.builds(cbor.encode, st.dictionaries(
            st.one_of(st.integers(-30, 400), st.text(max_size=3)), st.one_of(st.integers(), st.binary(max_size=8),
            st.text(max_size=8), st.lists(st.integers(), max_size=3)), max_size=4))))
    proof = draw(st.one_of(st.binary(max_size=120), _triple_encodings().map(lambda c: c[1])))
    signature = draw(st.one_of(st.binary(min_size=64, max_size=64), st.binary(max_size=300)))
    return cbor.encode(cbor.tag(18, [protected, {L.VDP: {L.VDP_INCLUSION: [proof]}}, None, signature]))


def _via_log_layout(data: bytes) -> Any:
    """``read_receipt(data)`` when the log-layout reader takes ``data``, else ``None``."""
    return read_receipt(data) if _log_receipt(data) is not None else None


def _to_verify_strictly(data: bytes) -> Any:
    """What ``receipt_to_verify`` must give, from the strict reader: the fields verification needs."""
    f = _read_receipt_strictly(data)
    if not f.inclusion:
        return "no inclusion proof"
    return f.protected_bytes, f.alg, f.kid, f.issuer, f.issued_at, f.inclusion[0], f.signature


def _check_to_verify(data: bytes) -> None:
    expected = _outcome(_to_verify_strictly, data)
    got = _outcome(lambda d: tuple(receipt_to_verify(d)), data)
    if expected == ("ok", "no inclusion proof"):
        assert got[0] == "MalformedReceipt" and "no inclusion proof" in got[1]
    else:
        assert got == expected


@settings(max_examples=600, deadline=None)
@given(_receipts())
def test_log_receipt_reads_what_the_strict_reader_reads(receipt: bytes) -> None:
    fast = _outcome(_via_log_layout, receipt)
    assert fast == ("ok", None) or fast == _outcome(_read_receipt_strictly, receipt)
    assert _outcome(read_receipt, receipt) == _outcome(_read_receipt_strictly, receipt)
    _check_to_verify(receipt)


def test_log_receipt_takes_the_logs_own_layout() -> None:
    """The strategy's canonical receipts, as the log writes them, do take the log-layout reader."""
    header = cbor.encode(receipt_protected_header(L.ALG_EDDSA, b"k" * 32, "log.example", 1_700_000_000))
    proof = cbor.encode([10, 3, [b"\x01" * 32, b"\xff" * 32]])
    receipt = cbor.encode(cbor.tag(18, [header, {L.VDP: {L.VDP_INCLUSION: [proof]}}, None, b"s" * 64]))
    assert _log_receipt(receipt) is not None
    fields = read_receipt(receipt)
    assert fields == _read_receipt_strictly(receipt)
    assert fields.inclusion == ((10, 3, (b"\x01" * 32, b"\xff" * 32)),)
    assert receipt_to_verify(receipt) == (header, L.ALG_EDDSA, b"k" * 32, "log.example", 1_700_000_000,
                                          fields.inclusion[0], b"s" * 64)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_log_receipt_declines_or_agrees_on_mutations(data: st.DataObject) -> None:
    mutated = data.draw(_mutated(data.draw(_receipts())))
    fast = _outcome(_via_log_layout, mutated)
    if fast != ("ok", None):
        assert fast == _outcome(_read_receipt_strictly, mutated)
    _check_to_verify(mutated)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60), st.binary(max_size=40), st.binary(max_size=70))
def test_log_receipt_on_arbitrary_bytes(a: bytes, b: bytes, c: bytes) -> None:
    shaped = b"\xd2\x84" + cbor.bstr_head(len(a)) + a + b"\xa1\x19\x01\x8c\xa1\x20\x81" + b + c
    for candidate in (a + b + c, shaped):
        fast = _outcome(_via_log_layout, candidate)
        if fast != ("ok", None):
            assert fast == _outcome(_read_receipt_strictly, candidate)
        _check_to_verify(candidate)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.text(max_size=20), st.binary(max_size=12))
def test_log_receipt_declines_what_is_not_utf8(kid: bytes, issuer: str, junk: bytes) -> None:
    text = issuer.encode() + junk  # often not UTF-8 any more: cbor2 refuses it, so the reader must decline
    header = (b"\xa4\x01\x27\x04" + cbor.bstr_head(len(kid)) + kid + b"\x0f\xa2\x01" + head_of_width(0x60, len(text), 1)
              + text + b"\x06\x01\x19\x01\x8b\x01")
    receipt = cbor.encode(cbor.tag(18, [header, {L.VDP: {L.VDP_INCLUSION: [cbor.encode([1, 0, []])]}}, None,
                                        b"s" * 64]))
    fast = _outcome(_via_log_layout, receipt)
    if fast != ("ok", None):
        assert fast == _outcome(_read_receipt_strictly, receipt)
    else:
        try:
            text.decode("utf-8")
        except UnicodeDecodeError:
            with pytest.raises(MalformedReceipt):
                _read_receipt_strictly(receipt)


# --- the statement's leaf, read straight from its bytes ----------------------------------------------------


@st.composite
def _statements(draw: st.DrawFn) -> bytes:
    """Signed statements: mostly laid out as logged (their own logged form), sometimes with an unprotected
    header, wide heads, another signature length, or a protected header that is not one."""
    protected = draw(st.one_of(
        st.builds(cbor.encode, st.dictionaries(st.one_of(st.integers(-30, 400), st.text(max_size=3)), st.one_of(
            st.integers(), st.binary(max_size=40), st.text(max_size=40),
            st.dictionaries(st.integers(0, 10), st.text(max_size=20), max_size=3)), max_size=5)),
        st.just(b""), st.binary(max_size=40)))
    payload = draw(st.one_of(st.none(), _byte_strings))
    signature = draw(st.one_of(st.binary(min_size=64, max_size=64), st.binary(max_size=100)))
    unprotected = draw(st.one_of(st.just({}), st.dictionaries(st.integers(0, 400), st.binary(max_size=8), max_size=2)))
    statement = cbor.encode(cbor.tag(18, [protected, unprotected, payload, signature]))
    if draw(st.integers(0, 4)) == 0:  # the protected header's byte string with a wide head
        head = cbor.bstr_head(len(protected))
        statement = statement.replace(b"\xd2\x84" + head, b"\xd2\x84" + head_of_width(0x40, len(protected), 8), 1)
    return statement


def _strict_leaf(data: bytes) -> bytes:
    return leaf_data(decode_sign1(data, "signed statement"))


@settings(max_examples=600, deadline=None)
@given(_statements())
def test_statement_leaf_data_is_the_leaf_of_the_decoded_statement(statement: bytes) -> None:
    assert _outcome(statement_leaf_data, statement) == _outcome(_strict_leaf, statement)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_statement_leaf_data_on_mutations(data: st.DataObject) -> None:
    mutated = data.draw(_mutated(data.draw(_statements())))
    assert _outcome(statement_leaf_data, mutated) == _outcome(_strict_leaf, mutated)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80), st.binary(max_size=80))
def test_statement_leaf_data_on_arbitrary_bytes(a: bytes, b: bytes) -> None:
    shaped = b"\xd2\x84" + cbor.bstr_head(len(a)) + a + b"\xa0" + b
    for candidate in (a + b, shaped):
        assert _outcome(statement_leaf_data, candidate) == _outcome(_strict_leaf, candidate)


def _parsed_leaf(data: bytes) -> tuple[Any, bytes]:
    statement, leaf = parse_logged_statement(data)
    return statement, leaf


def _strict_parsed_leaf(data: bytes) -> tuple[Any, bytes]:
    statement = parse_statement(data)
    return statement, leaf_data(decode_sign1(data, "signed statement"))


@st.composite
def _parsable_statements(draw: st.DrawFn) -> bytes:
    """Statements that ``parse_statement`` accepts: in the logged layout, or with an unprotected header, a wide
    head on the payload or a signature of another length (other layouts, whose leaf is not their own hash)."""
    header = {1: -8, 3: "application/json", 4: b"did:key:z6Mk#z6Mk", 15: {1: "did:key:z6Mk", 2: draw(st.text(
        min_size=1, max_size=20))}}
    payload = draw(_byte_strings)
    signature = draw(st.one_of(st.binary(min_size=64, max_size=64), st.binary(max_size=100)))
    unprotected = draw(st.one_of(st.just({}), st.dictionaries(st.integers(5, 400), st.binary(max_size=8), max_size=2)))
    statement = cbor.encode(cbor.tag(18, [cbor.encode(header), unprotected, payload, signature]))
    if draw(st.integers(0, 4)) == 0 and len(payload) < 24:  # the payload's byte string with a wide head
        at = statement.index(cbor.bstr_head(len(payload)) + payload, 4 + len(cbor.encode(header)))
        statement = statement[:at] + bytes((0x58, len(payload))) + statement[at + 1 :]
    return statement


@settings(max_examples=600, deadline=None)
@given(_parsable_statements() | _statements())
def test_parse_logged_statement_gives_the_leaf_of_the_decoded_statement(statement: bytes) -> None:
    assert _outcome(_parsed_leaf, statement) == _outcome(_strict_parsed_leaf, statement)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_parse_logged_statement_on_mutations(data: st.DataObject) -> None:
    mutated = data.draw(_mutated(data.draw(_parsable_statements())))
    assert _outcome(_parsed_leaf, mutated) == _outcome(_strict_parsed_leaf, mutated)


def test_parse_logged_statement_takes_both_layouts() -> None:
    header = cbor.encode({1: -8, 3: "application/json", 4: b"did:key:z6Mk", 15: {1: "did:key:z6Mk", 2: "s"}})
    logged = cbor.encode(cbor.tag(18, [header, {}, b"{}", b"s" * 64]))
    other = cbor.encode(cbor.tag(18, [header, {33: b"c"}, b"{}", b"s" * 64]))
    assert parse_logged_statement(logged)[1] == sha256(logged).digest() == _strict_parsed_leaf(logged)[1]
    assert parse_logged_statement(other)[1] == leaf_data(decode_sign1(other)) != sha256(other).digest()
    assert parse_logged_statement(other)[1] == sha256(logged).digest()  # the unprotected header is not logged


# --- the statement read in one pass, against the full decode ------------------------------------------------


def _repeating(encoded_map: bytes) -> bytes:
    """A map encoded by ``cbor.encode`` (a short head), with its first entry written twice: a repeated key."""
    n = encoded_map[0] & 0x1F
    if not encoded_map or encoded_map[0] & 0xE0 != 0xA0 or not 0 < n < 23:
        return encoded_map
    item = cbor.decode(encoded_map)
    key, value = next(iter(item.items()))
    entry = cbor.encode({key: value})[1:]
    return bytes((0xA0 | (n + 1),)) + encoded_map[1:] + entry


@st.composite
def _logged_statements(draw: st.DrawFn) -> bytes:
    """Statements of ``_statements``, and ones in the logged layout whose protected header (or a map in it)
    repeats a label."""
    if draw(st.booleans()):
        return draw(_statements())
    header = draw(st.dictionaries(st.integers(-30, 400), st.one_of(
        st.integers(), st.text(max_size=20),
        st.dictionaries(st.integers(0, 10), st.text(max_size=20), min_size=1, max_size=3)), min_size=1, max_size=5))
    protected = cbor.encode(header)
    if draw(st.booleans()):
        protected = _repeating(protected)
    else:  # a nested map repeats a key
        nested = next((k for k, v in header.items() if isinstance(v, dict)), None)
        if nested is not None:
            inner = cbor.encode(header[nested])
            protected = protected.replace(inner, _repeating(inner), 1)
    payload = draw(_byte_strings)
    return cbor.encode(cbor.tag(18, [protected, {}, payload, draw(st.binary(min_size=64, max_size=64))]))


def _strict_message(data: bytes) -> CoseSign1:
    message = decode_sign1(data, "signed statement")
    refuse_repeated_labels(data, message, "signed statement")
    return message


def _check_one_pass(data: bytes) -> None:
    fast = _outcome(_logged_message, data)
    if fast != ("ok", None):  # taken: the same message, or the same refusal
        assert fast == _outcome(_strict_message, data)


@settings(max_examples=600, deadline=None)
@given(_logged_statements())
def test_one_pass_statement_reader_agrees_with_the_full_decode(statement: bytes) -> None:
    _check_one_pass(statement)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_one_pass_statement_reader_on_mutations(data: st.DataObject) -> None:
    _check_one_pass(data.draw(_mutated(data.draw(_logged_statements()))))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80), st.binary(max_size=80))
def test_one_pass_statement_reader_on_arbitrary_bytes(a: bytes, b: bytes) -> None:
    shaped = b"\xd2\x84" + cbor.bstr_head(len(a)) + a + b"\xa0" + cbor.bstr_head(len(b)) + b + b"\x58\x40" + b"s" * 64
    for candidate in (a + b, shaped):
        _check_one_pass(candidate)


def test_one_pass_statement_reader_refuses_a_repeated_label() -> None:
    protected = b"\xa2\x01\x27\x01\x26"  # {1: -8, 1: -7}
    statement = cbor.encode(cbor.tag(18, [protected, {}, b"p", b"s" * 64]))
    with pytest.raises(MalformedCbor, match="repeats a key"):
        _logged_message(statement)
    assert _outcome(_logged_message, statement) == _outcome(_strict_message, statement)


@settings(max_examples=600, deadline=None)
@given(st.data())
def test_refuse_repeated_keys_agrees_with_counting(data: st.DataObject) -> None:
    value = data.draw(st.recursive(
        st.one_of(st.integers(), st.text(max_size=5), st.binary(max_size=5), st.floats(allow_nan=False)),
        lambda inner: st.one_of(st.lists(inner, max_size=3),
                                st.dictionaries(st.one_of(st.integers(-5, 5), st.text(max_size=2)), inner, max_size=3)),
        max_leaves=12))
    encoded = cbor.encode(value)
    candidate = data.draw(st.one_of(st.just(encoded), st.just(_repeating(encoded)), _mutated(encoded)))
    try:
        decoded = cbor.decode(candidate)
    except MalformedCbor:
        assert cbor.decode_as_written(candidate) is None
        return
    try:
        expected = "ok" if cbor._declared_map_entries(candidate, "x") == cbor._decoded_map_entries(decoded) else "no"
    except MalformedCbor:  # value sharing
        expected = "no"
    try:
        cbor.refuse_repeated_keys(candidate, decoded, "x")
        outcome = "ok"
    except MalformedCbor:
        outcome = "no"
    assert outcome == expected
    as_written = cbor.decode_as_written(candidate)
    if as_written is not None:  # taken: what decode builds, and no map repeats a key
        assert as_written == decoded
        assert expected == "ok"


# --- stray breaks, against a plain recursive reference ---------------------------------------------------


def _reference_decode(data: bytes) -> bool:
    """Whether ``data`` is exactly one well-formed item: cbor2, a trailing-bytes check, then a recursive
    search for a break value through every container, each visited once."""
    stream = io.BytesIO(data)
    try:
        item = cbor2.CBORDecoder(stream).decode()
    except Exception:  # noqa: BLE001 - the reference only needs "refused or not"
        return False
    if stream.tell() != len(data):
        return False
    seen: set[int] = set()

    def clean(x: Any) -> bool:
        if x is _BREAK:
            return False
        if not isinstance(x, list | tuple | dict | set | frozenset | _FROZEN_DICT | cbor2.CBORTag):
            return True
        if id(x) in seen:
            return True
        seen.add(id(x))
        if isinstance(x, cbor2.CBORTag):
            return clean(x.value)
        if isinstance(x, dict | _FROZEN_DICT):
            return all(clean(k) and clean(v) for k, v in x.items())
        return all(clean(e) for e in x)

    return clean(item)


_items = st.recursive(
    st.one_of(st.integers(), st.binary(max_size=6), st.text(max_size=4), st.none(), st.booleans()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.integers(), st.text(max_size=3)), inner, max_size=3),
        st.builds(cbor2.CBORTag, st.sampled_from([18, 1000, 258, 55799]), inner),
    ),
    max_leaves=12,
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_strict_decode_agrees_with_the_reference(data: st.DataObject) -> None:
    try:
        encoding = cbor2.dumps(data.draw(_items))
    except (TypeError, ValueError):  # e.g. tag 258 around something that is not a set
        encoding = b"\x80"
    mutated = data.draw(_mutated(encoding))
    try:
        cbor.decode(mutated)
        accepted = True
    except MalformedCbor:
        accepted = False
    assert accepted == _reference_decode(mutated)


@pytest.mark.parametrize("n", [0, 1, 23, 24, 255, 256, 65536])
def test_read_bstr_at_length_boundaries(n: int) -> None:
    encoded = cbor2.dumps(b"\x07" * n)
    assert cbor.read_bstr(encoded, 0) == (len(encoded) - n, len(encoded))


# --- the encoders of receipts -------------------------------------------------------------------------


@given(st.sampled_from([0x00, 0x20, 0x40, 0x60, 0x80, 0xA0]), _uint64)
def test_head_is_cbor2s(major: int, n: int) -> None:
    encoded = cbor.head(major, n)
    if major == 0x00:
        assert encoded == cbor2.dumps(n)
    elif major == 0x20:
        assert encoded == cbor2.dumps(-1 - n)
    else:
        assert encoded[0] & 0xE0 == major and cbor.read_head(encoded, 0, major) == (n, len(encoded))
        if n <= 300:  # a whole item of that length, for cbor2 to encode
            item = {0x40: b"\x01" * n, 0x60: "a" * n, 0x80: [0] * n, 0xA0: {i: 0 for i in range(n)}}[major]
            assert cbor2.dumps(item, canonical=True).startswith(encoded)


_proofs = st.builds(
    lambda size, index, path: InclusionProof(size, index % size, tuple(path)),
    st.one_of(st.integers(1, 300), st.integers(1, 2**64 - 1), st.sampled_from([24, 256, 65536, 2**32])),
    st.integers(0, 2**64 - 1),
    st.lists(st.one_of(st.binary(min_size=32, max_size=32), st.binary(max_size=40)), max_size=66),
)


@given(_proofs)
def test_inclusion_proof_encoding_is_the_deterministic_one(proof: InclusionProof) -> None:
    expected = cbor2.dumps([proof.tree_size, proof.leaf_index, list(proof.path)], canonical=True)
    assert proof.encode() == expected


@given(_byte_strings, _byte_strings, _proofs)
def test_assembled_receipt_is_the_deterministic_encoding(protected: bytes, signature: bytes,
                                                          proof: InclusionProof) -> None:
    expected = cbor2.dumps(cbor2.CBORTag(18, [protected, {396: {-1: [cbor2.dumps(
        [proof.tree_size, proof.leaf_index, list(proof.path)], canonical=True)]}}, None, signature]), canonical=True)
    assert assemble_receipt(protected, signature, proof) == expected
