"""The agent's side of TPM 2.0 enrolment (``tabellion enrol``), on tpm2-pytss (``transparency.client.tpm``).

``prepare`` creates the agent's P-256 signing key and an AK inside the TPM, asks the service for a token, a nonce
and a credential (``POST /v1/enrol/start``), quotes the PCRs and certifies the agent key with the AK over the
nonce, activates the credential with the EK, and writes into the agent's folder:

- ``agent-key.json``: the agent key's TPMT_PUBLIC and TPM2B_PRIVATE (wrapped by the TPM's SRK: useless elsewhere);
- ``enrolment-request.json``: the submission, without the operator's approval, and ``enrolment_digest``, the
  challenge the operator's passkey must sign (user verified) for G6.

``submit`` adds the operator's assertion and posts the whole to ``POST /v1/enrol/submit``; the service's answer
(the ``agent-enrolment`` entry, its receipt, the pinned root the EK chained to) is kept as ``enrolment.json``.
``agent_signer`` opens the agent key in the TPM as an ES256 signer for statements and gateway requests.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from schemas.base64url import b64url, b64url_decode
from schemas.errors import ConfigurationError, InvalidParameter, LogRequestRefused, LogUnreachable
from transparency.client.bounded import bounded_request
from transparency.client.http import refusal
from transparency.client.tpm import AGENT_KEY_ATTRIBUTES, AK_ATTRIBUTES, KeyBlob, Tpm, TpmSigner
from transparency.tpm.structures import parse_public
from verifier.did_key import did_key_from_public
from verifier.enrolments import enrolment_digest

AGENT_KEY_FILE = "agent-key.json"
REQUEST_FILE = "enrolment-request.json"
RESULT_FILE = "enrolment.json"
PLATFORM = "tpm2"


@dataclass(frozen=True)
class Prepared:
    agent: str
    challenge: bytes
    request: dict[str, Any]


def fingerprint_of(ek_certificate: bytes) -> str:
    """``sha256:`` + hex SHA-256 of the EK certificate's SubjectPublicKeyInfo: the machine fingerprint (G2)."""
    spki = x509.load_der_x509_certificate(ek_certificate).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def post_json(url: str, path: str, body: dict[str, Any], expect: tuple[int, ...] = (201,)) -> dict[str, Any]:
    try:
        answer = bounded_request("POST", url.rstrip("/") + path, json=body, timeout=60)
    except httpx.HTTPError as exc:
        raise LogUnreachable(f"{url}: {exc}") from exc
    if answer.status_code not in expect:
        raise refusal(answer)
    try:
        value = answer.json()
    except (UnicodeDecodeError, ValueError) as exc:
        raise LogRequestRefused(f"{url}{path} answered {answer.status_code} with a body that is not JSON",
                                status=answer.status_code) from exc
    if not isinstance(value, dict):
        raise LogRequestRefused(f"{url}{path} answered {answer.status_code} with JSON that is not an object",
                                status=answer.status_code)
    return value


def request_digest(request: dict[str, Any]) -> bytes:
    """What the operator approves: ``verifier.enrolments.enrolment_digest`` of the submission's values."""
    quote, certify = b64url_decode(request["quote"]["attest"], "quote"), b64url_decode(request["certify"]["attest"],
                                                                                         "certify")
    fields = {
        "agent": request["agent"], "operator": request["operator"], "namespace": request["namespace"],
        "platform": request["platform"], "machine_fingerprint": request["machine_fingerprint"],
        "ek_certificate_sha256": hashlib.sha256(b64url_decode(request["ek_certificate"], "ek")).hexdigest(),
        "ak_name": parse_public(b64url_decode(request["ak_public"], "ak")).name.hex(),
        "quote_sha256": hashlib.sha256(quote).hexdigest(), "certify_sha256": hashlib.sha256(certify).hexdigest(),
        "agent_key_name": parse_public(b64url_decode(request["agent_key_public"], "key")).name.hex(),
        "nonce": request["nonce"],
    }
    return enrolment_digest(fields)


