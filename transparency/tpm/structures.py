"""TPM 2.0 structures the enrolment reads, unmarshalled by hand (TPM 2.0 Library, Part 2: Structures).

Only what the six gates need, read strictly (big-endian, every size checked, nothing left over):

- ``TPMT_PUBLIC`` (§12.2.4) of RSA and ECC keys, and the object's Name: ``nameAlg || H_nameAlg(TPMT_PUBLIC)``
  (Part 1 §16);
- ``TPMS_ATTEST`` (§10.12.12) of a ``TPM2_Quote`` (``TPMS_QUOTE_INFO``) or a ``TPM2_Certify``
  (``TPMS_CERTIFY_INFO``), with its magic ``TPM_GENERATED_VALUE``;
- ``TPMT_SIGNATURE`` (§11.3.4) of ECDSA and RSASSA, verified with ``cryptography`` over the attestation's bytes.

Nothing here needs a TPM or tpm2-pytss: the service checks evidence from any TPM with this module alone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from transparency.tpm.errors import TpmSignatureInvalid, TpmStructureInvalid

# TPM_ALG_ID (Part 2 §6.3)
ALG_RSA: Final = 0x0001
ALG_SHA1: Final = 0x0004
ALG_HMAC: Final = 0x0005
ALG_AES: Final = 0x0006
ALG_KEYEDHASH: Final = 0x0008
ALG_SHA256: Final = 0x000B
ALG_SHA384: Final = 0x000C
ALG_SHA512: Final = 0x000D
ALG_NULL: Final = 0x0010
ALG_RSASSA: Final = 0x0014
ALG_RSAPSS: Final = 0x0016
ALG_OAEP: Final = 0x0017
ALG_ECDSA: Final = 0x0018
ALG_ECDH: Final = 0x0019
ALG_ECC: Final = 0x0023
ALG_SYMCIPHER: Final = 0x0025
ALG_CFB: Final = 0x0043
# TPM_ECC_CURVE (§6.4)
ECC_NIST_P256: Final = 0x0003
ECC_NIST_P384: Final = 0x0004
# TPM_GENERATED_VALUE and TPM_ST (§6.2, §6.9)
TPM_GENERATED_VALUE: Final = 0xFF544347
ST_ATTEST_CERTIFY: Final = 0x8017
ST_ATTEST_QUOTE: Final = 0x8018
# TPMA_OBJECT (§8.3)
FIXED_TPM: Final = 1 << 1
ST_CLEAR: Final = 1 << 2
FIXED_PARENT: Final = 1 << 4
SENSITIVE_DATA_ORIGIN: Final = 1 << 5
USER_WITH_AUTH: Final = 1 << 6
ADMIN_WITH_POLICY: Final = 1 << 7
NO_DA: Final = 1 << 10
ENCRYPTED_DUPLICATION: Final = 1 << 11
RESTRICTED: Final = 1 << 16
DECRYPT: Final = 1 << 17
SIGN_ENCRYPT: Final = 1 << 18

ATTRIBUTE_NAMES: Final = {
    FIXED_TPM: "fixedTPM", ST_CLEAR: "stClear", FIXED_PARENT: "fixedParent",
    SENSITIVE_DATA_ORIGIN: "sensitiveDataOrigin", USER_WITH_AUTH: "userWithAuth", ADMIN_WITH_POLICY: "adminWithPolicy",
    NO_DA: "noDA", ENCRYPTED_DUPLICATION: "encryptedDuplication", RESTRICTED: "restricted", DECRYPT: "decrypt",
    SIGN_ENCRYPT: "sign",
}
HASHES: Final[dict[int, type[hashes.HashAlgorithm]]] = {
    ALG_SHA1: hashes.SHA1, ALG_SHA256: hashes.SHA256, ALG_SHA384: hashes.SHA384, ALG_SHA512: hashes.SHA512,
}
HASH_NAMES: Final = {ALG_SHA1: "sha1", ALG_SHA256: "sha256", ALG_SHA384: "sha384", ALG_SHA512: "sha512"}
CURVES: Final[dict[int, ec.EllipticCurve]] = {ECC_NIST_P256: ec.SECP256R1(), ECC_NIST_P384: ec.SECP384R1()}
MAX_STRUCTURE_BYTES: Final = 4096


def hash_of(alg: int) -> hashes.HashAlgorithm:
    try:
        return HASHES[alg]()
    except KeyError:
        raise TpmStructureInvalid(f"hash algorithm 0x{alg:04x} is not one of SHA-1/256/384/512") from None


def digest(alg: int, data: bytes) -> bytes:
    if alg not in HASH_NAMES:
        raise TpmStructureInvalid(f"hash algorithm 0x{alg:04x} is not one of SHA-1/256/384/512")
    return hashlib.new(HASH_NAMES[alg], data).digest()


def attribute_names(attributes: int) -> list[str]:
    return [name for bit, name in ATTRIBUTE_NAMES.items() if attributes & bit]


class Reader:
    """Big-endian reads over a byte string; reading past the end raises ``TpmStructureInvalid``."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.at, self.what = data, 0, what

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise TpmStructureInvalid(f"{self.what} ends after {len(self.data)} bytes, inside a field")
        out = self.data[self.at : self.at + n]
        self.at += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "big")

    def u64(self) -> int:
        return int.from_bytes(self.take(8), "big")

    def sized(self) -> bytes:
        """A TPM2B: a 2-byte size, then that many bytes."""
        return self.take(self.u16())

    def end(self) -> None:
        if self.at != len(self.data):
            raise TpmStructureInvalid(f"{self.what} has {len(self.data) - self.at} bytes after its end")


