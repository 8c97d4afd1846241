"""Operator commands: each builds an identity statement, signs it locally, and submits it to the issuer.

    tabellion register URL --key OP.pem --next-key OP-NEXT.pem --namespace acme [--witness DID ...]
    tabellion rotate URL --as DID --key OP-NEXT.pem --next-key OP-NEXT2.pem --previous ENTRY --sequence 1
    tabellion passport URL --key OP.pem --agent DID --tier software --status-list URL --status-index 0 ...
    tabellion delegate URL --key KEY --agent DID --services mail --actions read --resources 'mail/*' --ttl 3600
    tabellion claim submit|approve|reject|revoke URL ...
    tabellion revoke URL --key KEY --target DID|ENTRY|MULTIKEY --reason privilegeWithdrawn

``--as DID`` names the identity a key signs for when it is not the key's own did:key (an operator after
a rotation keeps its first DID). Keys are PEM files made by ``tabellion keygen``. Each command prints
the entry id and index the log gave it; ``--receipt FILE`` also keeps the receipt.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from issuer import statements as st
from issuer.client import IssuerClient
from schemas.errors import InvalidParameter
from schemas.identity_statements import REVOCATION_REASONS
from transparency.client import load_private_key

Command = Callable[[Any, str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


def _key(path: str) -> Ed25519PrivateKey:
    key = load_private_key(path)
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidParameter(f"{path} is not an Ed25519 key; identity statements are signed with Ed25519")
    return key


def _signer(a: argparse.Namespace) -> st.Signer:
    tpm_signer = getattr(a, "tpm_signer", None)
    if tpm_signer is not None:
        return st.Signer(tpm_signer, a.as_did or "")
    if not a.key:
        raise InvalidParameter("give --key KEYFILE, or --tpm DIR and --tcti for an agent key held in a TPM")
    return st.Signer(_key(a.key), a.as_did or "")


def _with_tpm(run: Callable[[argparse.Namespace], list[str]], a: argparse.Namespace) -> list[str]:
    """Run a command whose signer may be an agent key in a TPM (``--tpm DIR --tcti T``), flushed afterwards."""
    if not getattr(a, "tpm", None):
        return run(a)
    if not a.tcti:
        raise InvalidParameter("--tpm needs --tcti (e.g. swtpm:host=127.0.0.1,port=2321)")
    from transparency.client.enrolment import agent_signer
    from transparency.client.tpm import Tpm

    with Tpm(a.tcti) as tpm:
        a.tpm_signer = agent_signer(tpm, Path(a.tpm))
        return run(a)


def _scope(a: argparse.Namespace) -> dict[str, list[str]]:
    return {name: [v for v in getattr(a, name).split(",") if v] for name in ("services", "actions", "resources")}


def post(url: str, statement_type: str, statement: bytes, receipt_out: str | None, *,
         claim: str | None = None) -> list[str]:
    """Submit to the issuer (``issuer.client``); one line naming the entry, or the refusal as an error."""
    with IssuerClient(url) as issuer:
        logged = issuer.submit(statement_type, statement, claim=claim)
    if receipt_out:
        Path(receipt_out).write_bytes(logged.receipt)
    return [f"OK: {logged.statement_type} registered as entry {logged.entry} (index {logged.index})"]


def _register(a: argparse.Namespace) -> list[str]:
    statement = st.operator_registration(_signer(a), a.namespace, _key(a.next_key), a.witness, a.threshold)
    return post(a.url, "operator-registration", statement, a.receipt)


def _rotate(a: argparse.Namespace) -> list[str]:
    if not a.key:
        raise InvalidParameter("a rotation is signed with --key KEYFILE (the committed next key)")
    statement = st.key_rotation(a.as_did, _key(a.key), sequence=a.sequence, previous=a.previous,
                                next_key=_key(a.next_key), witness_keys=[_key(w) for w in a.witness_key])
    return post(a.url, "key-rotation", statement, a.receipt)


def _consent(a: argparse.Namespace) -> list[str]:
    return post(a.url, "agent-consent", st.agent_consent(_signer(a), a.operator), a.receipt)


def _passport(a: argparse.Namespace) -> list[str]:
    request = st.PassportRequest(a.agent, a.tier, a.fingerprint, a.jurisdiction, a.policy_bundle, a.status_list,
                                 a.status_index, a.lifetime)
    return post(a.url, "agent-passport", st.agent_passport(_signer(a), request), a.receipt)


def _delegate(a: argparse.Namespace) -> list[str]:
    statement = st.delegation(_signer(a), a.agent, _scope(a), not_after=int(time.time()) + a.ttl,
                              max_depth=a.max_depth, parent=a.parent)
    return post(a.url, "delegation", statement, a.receipt)


def _claim(a: argparse.Namespace) -> list[str]:
    signer = _signer(a)
    if a.action == "submit":
        statement = st.claim_submission(signer, a.claim_id, a.namespace, a.service, _scope(a))
        return post(a.url, "claim-submission", statement, a.receipt)
    if a.action == "approve":
        kind, statement = "claim-approval", st.claim_approval(signer, a.claim, decided_by=a.decided_by, note=a.note)
    elif a.action == "reject":
        kind, statement = "claim-rejection", st.claim_rejection(signer, a.claim, a.reason)
    else:
        kind, statement = "claim-revocation", st.claim_revocation(signer, a.claim, a.reason)
    return post(a.url, kind, statement, a.receipt, claim=a.claim)


def _revoke(a: argparse.Namespace) -> list[str]:
    return post(a.url, "revocation", st.revocation(_signer(a), a.target, a.reason), a.receipt)


def add_operator_commands(commands: Any, command: Command, show: Callable[[list[str]], int]) -> None:
    def signed(name: str, run: Callable[[argparse.Namespace], list[str]], help_text: str,
               sub: Any = commands) -> argparse.ArgumentParser:
        p = command(sub, name, lambda a: show(_with_tpm(run, a)), help_text)
        p.add_argument("url", metavar="URL", help="the issuer (embedded: the log's URL)")
        p.add_argument("--key", metavar="KEYFILE", help="the signing key (Ed25519 PEM)")
        p.add_argument("--tpm", metavar="DIR", help="sign with the agent key held in a TPM (tabellion enrol's --dir)")
        p.add_argument("--tcti", help="the TPM for --tpm: swtpm:host=…,port=… or device:/dev/tpmrm0")
        p.add_argument("--as", dest="as_did", metavar="DID", help="the identity the key signs for")
        p.add_argument("--receipt", metavar="FILE", help="also write the receipt here")
        return p

    def scope(p: argparse.ArgumentParser) -> None:
        for name in ("services", "actions", "resources"):
            p.add_argument(f"--{name}", required=True, metavar="A,B", help=f"comma-separated {name}")

    p = signed("register", _register, "register an operator and its namespace (pre-committing its next key)")
    p.add_argument("--next-key", required=True, metavar="KEYFILE", help="the key a first rotation will reveal")
    p.add_argument("--namespace", required=True)
    p.add_argument("--witness", action="append", default=[], metavar="DID", help="a rotation witness (repeat)")
    p.add_argument("--threshold", type=int, default=0, help="witness signatures a rotation needs")

    p = signed("rotate", _rotate, "rotate to the committed next key (which signs), committing to another")
    p.add_argument("--next-key", required=True, metavar="KEYFILE")
    p.add_argument("--previous", required=True, metavar="ENTRY", help="entry id of the last key event")
    p.add_argument("--sequence", required=True, type=int)
    p.add_argument("--witness-key", action="append", default=[], metavar="KEYFILE")
    p.set_defaults(as_did=None)

    p = signed("consent", _consent, "an agent accepts an operator as its controller (signed with the agent's key)")
    p.add_argument("--operator", required=True, metavar="DID", help="the operator the agent binds itself to")

    p = signed("passport", _passport, "issue an agent passport (W3C VC 2.0, eddsa-jcs-2022)")
    p.add_argument("--agent", required=True, metavar="DID")
    p.add_argument("--tier", required=True, choices=("software", "tpm", "secure-enclave"))
    p.add_argument("--fingerprint", required=True, metavar="sha256:HEX", help="machine fingerprint")
    p.add_argument("--jurisdiction", required=True, metavar="CC")
    p.add_argument("--policy-bundle", required=True, metavar="sha256:HEX")
    p.add_argument("--status-list", required=True, metavar="URL")
    p.add_argument("--status-index", required=True, type=int)
    p.add_argument("--lifetime", type=int, metavar="SECONDS", help="default and maximum: the tier's cap")

    p = signed("delegate", _delegate, "delegate authority to an agent (scope must narrow at every hop)")
    p.add_argument("--agent", required=True, metavar="DID")
    scope(p)
    p.add_argument("--ttl", type=int, required=True, metavar="SECONDS")
    p.add_argument("--max-depth", type=int, default=0)
    p.add_argument("--parent", metavar="ENTRY", help="the delegation this one narrows (none: a root)")

    claims = command(commands, "claim", lambda a: 2, "submit, approve, reject or revoke a claim").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = signed("submit", _claim, "an agent asks a namespace owner for access", claims)
    p.add_argument("--claim-id", required=True)
    p.add_argument("--namespace", required=True)
    p.add_argument("--service", required=True)
    scope(p)
    for action, help_text in (("approve", "approve a claim (namespace owner)"),
                              ("reject", "reject a claim (namespace owner)"),
                              ("revoke", "revoke an approved claim (namespace owner)")):
        p = signed(action, _claim, help_text, claims)
        p.add_argument("claim", metavar="CLAIM_ENTRY")
        p.add_argument("--decided-by", metavar="DID", help="the human or operator who decided")
        p.add_argument("--note")
        p.add_argument("--reason", default="privilegeWithdrawn")

    p = signed("revoke", _revoke, "revoke an identity, a key or a credential entry (RFC 5280 reasons)")
    p.add_argument("--target", required=True, metavar="DID|ENTRY|MULTIKEY")
    p.add_argument("--reason", required=True, choices=tuple(REVOCATION_REASONS))


__all__ = ["add_operator_commands", "post"]
