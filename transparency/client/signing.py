"""Signing statements as a did:key signer does (docs/architecture.md §2).

A statement is a tagged COSE_Sign1 (tag 18) whose protected header carries ``alg`` (EdDSA -8 for Ed25519,
ES256 -7 for P-256), ``kid`` (the signer's verification method ``did:key:z…#z…`` as UTF-8 bytes), the CWT
claims (15) ``iss`` (the bare did:key), ``sub`` and ``iat``, and either ``content type`` (3) or, for a
hash envelope (RFC 9995), the payload hash algorithm (258) and the preimage content type (259). The
unprotected header is empty. The protected header is encoded deterministically, so one set of headers
always yields the same bytes.

Private keys are ``cryptography`` keys, stored as unencrypted PKCS#8 PEM files readable by their owner only.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Protocol, get_args, runtime_checkable

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from schemas import cbor
from schemas import cose_labels as L
from schemas.cose_sign1 import sig_structure
from schemas.errors import ConfigurationError, InvalidParameter, KeyFileExists, MalformedKey
from verifier.did_key import did_key_from_public, verification_method
from verifier.keys import PublicKey

PrivateKey = Ed25519PrivateKey | ec.EllipticCurvePrivateKey
"""A signing key: Ed25519, or ECDSA on P-256."""


@runtime_checkable
class ExternalSigner(Protocol):
    """A P-256 key held elsewhere (a TPM: ``transparency.client.tpm.TpmSigner``) that signs ES256: ``sign`` returns
    r || s (32 bytes each) over SHA-256 of the message, the form COSE ES256 and RFC 9421 ecdsa-p256-sha256 use."""

    def public_key(self) -> ec.EllipticCurvePublicKey: ...

    def sign(self, message: bytes) -> bytes: ...


Signing = PrivateKey | ExternalSigner

KeyKind = Literal["ed25519", "p256"]
KEY_KINDS: tuple[str, ...] = get_args(KeyKind)
MAX_KEY_FILE_BYTES = 64 * 1024
_P256_SCALAR_SIZE = 32


# --- keys -----------------------------------------------------------------------------------------


def generate_key(kind: KeyKind = "ed25519") -> PrivateKey:
    """A fresh private key of ``kind`` (``"ed25519"`` or ``"p256"``)."""
    if kind == "ed25519":
        return Ed25519PrivateKey.generate()
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    raise InvalidParameter(f"key type {kind!r} is not one of {', '.join(KEY_KINDS)}")


def save_private_key(key: PrivateKey, path: str | Path, *, overwrite: bool = False) -> None:
    """Write ``key`` as unencrypted PKCS#8 PEM, mode 0600, atomically and durably (file and folder fsynced).

    Without ``overwrite`` the file is created exclusively (a hard link of the finished temporary file), so
    of two concurrent writers exactly one wins and the other gets ``KeyFileExists``.
    """
    _check_key(key)
    target = Path(path)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, target)
        else:
            os.link(tmp, target)
        folder = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except FileExistsError as exc:
        raise KeyFileExists(f"{target} already exists; refusing to overwrite a key file") from exc
    except OSError as exc:
        raise ConfigurationError(f"cannot write key file {target}: {exc.strerror or exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def load_private_key(path: str | Path) -> PrivateKey:
    """Read an unencrypted PEM private key (Ed25519 or P-256).

    A file that cannot be read raises ``ConfigurationError``; one that is not such a key, ``MalformedKey``.
    """
    source = Path(path)
    try:
        with source.open("rb") as fh:
            data = fh.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigurationError(f"cannot read key file {source}: {exc.strerror or exc}") from exc
    if len(data) > MAX_KEY_FILE_BYTES:
        raise MalformedKey(f"{source} is larger than {MAX_KEY_FILE_BYTES} bytes; it is not a PEM private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError as exc:  # encrypted, and no password given
        raise MalformedKey(f"{source} holds an encrypted private key; only unencrypted PEM is read") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise MalformedKey(f"{source} is not a PEM private key") from exc
    if isinstance(key, Ed25519PrivateKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise MalformedKey(f"{source} holds a {_key_name(key)}; only Ed25519 and P-256 keys sign statements")


def load_ed25519_key(path: str | Path, what: str, *, owner_only: bool = True) -> Ed25519PrivateKey:
    """The service key ``what`` (e.g. "registry key") at ``path``: an unencrypted PEM Ed25519 private key in a
    regular file that only its owner can read (``owner_only``). Anything else is a ``ConfigurationError`` that
    names the key and the file, which stops the start in one line."""
    if owner_only:
        try:
            mode = os.stat(path).st_mode
        except OSError as exc:
            raise ConfigurationError(f"cannot read the {what} {path}: {exc.strerror or exc}") from exc
        if not stat.S_ISREG(mode) or mode & 0o077:
            raise ConfigurationError(
                f"the {what} {path} must be a regular file readable by its owner only "
                f"(mode {stat.S_IMODE(mode):04o}, not 0600); chmod 600 it"
            )
    try:
        key = load_private_key(path)
    except MalformedKey as exc:
        raise ConfigurationError(f"the {what} {path}: {exc.detail}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigurationError(f"the {what} {path} is not an Ed25519 key")
    return key


def public_key(key: Signing) -> PublicKey:
    if isinstance(key, ExternalSigner) and not isinstance(key, Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        return key.public_key()
    _check_key(key)
    return key.public_key()


def did_of(key: Signing) -> str:
    """The signer's ``did:key``."""
    return did_key_from_public(public_key(key))