def collect(tpm: Tpm, url: str, *, operator: str, namespace: str, ek_chain: list[bytes],
            key: KeyBlob | None = None, ak: KeyBlob | None = None) -> tuple[dict[str, Any], KeyBlob]:
    """The enrolment request made with this TPM (module docstring); ``key``/``ak``: keys created already."""
    ek_certificate = tpm.ek_certificate()
    ak = ak or tpm.create(AK_ATTRIBUTES)
    key = key or tpm.create(AGENT_KEY_ATTRIBUTES)
    start = post_json(url, "/v1/enrol/start",
                      {"ek_certificate": b64url(ek_certificate), "ak_public": b64url(ak.public)})
    nonce = b64url_decode(start["nonce"], "nonce")
    ak_handle, key_handle = tpm.load(ak), tpm.load(key)
    quote, certify = tpm.quote(ak_handle, nonce), tpm.certify(key_handle, ak_handle, nonce)
    tpm.flush(key_handle)
    activated = tpm.activate_credential(ak_handle, b64url_decode(start["credential_blob"], "credential_blob"),
                                        b64url_decode(start["secret"], "secret"))
    tpm.flush(ak_handle)
    agent_key = parse_public(key.public).public_key
    if not isinstance(agent_key, ec.EllipticCurvePublicKey):
        raise InvalidParameter("the agent key is not an ECC key")
    request = {
        "token": start["token"], "nonce": nonce.hex(), "agent": did_key_from_public(agent_key), "operator": operator,
        "namespace": namespace, "platform": PLATFORM, "machine_fingerprint": fingerprint_of(ek_certificate),
        "ek_certificate": b64url(ek_certificate), "ek_chain": [b64url(c) for c in ek_chain],
        "ak_public": b64url(ak.public), "agent_key_public": b64url(key.public),
        "quote": {"attest": b64url(quote.attest), "signature": b64url(quote.signature)},
        "certify": {"attest": b64url(certify.attest), "signature": b64url(certify.signature)},
        "activated_credential": b64url(activated),
    }
    return request, key


def prepare(url: str, tcti: str, folder: Path, *, operator: str, namespace: str, ek_chain: list[bytes]) -> Prepared:
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / AGENT_KEY_FILE).exists():
        raise InvalidParameter(f"{folder / AGENT_KEY_FILE} exists: this folder holds an agent key already")
    with Tpm(tcti) as tpm:
        request, key = collect(tpm, url, operator=operator, namespace=namespace, ek_chain=ek_chain)
    challenge = request_digest(request)
    _write(folder / AGENT_KEY_FILE, {"public": b64url(key.public), "private": b64url(key.private),
                                     "agent": request["agent"]})
    _write(folder / REQUEST_FILE, {**request, "enrolment_digest": challenge.hex()})
    return Prepared(request["agent"], challenge, request)


def submit(url: str, folder: Path, assertion: dict[str, Any]) -> dict[str, Any]:
    request = _read(folder / REQUEST_FILE)
    request.pop("enrolment_digest", None)
    request.pop("nonce", None)
    answer = post_json(url, "/v1/enrol/submit", {**request, "webauthn": assertion}, (201, 202))
    _write(folder / RESULT_FILE, answer)
    return answer


def agent_key_blob(folder: Path) -> KeyBlob:
    saved = _read(folder / AGENT_KEY_FILE)
    return KeyBlob(b64url_decode(saved["public"], "public"), b64url_decode(saved["private"], "private"))


def agent_signer(tpm: Tpm, folder: Path) -> TpmSigner:
    return TpmSigner(tpm, agent_key_blob(folder))


def _write(path: Path, value: dict[str, Any]) -> None:
    path.write_text(json.dumps(value, indent=1, sort_keys=True) + "\n")


def _read(path: Path) -> dict[str, Any]:
    try:
        value: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from exc
    return value
