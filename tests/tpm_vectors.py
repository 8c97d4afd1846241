"""Records known-answer vectors of TPM 2.0 evidence from a real (software) TPM: ``tests/vectors/tpm/``.

    .venv/bin/python -m tests.tpm_vectors OUT.json   # manufactures a swtpm with a fresh local CA in a temp folder

What is recorded (hex unless said otherwise), all made by swtpm 0.7 (libtpms) through tpm2-pytss:

- the EK certificate chain (DER, base64) as ``swtpm_setup --create-ek-cert`` and ``swtpm_localca`` made it, and the
  EK's TPMT_PUBLIC (persistent handle 0x81010001);
- an AK and an agent key (TPMT_PUBLIC) created in the TPM, a TPM2_Quote and a TPM2_Certify by the AK over ``nonce``;
- ``make_credential_rsa`` / ``make_credential_ecc``: TPM2_MakeCredential *run by the TPM* with a storage key loaded
  with TPM2_LoadExternal (public part only) whose private key is recorded, so that a test can recover the seed the
  TPM chose and check that ``transparency.tpm.credential`` computes the TPM's credential blob byte for byte.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.swtpm import LocalCa, SoftwareTpm, manufacture
from transparency.client.tpm import AGENT_KEY_ATTRIBUTES, AK_ATTRIBUTES, DECRYPT, RESTRICTED, USER_WITH_AUTH, Tpm
from transparency.tpm.structures import sized

STORAGE = RESTRICTED | DECRYPT | USER_WITH_AUTH


def rsa_storage_public(key: rsa.RSAPublicKey) -> bytes:
    """TPMT_PUBLIC of an RSA 2048 storage key as the TCG EK template L-1 has it: SHA-256, AES-128-CFB."""
    n = key.public_numbers().n.to_bytes(256, "big")
    return bytes.fromhex("0001" "000b") + STORAGE.to_bytes(4, "big") + b"\x00\x00" + bytes.fromhex(
        "0006" "0080" "0043" "0010" "0800" "00000000") + sized(n)


def ecc_storage_public(key: ec.EllipticCurvePublicKey) -> bytes:
    """TPMT_PUBLIC of an ECC P-256 storage key as the TCG EK template L-2 has it: SHA-256, AES-128-CFB."""
    numbers = key.public_numbers()
    return bytes.fromhex("0023" "000b") + STORAGE.to_bytes(4, "big") + b"\x00\x00" + bytes.fromhex(
        "0006" "0080" "0043" "0010" "0003" "0010") + sized(numbers.x.to_bytes(32, "big")) + sized(
        numbers.y.to_bytes(32, "big"))


def tpm_make_credential(tpm: Tpm, public: bytes, name: bytes, credential: bytes) -> tuple[bytes, bytes]:
    from tpm2_pytss.constants import ESYS_TR
    from tpm2_pytss.types import TPM2B_DIGEST, TPM2B_NAME, TPM2B_PUBLIC, TPMT_PUBLIC

    area, _ = TPMT_PUBLIC.unmarshal(public)
    handle = tpm.esapi.load_external(TPM2B_PUBLIC(publicArea=area), None, ESYS_TR.RH_NULL)
    try:
        blob, secret = tpm.esapi.make_credential(handle, TPM2B_DIGEST(credential), TPM2B_NAME(name))
    finally:
        tpm.esapi.flush_context(handle)
    return bytes(blob), bytes(secret)


def record(tcti: str, ca: LocalCa) -> dict[str, Any]:
    b64 = base64.b64encode
    nonce = os.urandom(32)
    with Tpm(tcti) as tpm:
        ak_blob, key_blob = tpm.create(AK_ATTRIBUTES), tpm.create(AGENT_KEY_ATTRIBUTES)
        ak, key = tpm.load(ak_blob), tpm.load(key_blob)
        quote, certify = tpm.quote(ak, nonce), tpm.certify(key, ak, nonce)
        tpm.flush(key)
        tpm.flush(ak)
        out: dict[str, Any] = {
            "_source": "recorded by tests/tpm_vectors.py from swtpm 0.7.1 (libtpms) manufactured by swtpm_setup "
                       "--create-ek-cert with a local CA made by swtpm_localca; see tests/vectors/SOURCES.md",
            "ek_certificate": b64(tpm.ek_certificate()).decode(),
            "ek_chain": [b64(_der(ca.intermediate_pem)).decode()],
            "root": b64(_der(ca.root_pem)).decode(),
            "ek_public": tpm.ek_public().hex(),
            "ak_public": ak_blob.public.hex(), "agent_key_public": key_blob.public.hex(), "nonce": nonce.hex(),
            "quote": {"attest": quote.attest.hex(), "signature": quote.signature.hex()},
            "certify": {"attest": certify.attest.hex(), "signature": certify.signature.hex()},
        }
        from transparency.tpm.structures import parse_public

        name = parse_public(ak_blob.public).name
        credential = os.urandom(32)
        rsa_key = rsa.generate_private_key(65537, 2048)
        ecc_key = ec.generate_private_key(ec.SECP256R1())
        for label, private, public in (("rsa", rsa_key, rsa_storage_public(rsa_key.public_key())),
                                       ("ecc", ecc_key, ecc_storage_public(ecc_key.public_key()))):
            blob, secret = tpm_make_credential(tpm, public, name, credential)
            pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode()
            out[f"make_credential_{label}"] = {"private_key_pem": pem, "public": public.hex(), "name": name.hex(),
                                               "credential": credential.hex(), "credential_blob": blob.hex(),
                                               "secret": secret.hex()}
    return out


def _der(pem: Path) -> bytes:
    from cryptography import x509

    return x509.load_pem_x509_certificate(pem.read_bytes()).public_bytes(serialization.Encoding.DER)


def main(out: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        ca = LocalCa.create(Path(folder) / "ca")
        state = Path(folder) / "state"
        manufacture(ca, state)
        tpm = SoftwareTpm.start(state)
        try:
            vectors = record(tpm.tcti, ca)
        finally:
            tpm.stop()
    Path(out).write_text(json.dumps(vectors, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