def kid_of(key: PrivateKey) -> bytes:
    """The kid a did:key signer puts in its statements: ``did:key:z…#z…`` as UTF-8 bytes."""
    return verification_method(did_of(key)).encode()


def algorithm_of(key: Signing) -> int:
    """EdDSA (-8) for an Ed25519 key, ES256 (-7) for a P-256 key (held here or in a TPM)."""
    if isinstance(key, Ed25519PrivateKey):
        return L.ALG_EDDSA
    public_key(key)
    return L.ALG_ES256


# --- statements -----------------------------------------------------------------------------------


def sign_statement(
    key: Signing,
    payload: bytes,
    *,
    subject: str,
    content_type: str | int,
    issuer: str | None = None,
    kid: bytes | None = None,
    extra_claims: Mapping[int, Any] | None = None,
) -> bytes:
    """A signed statement (tagged COSE_Sign1) carrying ``payload`` of ``content_type`` about ``subject``.

    ``issuer`` defaults to the key's did:key and ``kid`` to its verification method. ``extra_claims``
    adds CWT claims (e.g. ``exp`` 4, ``nbf`` 5, or an explicit ``iat`` 6); ``iss`` and ``sub`` are set only
    through ``issuer`` and ``subject``.
    """
    if not (isinstance(content_type, str) and content_type) and not (
        isinstance(content_type, int) and not isinstance(content_type, bool) and content_type >= 0
    ):
        raise InvalidParameter("content_type must be a non-empty media type or a CoAP content format")
    protected = _base_header(key, subject, issuer, kid, extra_claims)
    protected[L.CONTENT_TYPE] = content_type
    return _sign1(key, protected, _bytes(payload, "payload"))


