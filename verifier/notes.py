"""C2SP signed-note verification (https://c2sp.org/signed-note) with Ed25519 signatures (type 0x01)
and tlog-cosignature/v1 witness cosignatures (type 0x04, https://c2sp.org/tlog-cosignature).

The rules of signed-note §Signatures, as applied here:

- a signature line counts only when both its key name and its key id match a key the caller trusts;
  every other line is ignored, even one that shares the name or the id (but not both) of a known key;
- every signature by a known key must verify, or the whole note is refused;
- at least one signature by a known key must verify, or the note is refused.

Parsing (UTF-8, no control characters, the signature-line grammar) is ``schemas.note.parse_note``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from schemas.errors import InvalidParameter, MalformedKey, NoteSignatureInvalid, UnsupportedAlgorithm
from schemas.note import (
    SIG_TYPE_COSIGNATURE_V1,
    SIG_TYPE_ED25519,
    Note,
    NoteSignature,
    VerifierKey,
    parse_note,
)

ED25519_PUBLIC_KEY_SIZE = 32
ED25519_SIGNATURE_SIZE = 64
TIMESTAMP_SIZE = 8
COSIGNATURE_SIZE = TIMESTAMP_SIZE + ED25519_SIGNATURE_SIZE
MAX_COSIGNATURE_TIMESTAMP = (1 << 63) - 1
COSIGNATURE_V1_HEADER = "cosignature/v1\n"
SUPPORTED_SIG_TYPES = (SIG_TYPE_ED25519, SIG_TYPE_COSIGNATURE_V1)


def cosignature_message(text: str, timestamp: int) -> bytes:
    """The bytes a tlog-cosignature/v1 signs: ``cosignature/v1\\ntime <timestamp>\\n`` + note text."""
    if not 0 <= timestamp <= MAX_COSIGNATURE_TIMESTAMP:
        raise InvalidParameter(f"cosignature timestamp {timestamp} is outside 0..2^63-1")
    return f"{COSIGNATURE_V1_HEADER}time {timestamp}\n{text}".encode()


def _public_key(key: VerifierKey) -> Ed25519PublicKey:
    if len(key.public_key) != ED25519_PUBLIC_KEY_SIZE:
        raise MalformedKey(f"the Ed25519 key {key.name!r} is {len(key.public_key)} bytes, not 32")
    try:
        return Ed25519PublicKey.from_public_bytes(key.public_key)
    except ValueError as exc:
        raise MalformedKey(f"the key {key.name!r} is not an Ed25519 public key: {exc}") from exc


def _verify_ed25519(key: VerifierKey, signature: bytes, message: bytes, what: str) -> None:
    if len(signature) != ED25519_SIGNATURE_SIZE:
        raise NoteSignatureInvalid(f"{what} by {key.name!r} is {len(signature)} bytes, not 64")
    try:
        _public_key(key).verify(signature, message)
    except InvalidSignature as exc:
        raise NoteSignatureInvalid(f"{what} by {key.name}+{key.key_id.hex()} does not verify") from exc


def _verify_cosignature_line(key: VerifierKey, sig: NoteSignature, text: str) -> int:
    if len(sig.signature) != COSIGNATURE_SIZE:
        raise NoteSignatureInvalid(
            f"the cosignature by {key.name!r} is {len(sig.signature)} bytes, not {COSIGNATURE_SIZE}"
        )
    timestamp = int.from_bytes(sig.signature[:TIMESTAMP_SIZE], "big")
    if timestamp > MAX_COSIGNATURE_TIMESTAMP:
        raise NoteSignatureInvalid(f"the cosignature by {key.name!r} has a timestamp above 2^63-1")
    message = cosignature_message(text, timestamp)
    _verify_ed25519(key, sig.signature[TIMESTAMP_SIZE:], message, "the cosignature")
    return timestamp


def _verify_line(key: VerifierKey, sig: NoteSignature, text: str) -> None:
    if key.sig_type == SIG_TYPE_ED25519:
        _verify_ed25519(key, sig.signature, text.encode(), "the note signature")
    else:  # SIG_TYPE_COSIGNATURE_V1; _index refused every other type
        _verify_cosignature_line(key, sig, text)


def _index(keys: Iterable[VerifierKey]) -> dict[tuple[str, bytes], VerifierKey]:
    known: dict[tuple[str, bytes], VerifierKey] = {}
    for key in keys:
        if key.sig_type not in SUPPORTED_SIG_TYPES:
            raise UnsupportedAlgorithm(
                f"the key {key.name!r} has signature type 0x{key.sig_type:02x}; only Ed25519 (0x01) and "
                "cosignature/v1 (0x04) are supported"
            )
        if len(key.key_id) != 4:
            raise MalformedKey(f"the key id of {key.name!r} is {len(key.key_id)} bytes, not 4")
        ident = (key.name, key.key_id)
        if ident in known and known[ident] != key:
            raise MalformedKey(f"two different keys are named {key.name!r} with key id {key.key_id.hex()}")
        known[ident] = key
    return known


def verify_note(message: str | bytes, keys: Sequence[VerifierKey]) -> Note:
    """Parse a signed note and return it once every signature by a known key verifies (at least one).

    ``keys`` are the trusted verifier keys: Ed25519 (type 0x01) keys sign the note text; cosigner
    keys (type 0x04) sign it as a tlog-cosignature/v1. Raises ``MalformedNote`` for bad syntax and
    ``NoteSignatureInvalid`` when a known key's signature fails or no known key signed the note.
    """
    known = _index(keys)
    note = parse_note(message)
    verified = 0
    for sig in note.signatures:
        key = known.get((sig.name, sig.key_id))
        if key is None:
            continue  # signed-note: signatures from unknown keys are ignored
        _verify_line(key, sig, note.text)
        verified += 1
    if not verified:
        names = ", ".join(sorted({f"{k.name}+{k.key_id.hex()}" for k in known.values()})) or "none"
        raise NoteSignatureInvalid(f"the note carries no signature by a known key (known: {names})")
    return note


def verify_cosignature(note: Note, vkey: VerifierKey) -> int:
    """Verify the tlog-cosignature/v1 of ``vkey`` on ``note`` and return its timestamp (POSIX seconds).

    ``note`` is normally a checkpoint already verified with the log's key (``verify_note`` or
    ``verifier.checkpoints.verify_checkpoint``): a cosignature says nothing about who wrote the text.
    Every line by this cosigner must verify; when there are several, the latest timestamp is returned.
    Raises ``NoteSignatureInvalid`` when the note has no cosignature by ``vkey`` or one fails.
    """
    if vkey.sig_type != SIG_TYPE_COSIGNATURE_V1:
        raise MalformedKey(
            f"the key {vkey.name!r} has signature type 0x{vkey.sig_type:02x}, not cosignature/v1 (0x04)"
        )
    timestamps = [
        _verify_cosignature_line(vkey, sig, note.text)
        for sig in note.signatures
        if sig.name == vkey.name and sig.key_id == vkey.key_id
    ]
    if not timestamps:
        raise NoteSignatureInvalid(
            f"the note carries no cosignature by {vkey.name!r} (key id {vkey.key_id.hex()})"
        )
    return max(timestamps)