def sized(data: bytes) -> bytes:
    """Marshal a TPM2B."""
    return len(data).to_bytes(2, "big") + data


# --- TPMT_PUBLIC -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TpmPublic:
    """A TPMT_PUBLIC: the key's type, name algorithm, attributes, scheme and public key; ``raw`` as marshalled."""

    raw: bytes
    type: int
    name_alg: int
    attributes: int
    auth_policy: bytes
    symmetric: tuple[int, int, int]  # (algorithm, key bits, mode); (ALG_NULL, 0, 0) for none
    scheme: int
    scheme_hash: int
    curve: int  # ECC only
    key_bits: int  # RSA only
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey

    @property
    def name(self) -> bytes:
        """The object's Name (Part 1 §16): nameAlg (2 bytes) || H_nameAlg(TPMT_PUBLIC)."""
        return self.name_alg.to_bytes(2, "big") + digest(self.name_alg, self.raw)

    def has(self, attribute: int) -> bool:
        return bool(self.attributes & attribute)


def parse_public(data: bytes, what: str = "TPMT_PUBLIC") -> TpmPublic:
    """Unmarshal a TPMT_PUBLIC of an RSA or ECC key (not a TPM2B: the agent sends the structure itself)."""
    if len(data) > MAX_STRUCTURE_BYTES:
        raise TpmStructureInvalid(f"{what} is {len(data)} bytes; at most {MAX_STRUCTURE_BYTES} are read")
    r = Reader(data, what)
    kind, name_alg, attributes = r.u16(), r.u16(), r.u32()
    hash_of(name_alg)
    auth_policy = r.sized()
    symmetric = _symmetric(r)
    scheme = r.u16()
    scheme_hash = r.u16() if scheme != ALG_NULL else ALG_NULL
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey
    curve = key_bits = 0
    if kind == ALG_ECC:
        curve = r.u16()
        kdf = r.u16()
        if kdf != ALG_NULL:
            r.u16()
        x, y = r.sized(), r.sized()
        if curve not in CURVES:
            raise TpmStructureInvalid(f"{what} names ECC curve 0x{curve:04x}; only NIST P-256 and P-384 are read")
        size = (CURVES[curve].key_size + 7) // 8
        if len(x) != size or len(y) != size:
            raise TpmStructureInvalid(f"{what}'s point coordinates are not {size} bytes each")
        try:
            public_key = ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"),
                                                       CURVES[curve]).public_key()
        except ValueError as exc:
            raise TpmStructureInvalid(f"{what}'s point is not on its curve") from exc
    elif kind == ALG_RSA:
        key_bits, exponent = r.u16(), r.u32()
        modulus = r.sized()
        if len(modulus) * 8 != key_bits or key_bits < 2048:
            raise TpmStructureInvalid(f"{what}'s modulus is {len(modulus) * 8} bits for keyBits {key_bits}")
        try:
            public_key = rsa.RSAPublicNumbers(exponent or 65537, int.from_bytes(modulus, "big")).public_key()
        except ValueError as exc:
            raise TpmStructureInvalid(f"{what}'s RSA key is not valid: {exc}") from exc
    else:
        raise TpmStructureInvalid(f"{what} is of type 0x{kind:04x}; only RSA and ECC keys are read")
    r.end()
    return TpmPublic(data, kind, name_alg, attributes, auth_policy, symmetric, scheme, scheme_hash, curve,
                     key_bits, public_key)


def _symmetric(r: Reader) -> tuple[int, int, int]:
    algorithm = r.u16()
    if algorithm == ALG_NULL:
        return ALG_NULL, 0, 0
    return algorithm, r.u16(), r.u16()