def sign_hash_envelope(
    key: Signing,
    content: bytes,
    *,
    subject: str,
    preimage_content_type: str | int,
    issuer: str | None = None,
    kid: bytes | None = None,
    extra_claims: Mapping[int, Any] | None = None,
    payload_location: str | None = None,
) -> bytes:
    """A signed statement in the RFC 9995 hash envelope: the payload is SHA-256(``content``).

    The protected header carries payload hash alg (258) = SHA-256 (-16), preimage content type (259) and,
    when given, payload location (260); it carries no content type (3).
    """
    if not (isinstance(preimage_content_type, str) and preimage_content_type) and not (
        isinstance(preimage_content_type, int) and not isinstance(preimage_content_type, bool)
    ):
        raise InvalidParameter("preimage_content_type must be a non-empty media type or an integer")
    protected = _base_header(key, subject, issuer, kid, extra_claims)
    protected[L.PAYLOAD_HASH_ALG] = L.HASH_SHA256
    protected[L.PREIMAGE_CONTENT_TYPE] = preimage_content_type
    if payload_location is not None:
        if not isinstance(payload_location, str) or not payload_location:
            raise InvalidParameter("payload_location must be a non-empty text string")
        protected[L.PAYLOAD_LOCATION] = payload_location
    return _sign1(key, protected, hashlib.sha256(_bytes(content, "content")).digest())


def _base_header(
    key: Signing,
    subject: str,
    issuer: str | None,
    kid: bytes | None,
    extra_claims: Mapping[int, Any] | None,
) -> dict[int, Any]:
    if not isinstance(subject, str) or not subject:
        raise InvalidParameter("subject must be a non-empty text string")
    if issuer is not None and (not isinstance(issuer, str) or not issuer):
        raise InvalidParameter("issuer must be a non-empty text string")
    if kid is not None and (not isinstance(kid, bytes) or not kid):
        raise InvalidParameter("kid must be a non-empty byte string")
    did = did_of(key)
    claims: dict[int, Any] = {L.CWT_ISS: did if issuer is None else issuer, L.CWT_SUB: subject,
                              L.CWT_IAT: int(time.time())}
    for label, value in (extra_claims or {}).items():
        if label in (L.CWT_ISS, L.CWT_SUB):
            raise InvalidParameter(f"CWT claim {label} is set through issuer/subject, not extra_claims")
        if not isinstance(label, int | str) or isinstance(label, bool):
            raise InvalidParameter(f"CWT claim label {label!r} is neither an integer nor a text string")
        claims[label] = value
    return {
        L.ALG: algorithm_of(key),
        L.KID: verification_method(did).encode() if kid is None else kid,
        L.CWT_CLAIMS: claims,
    }


def _sign1(key: Signing, protected: Mapping[int, Any], payload: bytes) -> bytes:
    """COSE_Sign1 (RFC 9052 §4.2-4.4): the signature over the Sig_structure ``["Signature1", protected, h'',
    payload]`` of the deterministic encoding of ``protected``; empty unprotected header, tag 18. EdDSA signs those
    bytes (RFC 8032 Ed25519); ES256 signs their SHA-256, and COSE carries ``r || s``, each 32 bytes big-endian
    (RFC 9053 §2.1), not the DER that ``cryptography`` returns. An external signer (a TPM) signs the Sig_structure
    itself and returns ``r || s``."""
    protected_bytes = cbor.encode(dict(protected))
    to_be_signed = sig_structure(protected_bytes, payload)
    if isinstance(key, Ed25519PrivateKey):
        signature = key.sign(to_be_signed)
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(to_be_signed, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(_P256_SCALAR_SIZE, "big") + s.to_bytes(_P256_SCALAR_SIZE, "big")
    else:
        signature = key.sign(to_be_signed)
        if len(signature) != 2 * _P256_SCALAR_SIZE:
            raise MalformedKey("an external ES256 signer must return r || s, 64 bytes")
    return cbor.encode(cbor.tag(L.COSE_SIGN1_TAG, [protected_bytes, {}, payload, signature]))


def _bytes(data: object, what: str) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidParameter(f"the {what} must be bytes, not {type(data).__name__}")
    return bytes(data)


def _check_key(key: object) -> None:
    if isinstance(key, Ed25519PrivateKey):
        return
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return
    raise MalformedKey(f"a {_key_name(key)} cannot sign statements; use an Ed25519 or P-256 private key")


def _key_name(key: object) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return f"EC private key on {key.curve.name}"
    return type(key).__name__
