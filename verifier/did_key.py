"""did:key (W3C CCG did:key method v0.7) for Ed25519 and P-256, resolved offline.

``did:key:<mb>`` where ``<mb>`` is multibase base58btc (prefix ``z``) of the multicodec varint of the key
type followed by the key bytes: ``ed25519-pub`` (0xed, 32 raw bytes) or ``p256-pub`` (0x1200, the 33-byte
compressed SEC1 point). The verification method of a did:key is ``did:key:<mb>#<mb>``.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from schemas.errors import MalformedKey, SignerUnresolvable
from verifier.keys import PublicKey, p256_from_point

DID_KEY_PREFIX = "did:key:"
MULTIBASE_BASE58BTC = "z"
CODEC_ED25519_PUB = 0xED
CODEC_P256_PUB = 0x1200
_KEY_SIZES = {CODEC_ED25519_PUB: 32, CODEC_P256_PUB: 33}
_CODEC_NAMES = {CODEC_ED25519_PUB: "ed25519-pub", CODEC_P256_PUB: "p256-pub"}
_KNOWN_UNSUPPORTED = {0xE7: "secp256k1-pub", 0xEC: "x25519-pub", 0x1201: "p384-pub", 0x1202: "p521-pub",
                      0x1205: "rsa-pub", 0xEB: "bls12_381-g2-pub"}

BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_INDEX = {c: i for i, c in enumerate(BASE58_ALPHABET)}
_BASE58_DIGITS = bytes(_BASE58_INDEX.get(chr(b), 0xFF) for b in range(256))
"""A ``bytes.translate`` table: each base58btc character's ASCII byte to its digit, every other byte to 0xFF."""
MAX_DID_LENGTH = 256


def b58encode(data: bytes) -> str:
    """Bitcoin base58: each leading zero byte becomes '1', the rest is the big-endian number in base 58."""
    zeros = len(data) - len(data.lstrip(b"\x00"))
    n = int.from_bytes(data, "big")
    digits = []
    while n:
        n, r = divmod(n, 58)
        digits.append(BASE58_ALPHABET[r])
    return "1" * zeros + "".join(reversed(digits))


def b58decode(text: str) -> bytes:
    """The bytes base58btc ``text`` encodes; ``MalformedKey`` naming the first character not in the alphabet.

    The digits are looked up all at once (``bytes.translate``) and only the arithmetic is a Python loop."""
    digits = text.encode("ascii").translate(_BASE58_DIGITS) if text.isascii() else b"\xff"
    if b"\xff" in digits:
        for c in text:
            if c not in _BASE58_INDEX:
                raise MalformedKey(f"{c!r} is not a base58btc character")
    n = 0
    for i in digits:
        n = n * 58 + i
    zeros = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\x00" * zeros + body


def varint(n: int) -> bytes:
    """Unsigned LEB128 varint (multiformats unsigned-varint)."""
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_varint(data: bytes) -> tuple[int, int]:
    """(value, length) of the unsigned varint at the start of ``data``; non-minimal encodings are refused."""
    value = 0
    for i, byte in enumerate(data[:9]):
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if byte == 0 and i > 0:
                raise MalformedKey("the multicodec varint is not minimally encoded")
            return value, i + 1
    raise MalformedKey("the multicodec varint is truncated or longer than 9 bytes")


def multibase_of(pk: PublicKey) -> str:
    """The ``z…`` multibase value naming a public key."""
    if isinstance(pk, Ed25519PublicKey):
        codec, raw = CODEC_ED25519_PUB, pk.public_bytes(Encoding.Raw, PublicFormat.Raw)
    elif isinstance(pk, ec.EllipticCurvePublicKey) and isinstance(pk.curve, ec.SECP256R1):
        codec, raw = CODEC_P256_PUB, pk.public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
    else:
        raise MalformedKey(f"{type(pk).__name__} has no did:key form here; use Ed25519 or P-256")
    return MULTIBASE_BASE58BTC + b58encode(varint(codec) + raw)


def did_key_from_public(pk: PublicKey) -> str:
    return DID_KEY_PREFIX + multibase_of(pk)


def verification_method(did: str) -> str:
    """``did:key:<mb>#<mb>``, the verification method id a did:key signer puts in its kid."""
    mb = _multibase_of_did(did)
    _key_from_multibase(mb)
    return f"{did}#{mb}"


def resolve_did_key(did_or_vm: str) -> PublicKey:
    """The public key of a bare did:key or of its verification method ``did:key:<mb>#<mb>``.

    The keys of the last 8,192 DIDs (or verification methods) resolved are remembered: a log names the same
    operators and agents again and again. A refusal is never remembered; it is raised again for each call."""
    if type(did_or_vm) is not str:
        if not isinstance(did_or_vm, str):
            raise SignerUnresolvable("a did:key must be a text string")
        did_or_vm = str(did_or_vm)
    return _resolve(did_or_vm)


@lru_cache(maxsize=8192)
def _resolve(did_or_vm: str) -> PublicKey:
    did, sep, fragment = did_or_vm.partition("#")
    mb = _multibase_of_did(did)
    if sep and fragment != mb:
        raise SignerUnresolvable(
            f"verification method fragment #{fragment[:80]} is not the did:key's own key {mb[:80]}; "
            "a did:key has exactly one verification method, #<multibase value>"
        )
    return _key_from_multibase(mb)


def _multibase_of_did(did: str) -> str:
    if len(did) > MAX_DID_LENGTH:
        raise SignerUnresolvable(f"DID of {len(did)} characters is too long to be a did:key")
    if not did.startswith(DID_KEY_PREFIX):
        raise SignerUnresolvable(f"{did[:80]!r} is not a did:key; only did:key signers resolve offline")
    mb = did[len(DID_KEY_PREFIX) :]
    if not mb or any(c in mb for c in ":/?#"):
        raise MalformedKey(f"{did[:80]!r} is not did:key:<multibase value>")
    if not mb.startswith(MULTIBASE_BASE58BTC):
        raise MalformedKey(f"did:key multibase prefix {mb[0]!r} is not 'z' (base58btc)")
    return mb


@lru_cache(maxsize=4096)
def _key_from_multibase(mb: str) -> PublicKey:
    raw = b58decode(mb[1:])
    codec, n = read_varint(raw)
    key = raw[n:]
    if codec not in _KEY_SIZES:
        name = _KNOWN_UNSUPPORTED.get(codec, "unknown")
        raise MalformedKey(
            f"did:key multicodec 0x{codec:x} ({name}) is not supported; "
            "use ed25519-pub (0xed) or p256-pub (0x1200)"
        )
    if len(key) != _KEY_SIZES[codec]:
        raise MalformedKey(
            f"did:key {_CODEC_NAMES[codec]} key is {len(key)} bytes; expected {_KEY_SIZES[codec]}"
        )
    if codec == CODEC_ED25519_PUB:
        return Ed25519PublicKey.from_public_bytes(key)
    if key[0] not in (2, 3):
        raise MalformedKey("did:key p256-pub key is not a compressed SEC1 point (0x02/0x03 prefix)")
    return p256_from_point(key)
