"""Log entries as the explorer shows them: the signed statement decoded (header, payload), the receipt's fields.

Decoding here is for reading; it checks nothing that a reader should rely on. The receipt is checked in the
reader's browser (``static/receipt.js``) and by ``tabellion verify receipt``.

Anyone can log a statement, and a logged one is never removed, so every value is shown whatever it holds
(``shown``): an integer past Python's decimal limit (a CBOR bignum as iat, content format or claim label) is shown
in hex, JSON nested past the interpreter's recursion limit is shown as hex, not parsed. One such entry must not
take a page down.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from schemas import cose_labels as L
from schemas.base64url import b64url
from schemas.cose_sign1 import decode_sign1
from schemas.errors import TabellionError
from schemas.identity_statements import parse_payload, statement_type_of
from schemas.leaf import entry_id, leaf_data
from schemas.receipt import parse_receipt
from schemas.statement import SignedStatement, parse_statement
from transparency.client.http import LogEntry

PAYLOAD_SHOWN_BYTES: Final = 16 * 1024
DECIMAL_BITS: Final = 64  # integers wider than this are shown in hex
HEADER_NAMES: Final = {L.ALG: "alg", L.CONTENT_TYPE: "content type", L.KID: "kid", L.CWT_CLAIMS: "CWT claims",
                       L.PAYLOAD_HASH_ALG: "payload hash alg", L.PREIMAGE_CONTENT_TYPE: "preimage content type",
                       L.PAYLOAD_LOCATION: "payload location"}


def shown(value: object) -> str:
    """``value`` as text for reading: ``str``, except that an integer wider than 64 bits is shown in hex (``str``
    refuses one past 4,300 digits), inside containers too."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > DECIMAL_BITS:
        return f"{'-' if value < 0 else ''}0x{abs(value):x}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(shown(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{shown(k)}: {shown(v)}" for k, v in value.items()) + "}"
    return str(value)


def timestamp(seconds: int | None) -> str:
    """ISO 8601 UTC, to the second; an empty string for no time."""
    if seconds is None:
        return ""
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return shown(seconds)


@dataclass(frozen=True)
class ReceiptFields:
    tree_size: int
    leaf_index: int
    path_length: int
    kid: str
    issuer: str
    issued_at: str


@dataclass(frozen=True)
class EntryView:
    """One log entry, decoded for reading."""

    index: int
    entry: str  # the entry id: hex leaf_data
    kind: str  # the Tabellion statement type, else the content type
    signer: str
    subject: str
    issued_at: str
    statement: bytes
    receipt: bytes
    parsed: SignedStatement | None
    receipt_fields: ReceiptFields | None
    problem: str = ""  # why the statement could not be decoded (it was logged before a stricter parser)

    @property
    def logged_at(self) -> str:
        return self.receipt_fields.issued_at if self.receipt_fields else ""

    @property
    def statement_b64(self) -> str:
        return b64url(self.statement)

    @property
    def receipt_b64(self) -> str:
        return b64url(self.receipt)

    @property
    def statement_type(self) -> str | None:
        return statement_type_of(self.parsed.content_type) if self.parsed else None

    def header(self) -> list[tuple[str, str]]:
        """The protected header, label by label, in words."""
        if self.parsed is None:
            return []
        rows = []
        for label, value in self.parsed.message.protected.items():
            name = HEADER_NAMES.get(label, shown(label)) if isinstance(label, int) else shown(label)
            if label == L.ALG:
                text = f"{shown(value)} ({L.SIGNING_ALGORITHMS.get(value, 'unknown')})"
            elif label == L.CWT_CLAIMS and isinstance(value, dict):
                names = {L.CWT_ISS: "iss", 2: "sub", L.CWT_IAT: "iat", 4: "exp", 5: "nbf"}
                text = ", ".join(f"{names.get(k, shown(k))}: {_claim(k, v)}" for k, v in value.items())
            elif isinstance(value, bytes):
                text = self.parsed.kid_text if label == L.KID and self.parsed.kid_text else value.hex()
            else:
                text = shown(value)
            rows.append((name, text))
        return rows

    def payload(self) -> str:
        """The payload as text: pretty JSON for Tabellion's types and JSON content, else hex."""
        if self.parsed is None:
            return ""
        data = self.parsed.payload
        stype = self.statement_type
        try:
            if stype is not None:
                return json.dumps(parse_payload(stype, data), indent=2, ensure_ascii=False)
            if isinstance(self.parsed.content_type, str) and "json" in self.parsed.content_type:
                return json.dumps(json.loads(data), indent=2, ensure_ascii=False)
        except (TabellionError, ValueError, RecursionError):
            pass
        shown = data[:PAYLOAD_SHOWN_BYTES].hex()
        more = f"\n… ({len(data)} bytes in all)" if len(data) > PAYLOAD_SHOWN_BYTES else ""
        return shown + more


def _claim(label: object, value: object) -> str:
    if label in (L.CWT_IAT, 4, 5) and isinstance(value, int):
        return f"{shown(value)} ({timestamp(value)})"
    return shown(value)


def view(entry: LogEntry) -> EntryView:
    """Decode one entry of the log's public reads."""
    try:
        ident = entry_id(leaf_data(decode_sign1(entry.statement)))
    except TabellionError as exc:
        return EntryView(entry.leaf_index, "", "undecodable", "", "", "", entry.statement, entry.receipt, None,
                         _receipt_fields(entry.receipt), exc.detail)
    try:
        parsed = parse_statement(entry.statement)
        issued = timestamp(parsed.issued_at)
    except TabellionError as exc:
        return EntryView(entry.leaf_index, ident, "undecodable", "", "", "", entry.statement, entry.receipt, None,
                         _receipt_fields(entry.receipt), exc.detail)
    stype = statement_type_of(parsed.content_type)
    if stype is not None:
        kind = stype
    elif parsed.payload_hash_alg is not None:
        kind = "hash envelope"
    else:
        kind = shown(parsed.content_type)
    return EntryView(entry.leaf_index, ident, kind, parsed.issuer, parsed.subject, issued, entry.statement,
                     entry.receipt, parsed, _receipt_fields(entry.receipt))


def _receipt_fields(receipt: bytes) -> ReceiptFields | None:
    try:
        r = parse_receipt(receipt)
    except TabellionError:
        return None
    proof = r.inclusion[0]
    return ReceiptFields(proof.tree_size, proof.leaf_index, len(proof.path), r.kid.hex(), r.issuer,
                         timestamp(r.issued_at))


def json_of(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)
