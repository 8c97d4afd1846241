"""C2SP signed notes: the text/signature format and the Ed25519 key id (https://c2sp.org/signed-note).

Verification lives in the verifier; here only bytes in and out.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from schemas.errors import MalformedKey, MalformedNote

SIG_TYPE_ED25519 = 0x01
SIG_TYPE_COSIGNATURE_V1 = 0x04
_DASH = "\u2014 "
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f]")  # every control character but newline
MAX_SIGNATURES = 100


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: bytes  # 4 bytes
    signature: bytes


@dataclass(frozen=True)
class Note:
    text: str
    signatures: tuple[NoteSignature, ...]

    def encode(self) -> str:
        return f"{self.text}\n{''.join(encode_signature_line(s) for s in self.signatures)}"


def check_key_name(name: str) -> None:
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise MalformedKey(f"key name {name!r} must be non-empty, without spaces or '+'")


def key_id(name: str, sig_type: int, public_key: bytes) -> bytes:
    """First 4 bytes of SHA-256(name || "\\n" || type || public key)."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public_key).digest()[:4]


@dataclass(frozen=True)
class VerifierKey:
    """A parsed vkey ``<name>+<hex key id>+<base64(type || public key)>``."""

    name: str
    key_id: bytes
    sig_type: int
    public_key: bytes

    def encode(self) -> str:
        blob = base64.b64encode(bytes([self.sig_type]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{blob}"


def ed25519_vkey(name: str, public_key: bytes) -> VerifierKey:
    check_key_name(name)
    return VerifierKey(name, key_id(name, SIG_TYPE_ED25519, public_key), SIG_TYPE_ED25519, public_key)


def parse_vkey(text: str) -> VerifierKey:
    parts = text.strip().split("+", 2)  # base64 keys may contain "+"
    if len(parts) != 3:
        raise MalformedKey("a verifier key has the form <name>+<hex key id>+<base64 key>")
    name, hex_id, blob = parts
    check_key_name(name)
    if len(hex_id) != 8:
        raise MalformedKey("a verifier key's id is 8 hex digits")
    try:
        kid = bytes.fromhex(hex_id)
        raw = base64.b64decode(blob, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise MalformedKey(f"verifier key is not hex/base64: {exc}") from exc
    if len(raw) < 2:
        raise MalformedKey("verifier key material is empty")
    key = VerifierKey(name, kid, raw[0], raw[1:])
    if key_id(name, key.sig_type, key.public_key) != kid:
        raise MalformedKey("verifier key id does not match its name and key material")
    return key


def parse_note(message: str | bytes) -> Note:
    """Split a signed note into its text and signature lines, refusing any malformed byte."""
    if isinstance(message, bytes):
        try:
            message = message.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedNote("a note is not valid UTF-8") from exc
    if _CONTROL.search(message):
        raise MalformedNote("a note contains a control character")
    split = message.rfind("\n\n")
    if split < 0:
        raise MalformedNote("a note needs a blank line between its text and its signatures")
    text, sigs = message[: split + 1], message[split + 2 :]
    if not sigs:
        raise MalformedNote("a note has no signatures")
    return Note(text, parse_signature_lines(sigs))


def parse_signature_line(line: str) -> NoteSignature:
    """One signature line ``\u2014 <name> <base64(key id || signature)>``, without its newline."""
    if not line.startswith(_DASH):
        raise MalformedNote(f"signature line {line[:60]!r} does not start with an em dash and a space")
    fields = line[len(_DASH) :].split(" ")
    if len(fields) != 2:
        raise MalformedNote("a signature line is '\u2014 <name> <base64 signature>'")
    name, blob = fields
    try:
        check_key_name(name)
        raw = base64.b64decode(blob, validate=True)
    except (MalformedKey, binascii.Error, ValueError) as exc:
        raise MalformedNote(f"signature line for {name!r} is malformed: {exc}") from exc
    if len(raw) < 5:
        raise MalformedNote(f"signature by {name!r} is too short")
    return NoteSignature(name, raw[:4], raw[4:])


def parse_signature_lines(block: str) -> tuple[NoteSignature, ...]:
    """A block of one or more signature lines, each ending in a newline (a note's signatures, or a witness's
    answer to add-checkpoint)."""
    if not block.endswith("\n"):
        raise MalformedNote("a note's signature block must end with a newline")
    signatures = tuple(parse_signature_line(line) for line in block[:-1].split("\n"))
    if len(signatures) > MAX_SIGNATURES:
        raise MalformedNote(f"a note has more than {MAX_SIGNATURES} signatures")
    return signatures


def encode_signature_line(signature: NoteSignature) -> str:
    """``\u2014 <name> <base64(key id || signature)>\n``."""
    return f"{_DASH}{signature.name} {base64.b64encode(signature.key_id + signature.signature).decode()}\n"
