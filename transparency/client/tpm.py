"""The agent's TPM 2.0, through tpm2-pytss over a TCTI (``swtpm:host=127.0.0.1,port=2321``, ``device:/dev/tpmrm0``).

What ``tabellion enrol`` and a TPM-rooted agent need of their TPM, and nothing more:

- the EK certificate (NV index 0x01c00002, RSA 2048 EK, TCG EK Credential Profile §2.2.1.4) and the EK itself
  (persistent handle 0x81010001, as the platform's manufacturing, here ``swtpm_setup``, left it);
- a storage root key (SRK: an ECC P-256 restricted decryption primary in the owner hierarchy, made again from its
  template whenever needed: same seed, same key) and, under it, two keys created *inside* the TPM
  (``sensitiveDataOrigin``), neither of which can leave it (``fixedTPM``, ``fixedParent``):
  the attestation key (AK: a restricted ECDSA P-256 signing key) and the agent's signing key (an unrestricted
  ECDSA P-256 signing key: it signs the agent's statements (ES256) and its gateway requests (RFC 9421
  ``ecdsa-p256-sha256``)). Their TPM2B_PRIVATE is encrypted by the SRK, so the files the agent keeps them in are
  useless outside this TPM;
- TPM2_Quote and TPM2_Certify by the AK over the service's nonce, TPM2_ActivateCredential of the service's
  credential (with the EK's PolicySecret(TPM_RH_ENDORSEMENT) session), TPM2_Sign.

Structures are passed around as their marshalled bytes (``TPMT_PUBLIC``, ``TPMS_ATTEST``, ``TPMT_SIGNATURE``), which
the service reads with ``transparency.tpm.structures`` and no TPM.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from typing import Any, Final

from schemas.errors import ConfigurationError, TabellionError

EK_HANDLE: Final = 0x81010001
EK_CERT_INDEX: Final = 0x01C00002
TPM_RH_OWNER: Final = 0x40000001

# TPMA_OBJECT bits (TPM 2.0 Part 2 §8.3)
FIXED_TPM, FIXED_PARENT, SENSITIVE_DATA_ORIGIN, USER_WITH_AUTH = 1 << 1, 1 << 4, 1 << 5, 1 << 6
NO_DA, RESTRICTED, DECRYPT, SIGN = 1 << 10, 1 << 16, 1 << 17, 1 << 18
AK_ATTRIBUTES: Final = FIXED_TPM | FIXED_PARENT | SENSITIVE_DATA_ORIGIN | USER_WITH_AUTH | RESTRICTED | SIGN
AGENT_KEY_ATTRIBUTES: Final = FIXED_TPM | FIXED_PARENT | SENSITIVE_DATA_ORIGIN | USER_WITH_AUTH | SIGN
SRK_ATTRIBUTES: Final = (FIXED_TPM | FIXED_PARENT | SENSITIVE_DATA_ORIGIN | USER_WITH_AUTH | NO_DA | RESTRICTED
                         | DECRYPT)
DEFAULT_PCRS: Final = (0, 1, 2, 3, 4, 5, 6, 7)


class TpmUnavailable(TabellionError):
    """The TPM cannot be reached over the TCTI, or refused a command."""

    code = "tpm-unavailable"
    title = "TPM unavailable"


def ecc_template(attributes: int, *, storage: bool = False) -> bytes:
    """A TPMT_PUBLIC template of an ECC P-256 key, SHA-256 name: a storage key (AES-128-CFB, no scheme) or an
    ECDSA-SHA256 signing key (no symmetric cipher)."""
    head = (0x0023).to_bytes(2, "big") + (0x000B).to_bytes(2, "big") + attributes.to_bytes(4, "big") + b"\x00\x00"
    # storage: AES 128 CFB, scheme NULL; signing: symmetric NULL, scheme ECDSA SHA-256
    params = bytes.fromhex("0006" "0080" "0043" "0010") if storage else bytes.fromhex("0010" "0018" "000b")
    return head + params + bytes.fromhex("0003" "0010") + b"\x00\x00\x00\x00"  # P-256, KDF NULL, empty point


@dataclass(frozen=True)
class KeyBlob:
    """A key created in the TPM: its TPMT_PUBLIC and its TPM2B_PRIVATE (wrapped by the SRK), as marshalled."""

    public: bytes
    private: bytes


@dataclass(frozen=True)
class Attestation:
    """A TPMS_ATTEST and the TPMT_SIGNATURE over it, as marshalled."""

    attest: bytes
    signature: bytes


class Tpm:
    """One ESAPI context on the TPM at ``tcti``; close it (or use ``with``). Loaded objects are flushed on close."""

    def __init__(self, tcti: str) -> None:
        try:
            from tpm2_pytss import ESAPI, TCTILdr
        except ImportError as exc:  # pragma: no cover - setup installs it
            raise ConfigurationError("tpm2-pytss is not installed (pip install 'tabellion[tpm]')") from exc
        name, _, config = tcti.partition(":")
        try:
            self._tcti = TCTILdr(name, config)
            self.esapi: Any = ESAPI(self._tcti)
        except Exception as exc:  # noqa: BLE001 - tpm2-pytss raises TSS2_Exception or OSError from the TCTI
            raise TpmUnavailable(f"cannot open the TPM at {tcti!r}: {exc}") from exc
        self._loaded: list[Any] = []
        self._srk: Any = None

    def __enter__(self) -> Tpm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._release_srk()
        for handle in reversed(self._loaded):
            with contextlib.suppress(Exception):  # closing: nothing more to do about a handle the TPM dropped
                self.esapi.flush_context(handle)
        self._loaded.clear()
        self.esapi.close()

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - TSS2_Exception names the TPM's response code
            raise TpmUnavailable(f"the TPM refused {what}: {exc}") from exc

    # --- the endorsement key ---------------------------------------------------------------------------

    def ek_certificate(self) -> bytes:
        """The EK certificate (DER) from its NV index, without the index's trailing padding."""
        from tpm2_pytss.constants import ESYS_TR

        index = self._call("reading the EK certificate's NV index", self.esapi.tr_from_tpmpublic, EK_CERT_INDEX)
        nv_public, _ = self._call("reading the EK certificate's NV index", self.esapi.nv_read_public, index)
        size, data, offset = nv_public.nvPublic.dataSize, b"", 0
        while offset < size:
            chunk = bytes(self._call("reading the EK certificate", self.esapi.nv_read, index, min(512, size - offset),
                                     offset, auth_handle=ESYS_TR.RH_OWNER))
            data += chunk
            offset += len(chunk)
        return _der_prefix(data)

    def ek_public(self) -> bytes:
        handle = self._call("reading the EK", self.esapi.tr_from_tpmpublic, EK_HANDLE)
        public, _, _ = self._call("reading the EK", self.esapi.read_public, handle)
        return bytes(public.publicArea.marshal())

    # --- keys ------------------------------------------------------------------------------------------------

    def srk(self) -> Any:
        """The SRK, made from its template when needed; ``_release_srk`` flushes it again, as a TPM has few object
        slots (swtpm: three) and a loaded child does not need its parent loaded."""
        if self._srk is None:
            from tpm2_pytss.constants import ESYS_TR
            from tpm2_pytss.types import TPM2B_PUBLIC, TPM2B_SENSITIVE_CREATE, TPMT_PUBLIC

            template, _ = TPMT_PUBLIC.unmarshal(ecc_template(SRK_ATTRIBUTES, storage=True))
            handle, *_ = self._call("creating the SRK", self.esapi.create_primary, TPM2B_SENSITIVE_CREATE(),
                                    TPM2B_PUBLIC(publicArea=template), ESYS_TR.RH_OWNER)
            self._srk = handle
        return self._srk

    def _release_srk(self) -> None:
        if self._srk is not None:
            handle, self._srk = self._srk, None
            self._call("flushing the SRK", self.esapi.flush_context, handle)

    def create(self, attributes: int) -> KeyBlob:
        """A new ECDSA P-256 key with ``attributes``, created in the TPM under the SRK."""
        from tpm2_pytss.types import TPM2B_PUBLIC, TPM2B_SENSITIVE_CREATE, TPMT_PUBLIC

        template, _ = TPMT_PUBLIC.unmarshal(ecc_template(attributes))
        private, public, *_ = self._call("creating a key", self.esapi.create, self.srk(), TPM2B_SENSITIVE_CREATE(),
                                         TPM2B_PUBLIC(publicArea=template))
        self._release_srk()
        return KeyBlob(bytes(public.publicArea.marshal()), bytes(private.marshal()))

    def flush(self, handle: Any) -> None:
        if handle in self._loaded:
            self._loaded.remove(handle)
            self._call("flushing a key", self.esapi.flush_context, handle)

    def load(self, blob: KeyBlob) -> Any:
        from tpm2_pytss.types import TPM2B_PRIVATE, TPM2B_PUBLIC, TPMT_PUBLIC

        public, _ = TPMT_PUBLIC.unmarshal(blob.public)
        private, _ = TPM2B_PRIVATE.unmarshal(blob.private)
        handle = self._call("loading a key", self.esapi.load, self.srk(), private, TPM2B_PUBLIC(publicArea=public))
        self._release_srk()
        self._loaded.append(handle)
        return handle

    # --- attestation ----------------------------------------------------------------------------------------

    def quote(self, ak: Any, nonce: bytes, pcrs: tuple[int, ...] = DEFAULT_PCRS) -> Attestation:
        """TPM2_Quote of the SHA-256 bank's ``pcrs`` by ``ak``, with ``nonce`` as qualifyingData."""
        from tpm2_pytss.types import TPML_PCR_SELECTION

        selection = TPML_PCR_SELECTION.parse("sha256:" + ",".join(str(p) for p in pcrs))
        attest, signature = self._call("quoting", self.esapi.quote, ak, selection, nonce, _ecdsa_scheme())
        return Attestation(bytes(attest.attestationData), bytes(signature.marshal()))

    def certify(self, key: Any, ak: Any, nonce: bytes) -> Attestation:
        """TPM2_Certify of ``key`` by ``ak``, with ``nonce`` as qualifyingData."""
        from tpm2_pytss.constants import ESYS_TR

        attest, signature = self._call("certifying", self.esapi.certify, key, ak, nonce, _ecdsa_scheme(),
                                       session1=ESYS_TR.PASSWORD, session2=ESYS_TR.PASSWORD)
        return Attestation(bytes(attest.attestationData), bytes(signature.marshal()))

    def activate_credential(self, ak: Any, credential_blob: bytes, secret: bytes) -> bytes:
        """TPM2_ActivateCredential: the credential the service protected for this EK and ``ak``'s name."""
        from tpm2_pytss.constants import ESYS_TR, TPM2_ALG, TPM2_SE
        from tpm2_pytss.types import TPM2B_ENCRYPTED_SECRET, TPM2B_ID_OBJECT, TPMT_SYM_DEF

        ek = self._call("reading the EK", self.esapi.tr_from_tpmpublic, EK_HANDLE)
        session = self._call("starting the EK's policy session", self.esapi.start_auth_session, ESYS_TR.NONE,
                             ESYS_TR.NONE, TPM2_SE.POLICY, TPMT_SYM_DEF(algorithm=TPM2_ALG.NULL), TPM2_ALG.SHA256)
        try:
            self._call("satisfying the EK's policy", self.esapi.policy_secret, ESYS_TR.RH_ENDORSEMENT, session)
            recovered = self._call("activating the credential", self.esapi.activate_credential, ak, ek,
                                   TPM2B_ID_OBJECT(credential_blob), TPM2B_ENCRYPTED_SECRET(secret),
                                   session1=ESYS_TR.PASSWORD, session2=session)
        finally:
            with contextlib.suppress(Exception):  # a policy session used by a command may be gone already
                self.esapi.flush_context(session)
        return bytes(recovered)

    def sign_digest(self, key: Any, digest: bytes) -> bytes:
        """TPM2_Sign of a SHA-256 ``digest`` with an unrestricted ECDSA key: the signature as r || s (32 bytes each),
        the form of COSE ES256 and RFC 9421 ``ecdsa-p256-sha256``."""
        from tpm2_pytss.constants import TPM2_ST
        from tpm2_pytss.types import TPMT_TK_HASHCHECK

        ticket = TPMT_TK_HASHCHECK(tag=TPM2_ST.HASHCHECK, hierarchy=TPM_RH_NULL)
        signature = self._call("signing", self.esapi.sign, key, digest, _ecdsa_scheme(), ticket)
        ecdsa = signature.signature.ecdsa
        return bytes(ecdsa.signatureR).rjust(32, b"\x00") + bytes(ecdsa.signatureS).rjust(32, b"\x00")