# --- TPMS_ATTEST ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PcrSelection:
    """One TPMS_PCR_SELECTION: a hash bank and the PCRs selected in it."""

    hash_alg: int
    pcrs: tuple[int, ...]

    def text(self) -> str:
        return f"{HASH_NAMES.get(self.hash_alg, hex(self.hash_alg))}:{','.join(str(p) for p in self.pcrs)}"


@dataclass(frozen=True)
class Attest:
    """A TPMS_ATTEST of a quote or a certification; ``raw`` is what the signature covers."""

    raw: bytes
    type: int
    qualified_signer: bytes
    extra_data: bytes
    clock: int
    reset_count: int
    restart_count: int
    safe: bool
    firmware_version: int
    pcr_selection: tuple[PcrSelection, ...] = ()  # a quote
    pcr_digest: bytes = b""  # a quote
    certified_name: bytes = b""  # a certification
    certified_qualified_name: bytes = b""  # a certification


def parse_attest(data: bytes, what: str = "TPMS_ATTEST") -> Attest:
    if len(data) > MAX_STRUCTURE_BYTES:
        raise TpmStructureInvalid(f"{what} is {len(data)} bytes; at most {MAX_STRUCTURE_BYTES} are read")
    r = Reader(data, what)
    magic, kind = r.u32(), r.u16()
    if magic != TPM_GENERATED_VALUE:
        raise TpmStructureInvalid(f"{what}'s magic is 0x{magic:08x}, not TPM_GENERATED_VALUE 0xff544347: the TPM "
                                  "did not make it")
    signer, extra = r.sized(), r.sized()
    clock, resets, restarts, safe = r.u64(), r.u32(), r.u32(), r.u8()
    firmware = r.u64()
    if kind == ST_ATTEST_QUOTE:
        selections = tuple(_pcr_selection(r) for _ in range(_count(r, what)))
        attest = Attest(data, kind, signer, extra, clock, resets, restarts, bool(safe), firmware,
                        pcr_selection=selections, pcr_digest=r.sized())
    elif kind == ST_ATTEST_CERTIFY:
        attest = Attest(data, kind, signer, extra, clock, resets, restarts, bool(safe), firmware,
                        certified_name=r.sized(), certified_qualified_name=r.sized())
    else:
        raise TpmStructureInvalid(f"{what} is of type 0x{kind:04x}; only quotes and certifications are read")
    r.end()
    return attest


def _count(r: Reader, what: str) -> int:
    count = r.u32()
    if count > 16:
        raise TpmStructureInvalid(f"{what} selects {count} PCR banks")
    return count


def _pcr_selection(r: Reader) -> PcrSelection:
    alg, size = r.u16(), r.u8()
    bitmap = r.take(size)
    return PcrSelection(alg, tuple(i * 8 + bit for i, octet in enumerate(bitmap) for bit in range(8)
                                   if octet & (1 << bit)))


# --- TPMT_SIGNATURE ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TpmSignature:
    alg: int
    hash_alg: int
    r: bytes = b""  # ECDSA
    s: bytes = b""  # ECDSA
    signature: bytes = b""  # RSASSA


def parse_signature(data: bytes, what: str = "TPMT_SIGNATURE") -> TpmSignature:
    r = Reader(data, what)
    alg, hash_alg = r.u16(), r.u16()
    if alg == ALG_ECDSA:
        signature = TpmSignature(alg, hash_alg, r=r.sized(), s=r.sized())
    elif alg == ALG_RSASSA:
        signature = TpmSignature(alg, hash_alg, signature=r.sized())
    else:
        raise TpmStructureInvalid(f"{what} uses algorithm 0x{alg:04x}; only ECDSA and RSASSA are read")
    r.end()
    return signature


def verify_signature(key: TpmPublic, message: bytes, signature: TpmSignature, what: str) -> None:
    """``signature`` (a TPMT_SIGNATURE) verifies over ``message`` with ``key``; raise ``TpmSignatureInvalid``."""
    hash_alg = hash_of(signature.hash_alg)
    try:
        if signature.alg == ALG_ECDSA and isinstance(key.public_key, ec.EllipticCurvePublicKey):
            der = encode_dss_signature(int.from_bytes(signature.r, "big"), int.from_bytes(signature.s, "big"))
            key.public_key.verify(der, message, ec.ECDSA(hash_alg))
            return
        if signature.alg == ALG_RSASSA and isinstance(key.public_key, rsa.RSAPublicKey):
            key.public_key.verify(signature.signature, message, padding.PKCS1v15(), hash_alg)
            return
    except InvalidSignature as exc:
        raise TpmSignatureInvalid(f"the signature of the {what} does not verify with the key that should have made "
                                  "it") from exc
    raise TpmSignatureInvalid(f"the {what} is signed with algorithm 0x{signature.alg:04x}, which the key cannot make")
