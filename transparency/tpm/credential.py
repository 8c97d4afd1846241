"""TPM2_MakeCredential in Python (TPM 2.0 Library Part 1 §24 "Credential Protection"; Part 3 §12.6), no TPM needed.

The service proves that an attestation key (AK) lives in the same TPM as an endorsement key (EK) it trusts:
it protects a random credential so that only a TPM holding the EK's private key *and* a loaded object named
``name`` can recover it with TPM2_ActivateCredential.

- ``seed``: random, as many bytes as the EK's name algorithm's digest; for an RSA EK it is sent as
  RSA-OAEP(EK, seed) with the EK's name algorithm and the label ``"IDENTITY\\0"`` (Part 1 §B.10.3); for an ECC EK
  an ephemeral ECDH key is made on the EK's curve and the seed is ``KDFe(nameAlg, Z, "IDENTITY", ephemeral.x,
  EK.x)`` (§C.6.4, §11.4.10.3), the encrypted secret being the ephemeral point (TPMS_ECC_POINT).
- ``symKey = KDFa(nameAlg, seed, "STORAGE", name, "", symmetric key bits)``;
  ``encIdentity = AES-CFB(symKey, IV = 0, TPM2B_DIGEST(credential))``;
- ``HMACkey = KDFa(nameAlg, seed, "INTEGRITY", "", "", digest bits)``;
  ``outerHMAC = HMAC_nameAlg(HMACkey, encIdentity || name)``;
- ``TPM2B_ID_OBJECT`` contents = ``TPM2B_DIGEST(outerHMAC) || encIdentity``.

``KDFa`` (Part 1 §11.4.10.2): ``K(i) = HMAC_hash(key, [i]32 || label || 0x00 || contextU || contextV || [bits]32)``
for i = 1, 2, …, concatenated and cut to ``bits``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.decrepit.ciphers.modes import CFB  # AES-CFB: what TPM 2.0 protects credentials with
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from transparency.tpm.errors import TpmStructureInvalid
from transparency.tpm.structures import ALG_AES, ALG_CFB, ALG_NULL, ALG_SHA256, HASH_NAMES, TpmPublic, hash_of, sized

IDENTITY: Final = b"IDENTITY\x00"
STORAGE: Final = b"STORAGE"
INTEGRITY: Final = b"INTEGRITY"


def _label(label: bytes) -> bytes:
    """A KDF label is a null-terminated string: the 0x00 is added unless it ends the label already."""
    return label if label.endswith(b"\x00") else label + b"\x00"


def kdfa(hash_alg: int, key: bytes, label: bytes, context_u: bytes, context_v: bytes, bits: int) -> bytes:
    """KDFa (SP 800-108 counter mode with HMAC), as TPM 2.0 Part 1 §11.4.10.2 defines it."""
    name = HASH_NAMES[hash_alg]
    out, counter = b"", 1
    while len(out) * 8 < bits:
        block = counter.to_bytes(4, "big") + _label(label) + context_u + context_v + bits.to_bytes(4, "big")
        out += hmac.new(key, block, name).digest()
        counter += 1
    out = out[: (bits + 7) // 8]
    if bits % 8:
        out = bytes((out[0] & ((1 << (bits % 8)) - 1),)) + out[1:]
    return out


def kdfe(hash_alg: int, z: bytes, label: bytes, party_u: bytes, party_v: bytes, bits: int) -> bytes:
    """KDFe (SP 800-56A concatenation KDF), as TPM 2.0 Part 1 §11.4.10.3 defines it."""
    name = HASH_NAMES[hash_alg]
    out, counter = b"", 1
    while len(out) * 8 < bits:
        out += hashlib.new(name, counter.to_bytes(4, "big") + z + _label(label) + party_u + party_v).digest()
        counter += 1
    return out[: (bits + 7) // 8]


@dataclass(frozen=True)
class MadeCredential:
    """What the agent's TPM2_ActivateCredential takes: the TPM2_ID_OBJECT and the encrypted seed (both TPM2B
    contents, without their size), and the seed (kept by nobody: for known-answer tests)."""

    credential_blob: bytes
    secret: bytes
    seed: bytes


@dataclass(frozen=True)
class EndorsementKey:
    """The EK as MakeCredential needs it: its public key, name algorithm and symmetric cipher (key bits, AES-CFB).

    An EK certificate carries only the public key; the rest comes from the TCG EK template it was made with
    (``from_certificate_key``: the default templates L-1, RSA 2048, and L-2, ECC P-256: SHA-256, AES-128-CFB)."""

    public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey
    name_alg: int
    sym_bits: int

    @classmethod
    def from_public(cls, public: TpmPublic) -> EndorsementKey:
        algorithm, bits, mode = public.symmetric
        if algorithm != ALG_AES or mode != ALG_CFB:
            raise TpmStructureInvalid("the EK's symmetric cipher is not AES-CFB")
        return cls(public.public_key, public.name_alg, bits)

    @classmethod
    def from_certificate_key(cls, key: object) -> EndorsementKey:
        if isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048:
            return cls(key, ALG_SHA256, 128)
        if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
            return cls(key, ALG_SHA256, 128)
        raise TpmStructureInvalid("the EK certificate's key is neither RSA 2048 nor ECC P-256 (the TCG default EK "
                                  "templates L-1 and L-2)")


def make_credential(ek: EndorsementKey, name: bytes, credential: bytes, *, seed: bytes | None = None,
                    ephemeral: ec.EllipticCurvePrivateKey | None = None) -> MadeCredential:
    """Protect ``credential`` for the TPM that holds ``ek`` and an object named ``name`` (module docstring).

    ``seed`` (RSA) and ``ephemeral`` (ECC) are for known-answer tests only; by default both are fresh."""
    hash_alg = ek.name_alg
    size = hash_of(hash_alg).digest_size
    if len(credential) > size:
        raise TpmStructureInvalid(f"a credential is at most {size} bytes (the EK name algorithm's digest)")
    if isinstance(ek.public_key, rsa.RSAPublicKey):
        seed = os.urandom(size) if seed is None else seed
        oaep = padding.OAEP(padding.MGF1(hash_of(hash_alg)), hash_of(hash_alg), IDENTITY)
        secret = ek.public_key.encrypt(seed, oaep)
    else:
        curve = ek.public_key.curve
        ephemeral = ephemeral or ec.generate_private_key(curve)
        z = ephemeral.exchange(ec.ECDH(), ek.public_key)
        width = (curve.key_size + 7) // 8
        mine, theirs = ephemeral.public_key().public_numbers(), ek.public_key.public_numbers()
        seed = kdfe(hash_alg, z, IDENTITY, mine.x.to_bytes(width, "big"), theirs.x.to_bytes(width, "big"), size * 8)
        secret = sized(mine.x.to_bytes(width, "big")) + sized(mine.y.to_bytes(width, "big"))
    return MadeCredential(protect(ek, seed, name, credential), secret, seed)


def protect(ek: EndorsementKey, seed: bytes, name: bytes, credential: bytes) -> bytes:
    """The TPM2B_ID_OBJECT contents for ``credential`` under ``seed`` and the object ``name``."""
    hash_alg = ek.name_alg
    if ek.sym_bits not in (128, 192, 256) or hash_alg == ALG_NULL:
        raise TpmStructureInvalid("the EK's AES key size is not 128, 192 or 256 bits")
    sym_key = kdfa(hash_alg, seed, STORAGE, name, b"", ek.sym_bits)
    encryptor = Cipher(algorithms.AES(sym_key), CFB(bytes(16))).encryptor()
    enc_identity = encryptor.update(sized(credential)) + encryptor.finalize()
    hmac_key = kdfa(hash_alg, seed, INTEGRITY, b"", b"", hash_of(hash_alg).digest_size * 8)
    outer = hmac.new(hmac_key, enc_identity + name, HASH_NAMES[hash_alg]).digest()
    return sized(outer) + enc_identity