TPM_RH_NULL: Final = 0x40000007


def _ecdsa_scheme() -> Any:
    from tpm2_pytss.constants import TPM2_ALG
    from tpm2_pytss.types import TPMT_SIG_SCHEME

    scheme = TPMT_SIG_SCHEME(scheme=TPM2_ALG.ECDSA)
    scheme.details.any.hashAlg = TPM2_ALG.SHA256
    return scheme


def _der_prefix(data: bytes) -> bytes:
    """The DER SEQUENCE at the start of ``data`` (an NV index may be larger than the certificate it holds)."""
    if len(data) < 2 or data[0] != 0x30:
        raise TpmUnavailable("the EK certificate's NV index does not hold a DER certificate")
    length, header = data[1], 2
    if length & 0x80:
        count = length & 0x7F
        length, header = int.from_bytes(data[2 : 2 + count], "big"), 2 + count
    return data[: header + length]


class TpmSigner:
    """The agent's TPM-resident P-256 key as a signer: ``sign(message)`` is ES256 (r || s over SHA-256(message)),
    made by TPM2_Sign. The key is loaded once; close the TPM when done."""

    algorithm = "ecdsa-p256-sha256"

    def __init__(self, tpm: Tpm, blob: KeyBlob) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec

        from transparency.tpm.structures import parse_public

        self.tpm = tpm
        self.blob = blob
        self.handle = tpm.load(blob)
        key = parse_public(blob.public, "the agent key").public_key
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ConfigurationError("the agent key in the TPM is not an ECC key")
        self._public = key

    def public_key(self) -> Any:
        return self._public

    def sign(self, message: bytes) -> bytes:
        return self.tpm.sign_digest(self.handle, hashlib.sha256(message).digest())
