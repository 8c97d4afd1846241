"""G1: an EK certificate chain walked to a root pinned on the log (RFC 5280 §6, the parts a TPM EK chain needs).

The agent sends its EK certificate (from the TPM's NV index) and the intermediates its vendor publishes; the
roots are those of the accepted ``trust-anchor`` statements of purpose ``tpm-endorsement`` on the log. The walk:

1. each certificate's issuer name equals the next one's subject, and its signature verifies with the next one's
   key (RSA PKCS#1 v1.5, RSA-PSS or ECDSA, as ``cryptography``'s ``verify_directly_issued_by`` checks);
2. every certificate is within its validity period at ``now``;
3. every issuer (intermediates and the root) is a CA: basicConstraints cA true, and keyUsage, when present,
   includes keyCertSign; a pathLenConstraint is honoured;
4. the last certificate is issued by a pinned root (or is one), compared by its DER bytes.

EK certificates are not web certificates: their subject may be empty, their subjectAltName (TPM manufacturer,
model and version as a directoryName) critical, and they carry TCG extensions; none of that is judged here. Not
checked: revocation (EK CRLs are rarely published and never reachable here), name constraints and policies.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from transparency.tpm.errors import EnrolmentRefused, Gate

MAX_CHAIN: int = 5


@dataclass(frozen=True)
class PinnedRoot:
    """A root certificate pinned on the log: the trust-anchor entry that pinned it and its DER bytes."""

    entry: str
    der: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.der).hexdigest()


@dataclass(frozen=True)
class ChainedEk:
    """The outcome of G1: the EK certificate, its public key and the pinned root it chained to."""

    certificate: x509.Certificate
    root: PinnedRoot

    @property
    def spki_sha256(self) -> str:
        spki = self.certificate.public_key().public_bytes(serialization.Encoding.DER,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo)
        return hashlib.sha256(spki).hexdigest()


def load_der(der: bytes, what: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise EnrolmentRefused(Gate.G1, f"the {what} is not a DER X.509 certificate: {exc}") from exc


def walk(ek_der: bytes, intermediates: list[bytes], roots: list[PinnedRoot], now: datetime) -> ChainedEk:
    """Walk the EK certificate up through ``intermediates`` to one of ``roots``; refuse at ``Gate.G1``."""
    if not roots:
        raise EnrolmentRefused(
            Gate.G1, "no TPM endorsement root is pinned on this log (a trust-anchor statement of purpose "
            "tpm-endorsement, signed by the log)")
    if len(intermediates) > MAX_CHAIN:
        raise EnrolmentRefused(
            Gate.G1, f"{len(intermediates)} intermediate certificates; at most {MAX_CHAIN} are walked")
    chain = [load_der(ek_der, "EK certificate")]
    chain += [load_der(der, f"intermediate certificate {i + 1}") for i, der in enumerate(intermediates)]
    pinned = {root.der: root for root in roots}
    for depth, certificate in enumerate(chain):
        _check_time(certificate, now, depth)
        if depth > 0:
            _check_issuer(certificate, depth - 1, depth)
            _signed_by(chain[depth - 1], certificate, depth)
        der = certificate.public_bytes(serialization.Encoding.DER)
        if der in pinned and depth > 0:
            return ChainedEk(chain[0], pinned[der])
    last = chain[-1]
    for der, root in pinned.items():
        candidate = x509.load_der_x509_certificate(der)
        if candidate.subject != last.issuer:
            continue
        _check_time(candidate, now, len(chain))
        _check_issuer(candidate, len(chain) - 1, len(chain))
        _signed_by(last, candidate, len(chain))
        return ChainedEk(chain[0], root)
    raise EnrolmentRefused(
        Gate.G1, f"the chain ends at issuer {last.issuer.rfc4514_string()[:200]!r}, which is not a root "
        "pinned on this log")


def _check_time(certificate: x509.Certificate, now: datetime, depth: int) -> None:
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise EnrolmentRefused(
            Gate.G1,
            f"certificate {depth} of the chain is valid from {certificate.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ} to "
            f"{certificate.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}, not at {now.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"
        )


def _check_issuer(certificate: x509.Certificate, below: int, depth: int) -> None:
    """``certificate`` issues others: a CA, allowed to sign certificates, with room for ``below`` CAs beneath it."""
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        raise EnrolmentRefused(
            Gate.G1, f"certificate {depth} of the chain issues certificates without basicConstraints "
            "cA") from None
    if not constraints.ca:
        raise EnrolmentRefused(Gate.G1, f"certificate {depth} of the chain issues certificates but is not a CA")
    if constraints.path_length is not None and below - 1 > constraints.path_length:
        raise EnrolmentRefused(
            Gate.G1, f"certificate {depth} of the chain allows {constraints.path_length} CAs below it")
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not usage.key_cert_sign:
        raise EnrolmentRefused(Gate.G1, f"certificate {depth} of the chain issues certificates without keyCertSign")


def _signed_by(certificate: x509.Certificate, issuer: x509.Certificate, depth: int) -> None:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise EnrolmentRefused(Gate.G1, f"certificate {depth - 1} of the chain is not issued by certificate {depth}: "
                               f"{exc or type(exc).__name__}") from exc


def pem_certificate(pem: str) -> bytes:
    """The DER bytes of a PEM certificate (a trust anchor's ``anchor``)."""
    try:
        return x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    except ValueError as exc:
        raise EnrolmentRefused(Gate.G1, f"the pinned root is not a PEM X.509 certificate: {exc}") from exc
