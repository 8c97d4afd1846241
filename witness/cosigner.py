"""The witness's key as a C2SP tlog-cosignature/v1 cosigner (Ed25519, signature type 0x04).

A cosignature line is ``\u2014 <name> base64(key id || u64 timestamp || Ed25519 signature)``: the key id is the first
four bytes of ``SHA-256(name || "\\n" || 0x04 || public key)``, the signature is over
``cosignature/v1\\ntime <timestamp>\\n`` followed by the whole checkpoint text (``verifier.notes``).

The same Ed25519 key is the witness's ``did:key``, so it may also sign key rotations as one of an operator's
rotation witnesses: the two messages cannot be confused (a cosignature's message starts with
``cosignature/v1\\n``, a rotation witness's with ``{``, RFC 8785 JSON). See docs/witnessing.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from schemas.note import SIG_TYPE_COSIGNATURE_V1, NoteSignature, VerifierKey, check_key_name, key_id
from verifier.did_key import did_key_from_public
from verifier.notes import cosignature_message


@dataclass(frozen=True)
class Cosigner:
    name: str
    private: Ed25519PrivateKey

    def __post_init__(self) -> None:
        check_key_name(self.name)

    @property
    def vkey(self) -> VerifierKey:
        public = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return VerifierKey(self.name, key_id(self.name, SIG_TYPE_COSIGNATURE_V1, public), SIG_TYPE_COSIGNATURE_V1,
                           public)

    @property
    def did(self) -> str:
        return did_key_from_public(self.private.public_key())

    def cosign(self, text: str, timestamp: int) -> NoteSignature:
        """The cosignature of the note ``text`` (a checkpoint body) at ``timestamp`` (POSIX seconds, > 0)."""
        signature = self.private.sign(cosignature_message(text, timestamp))
        vkey = self.vkey
        return NoteSignature(vkey.name, vkey.key_id, timestamp.to_bytes(8, "big") + signature)
