"""``tabellion enrol``: a TPM-rooted agent's enrolment (docs/tpm.md), on tpm2-pytss over a TCTI.

    tabellion enrol prepare URL --tcti swtpm:host=127.0.0.1,port=2321 --dir AGENT --operator DID --namespace acme \\
        --ek-chain vendor-intermediate.pem
    # the operator's passkey signs the printed challenge (user verified): the console, or a software authenticator
    tabellion enrol submit URL --dir AGENT --assertion assertion.json
    tabellion enrol pin-root URL --data DATA --root vendor-root.pem    # on the log's host, once per vendor root

``prepare`` creates the agent's P-256 signing key and an attestation key inside the TPM, runs the TPM side of the
ceremony (quote and certification over the service's nonce, activation of its credential) and writes the request
and the agent key (wrapped by the TPM: useless elsewhere) into ``--dir``. ``submit`` sends it with the operator's
assertion; the six gates decide, and the enrolment entry is kept as ``--dir/enrolment.json``. The agent then signs
with its TPM key: ``tabellion consent URL --tpm AGENT --tcti … --operator DID``, ``tabellion claim submit … --tpm``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from schemas.base64url import b64url
from schemas.errors import ConfigurationError, InvalidParameter, LogUnreachable
from transparency.client.bounded import bounded_request

Command = Callable[[Any, str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


def _chain(paths: list[str]) -> list[bytes]:
    out = []
    for path in paths:
        try:
            for certificate in x509.load_pem_x509_certificates(Path(path).read_bytes()):
                out.append(certificate.public_bytes(serialization.Encoding.DER))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"{path}: not a readable PEM certificate file ({exc})") from exc
    return out


def prepare(url: str, tcti: str, folder: Path, operator: str, namespace: str, ek_chain: list[str]) -> list[str]:
    from transparency.client.enrolment import REQUEST_FILE
    from transparency.client.enrolment import prepare as run

    print("enrol: creating the agent key and the AK in the TPM, quoting, certifying, activating…", file=sys.stderr)
    prepared = run(url, tcti, folder, operator=operator, namespace=namespace, ek_chain=_chain(ek_chain))
    return [f"agent: {prepared.agent}",
            f"challenge: {b64url(prepared.challenge)}",
            f"the operator's passkey signs the challenge (user verified); then: tabellion enrol submit {url} "
            f"--dir {folder} --assertion FILE  (request in {folder / REQUEST_FILE})"]


def submit(url: str, folder: Path, assertion: Path) -> list[str]:
    from transparency.client.enrolment import submit as run

    try:
        value = json.loads(assertion.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidParameter(f"{assertion}: not a JSON assertion ({exc})") from exc
    if not isinstance(value, dict):
        raise InvalidParameter(f"{assertion}: the assertion must be a JSON object")
    answer = run(url, folder, value)
    return [f"OK: agent-enrolment registered as entry {answer['entry']} for {answer['agent']}",
            f"  EK chained to root sha256:{answer['ek_root_sha256']} (trust anchor {answer['trust_anchor']})",
            f"  machine fingerprint {answer['machine_fingerprint']}; gates {' '.join(answer['gates'])} passed"]


def pin_root(url: str, data: Path, root: Path, note: str | None = None) -> list[str]:
    """Pin a TPM vendor's EK root on the log: a trust-anchor (purpose tpm-endorsement) signed with the log's own key
    (read from its data folder: this runs on the log's host) and registered over SCRAPI."""
    import httpx

    from schemas.identity_statements import content_type, encode_payload
    from schemas.leaf import entry_id, leaf_data
    from schemas.statement import parse_statement
    from transparency.client import did_of, refusal, sign_statement
    from transparency.client.signing import load_ed25519_key
    from transparency.settings import Settings

    try:
        pem = root.read_text()
        x509.load_pem_x509_certificate(pem.encode())
    except (OSError, ValueError) as exc:
        raise InvalidParameter(f"{root}: not a PEM X.509 certificate ({exc})") from exc
    key = load_ed25519_key(Settings(data_dir=data).key_path, "log key")
    payload: dict[str, Any] = {"anchor": pem, "kind": "x509-root-pem", "purpose": "tpm-endorsement"}
    if note:
        payload["note"] = note
    statement = sign_statement(key, encode_payload("trust-anchor", payload), subject="tpm-endorsement",
                               content_type=content_type("trust-anchor"), issuer=did_of(key))
    try:
        answer = bounded_request("POST", url.rstrip("/") + "/entries", content=statement,
                                 headers={"content-type": "application/cose"}, timeout=60)
    except httpx.HTTPError as exc:
        raise LogUnreachable(f"{url}: {exc}") from exc
    if answer.status_code != 201:
        raise refusal(answer)
    entry = entry_id(leaf_data(parse_statement(statement).message))
    return [f"OK: trust-anchor (tpm-endorsement) registered as entry {entry}"]


def add_enrol_commands(commands: Any, command: Command, show: Callable[[list[str]], int]) -> None:
    actions = command(commands, "enrol", lambda a: 2, "enrol a TPM-rooted agent (TPM 2.0, six gates)"
                      ).add_subparsers(dest="action", required=True, metavar="ACTION")
    p = command(actions, "prepare", lambda a: show(prepare(a.url, a.tcti, a.dir, a.operator, a.namespace,
                                                           a.ek_chain)),
                "create the agent key in the TPM and run the TPM side of the ceremony")
    p.add_argument("url", metavar="URL", help="the transparency service")
    p.add_argument("--tcti", required=True, help="the TPM: swtpm:host=…,port=… or device:/dev/tpmrm0")
    p.add_argument("--dir", required=True, type=Path, help="the agent's folder (its TPM-wrapped key, the request)")
    p.add_argument("--operator", required=True, metavar="DID")
    p.add_argument("--namespace", required=True)
    p.add_argument("--ek-chain", action="append", default=[], metavar="PEM",
                   help="intermediate certificate(s) between the EK certificate and the vendor root (repeat)")
    p = command(actions, "submit", lambda a: show(submit(a.url, a.dir, a.assertion)),
                "send the enrolment with the operator's passkey assertion; the six gates decide")
    p.add_argument("url", metavar="URL")
    p.add_argument("--dir", required=True, type=Path)
    p.add_argument("--assertion", required=True, type=Path, metavar="FILE",
                   help="{credential_id, authenticator_data, client_data_json, signature}, base64url")
    p = command(actions, "pin-root", lambda a: show(pin_root(a.url, a.data, a.root, a.note)),
                "pin a TPM vendor's EK root on the log (on the log's host: signed with the log key)")
    p.add_argument("url", metavar="URL")
    p.add_argument("--data", required=True, type=Path, help="the log's data folder (its log-key.pem)")
    p.add_argument("--root", required=True, type=Path, metavar="PEM")
    p.add_argument("--note")
