"""C2SP tlog-witness wire formats (https://c2sp.org/tlog-witness): the ``add-checkpoint`` request body, the
``409 Conflict`` size body, the cosignature lines a witness answers, and the monitoring path.

Bytes in and out only; the checks a witness makes are in ``witness.service``, a log's side in
``transparency.witnessing``.

The request body of ``POST <submission prefix>/add-checkpoint``::

    old <size>\\n                    decimal, no leading zeroes ("0" for zero)
    <base64 hash>\\n                 zero to 63 lines: the RFC 6962 consistency proof from <size>
    \\n
    <signed checkpoint note>         C2SP tlog-checkpoint, with every signature line

A ``200`` answer is one or more note signature lines (``\\u2014 <name> <base64>\\n``); a ``409`` answer is the
witness's latest cosigned size in decimal and a newline, with the media type ``text/x.tlog.size``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Final

from schemas.errors import MalformedNote, MalformedWitnessRequest
from schemas.note import NoteSignature, encode_signature_line, parse_signature_lines

TLOG_SIZE: Final = "text/x.tlog.size"
"""The media type of a witness's ``409 Conflict`` answer."""
MAX_PROOF_LINES: Final = 63
HASH_SIZE: Final = 32
MAX_TREE_SIZE: Final = (1 << 64) - 1
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}", re.ASCII)
_ORIGIN_HASH = re.compile(r"[0-9a-f]{64}", re.ASCII)


@dataclass(frozen=True)
class AddCheckpoint:
    """An ``add-checkpoint`` request: the size the submitter believes the witness has, the consistency proof
    from it to the checkpoint's size, and the signed checkpoint note (text and signature lines)."""

    old_size: int
    proof: tuple[bytes, ...]
    checkpoint: str

    def encode(self) -> bytes:
        lines = [f"old {self.old_size}\n", *(base64.b64encode(h).decode() + "\n" for h in self.proof), "\n"]
        return ("".join(lines) + self.checkpoint).encode()


def parse_decimal(text: str, what: str) -> int:
    """A tree size: ASCII decimal without leading zeroes, at most 2^64-1."""
    if not _DECIMAL.fullmatch(text) or int(text) > MAX_TREE_SIZE:
        raise MalformedWitnessRequest(f"{what} {text[:30]!r} is not a decimal size without leading zeroes")
    return int(text)


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """Parse an ``add-checkpoint`` body; the checkpoint note itself is left to the signed-note parser."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedWitnessRequest("the add-checkpoint body is not UTF-8") from exc
    head, sep, checkpoint = text.partition("\n\n")
    if not sep:
        raise MalformedWitnessRequest("the add-checkpoint body has no empty line before the checkpoint")
    lines = head.split("\n")
    old = lines[0]
    if not old.startswith("old "):
        raise MalformedWitnessRequest("the add-checkpoint body does not start with an 'old <size>' line")
    old_size = parse_decimal(old[4:], "the old size")
    proof_lines = lines[1:]
    if len(proof_lines) > MAX_PROOF_LINES:
        raise MalformedWitnessRequest(f"{len(proof_lines)} consistency proof lines; at most {MAX_PROOF_LINES}")
    proof = []
    for i, line in enumerate(proof_lines):
        try:
            node = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MalformedWitnessRequest(f"consistency proof line {i} is not base64") from exc
        if len(node) != HASH_SIZE:
            raise MalformedWitnessRequest(f"consistency proof line {i} is {len(node)} bytes, not {HASH_SIZE}")
        proof.append(node)
    if not checkpoint:
        raise MalformedWitnessRequest("the add-checkpoint body has no checkpoint after the empty line")
    return AddCheckpoint(old_size, tuple(proof), checkpoint)


def encode_size(size: int) -> bytes:
    """The body of a ``409 Conflict``: the latest cosigned size, in decimal, and a newline."""
    return f"{size}\n".encode()


def parse_size(body: bytes) -> int:
    """Read a ``409 Conflict`` body (``text/x.tlog.size``)."""
    text = body.decode("ascii", "replace")
    if not text.endswith("\n"):
        raise MalformedWitnessRequest("a text/x.tlog.size body ends with a newline")
    return parse_decimal(text[:-1], "the witness's size")


def encode_cosignatures(signatures: tuple[NoteSignature, ...]) -> str:
    """The body of a ``200``: one note signature line per cosignature."""
    return "".join(encode_signature_line(s) for s in signatures)


def parse_cosignatures(body: bytes) -> tuple[NoteSignature, ...]:
    """The signature lines of a witness's ``200`` answer (at least one, each ending in a newline)."""
    try:
        text = body.decode("utf-8")
        if not text:
            raise MalformedNote("the answer holds no signature line")
        return parse_signature_lines(text)
    except (UnicodeDecodeError, MalformedNote) as exc:
        raise MalformedWitnessRequest(f"the witness's answer is not note signature lines: {exc}") from exc


def origin_hash(origin: str) -> str:
    """The path segment of the monitoring API: SHA-256 of the origin line, lowercase hex."""
    return hashlib.sha256(origin.encode()).hexdigest()


def check_origin_hash(text: str) -> str:
    if not _ORIGIN_HASH.fullmatch(text):
        raise MalformedWitnessRequest(f"{text[:80]!r} is not the lowercase hex SHA-256 of an origin")
    return text
