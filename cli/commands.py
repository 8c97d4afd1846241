"""The ``tabellion`` commands: a thin shell over the library (sigstore-python's habit).

Each command is a plain function that returns the line(s) it reports, so tests call it directly;
``run(argv)`` parses arguments, calls one, prints, and turns every error into one line on stderr
(``tabellion: error: <message> [<code>]``, exit 1; 2 for a usage error). ``--verbose`` shows the traceback.

The ``verify`` commands are offline: they read files and use only ``verifier`` and ``schemas``.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cli.admin import add_admin_commands
from cli.console import add_console_commands
from cli.enrol import add_enrol_commands
from cli.fsck import add_fsck_command
from cli.gateway import add_gateway_commands
from cli.monitor import add_monitor_command
from cli.operator import add_operator_commands
from cli.witness import add_witness_command
from schemas import cose_labels as L
from schemas.checkpoint import parse_checkpoint
from schemas.cose_sign1 import decode_sign1
from schemas.errors import (
    PROBLEM_TYPE_BASE,
    CheckpointInconsistent,
    ConsistencyProofInvalid,
    InvalidParameter,
    LogCorrupted,
    LogRequestRefused,
    LogUnreachable,
    PayloadInvalid,
    RegistrationPending,
    TabellionError,
)
from schemas.leaf import entry_id, leaf_data
from schemas.note import VerifierKey, ed25519_vkey, parse_note, parse_vkey
from schemas.policy import Policy, parse_policy
from schemas.proofs import ConsistencyProof
from schemas.receipt import parse_receipt
from transparency.client import (
    KEY_KINDS,
    HttpLogClient,
    KeyKind,
    did_of,
    generate_key,
    load_private_key,
    refusal,
    save_private_key,
    sign_hash_envelope,
    sign_statement,
)
from transparency.client.bounded import bounded_request
from transparency.client.log_audit import audit_log
from transparency.client.tiles import TileLogClient
from verifier.bundles import verify_bundle
from verifier.checkpoints import verify_checkpoint, verify_checkpoint_consistency
from verifier.keys import KeySet, parse_key_set, public_key_bytes
from verifier.merkle import verify_consistency
from verifier.passports import format_timestamp
from verifier.policy import WitnessedCheckpoint, verify_witnessed_checkpoint
from verifier.receipts import VerifiedReceipt, verify_receipt, verify_transparent_statement
from verifier.statements import DidKeyResolver, verify_statement

PROG = "tabellion"
MAX_INPUT_BYTES = 64 * 1024 * 1024


class UsageError(Exception):
    """Arguments that do not fit a command (exit status 2)."""


# --- files ----------------------------------------------------------------------------------------


def read_file(path: str | Path, what: str) -> bytes:
    source = Path(path)
    try:
        with source.open("rb") as fh:
            data = fh.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot read the {what} {source}: {exc.strerror or exc}") from exc
    if len(data) > MAX_INPUT_BYTES:
        raise InvalidParameter(f"the {what} {source} is larger than {MAX_INPUT_BYTES} bytes")
    return data


def write_file(path: str | Path, data: bytes, what: str) -> None:
    target = Path(path)
    try:
        target.write_bytes(data)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write the {what} to {target}: {exc.strerror or exc}") from exc


def load_vkey(value: str) -> VerifierKey:
    """A signed-note verifier key given inline (``<name>+<id>+<key>``) or as a file holding one."""
    path = Path(value)
    if path.is_file():
        return parse_vkey(read_file(path, "log key").decode("utf-8", "replace"))
    if "+" not in value:
        raise InvalidParameter(f"log key {value[:100]!r} is neither a file nor a verifier key "
                               "<name>+<id>+<key>")
    return parse_vkey(value)


# --- commands -------------------------------------------------------------------------------------


def serve(overrides: Mapping[str, Any], *, stderr: TextIO | None = None) -> None:
    """Run the transparency service until SIGINT/SIGTERM."""
    from explorer.app import ROUTES as EXPLORER_ROUTES
    from explorer.app import explorer_extension
    from issuer.app import ROUTES as ISSUER_ROUTES
    from issuer.app import IssuerSettings, hosted
    from transparency.log.storage import describe
    from transparency.server import serve as serve_log
    from transparency.settings import load_settings

    settings = load_settings(overrides)

    database = f", database {describe(settings.database)}" if settings.database else ""

    def opened() -> None:  # the log passed its start-up checks
        print(f"{PROG}: serving {settings.origin} on http://{settings.host}:{settings.port} "
              f"(data {settings.data_dir}{database})", file=stderr or sys.stderr, flush=True)

    try:
        serve_log(settings, extra_routes=[*ISSUER_ROUTES, *EXPLORER_ROUTES],
                  extensions=[hosted(IssuerSettings(
                      settings.data_dir, settings.allowed_targets, settings.issuer_witness_policy,
                      settings.issuer_witness_grace_s, public_url=settings.service_url)), explorer_extension()],
                  opened=opened)
    except LogCorrupted as exc:  # one line (``run``): what is wrong, and what checks the rest
        fsck_database = " --database URL" if settings.database else ""
        raise type(exc)(f"{exc.detail}; the log was not started ('{PROG} fsck {settings.data_dir}{fsck_database}' "
                        "checks all of it)") from exc


def keygen(out: str | Path, kind: KeyKind = "ed25519", *, force: bool = False) -> str:
    """Write a new private key to ``out``; return its did:key."""
    key = generate_key(kind)
    save_private_key(key, out, overwrite=force)
    return did_of(key)


def sign(
    key_file: str | Path,
    payload_file: str | Path,
    out: str | Path,
    *,
    subject: str,
    content_type: str,
    issuer: str | None = None,
    hash_envelope: bool = False,
) -> str:
    """Sign the payload as a statement (or a hash envelope of it), write it to ``out``, describe it."""
    key = load_private_key(key_file)
    payload = read_file(payload_file, "payload")
    if hash_envelope:
        statement = sign_hash_envelope(key, payload, subject=subject, preimage_content_type=content_type,
                                       issuer=issuer)
    else:
        statement = sign_statement(key, payload, subject=subject, content_type=content_type, issuer=issuer)
    write_file(out, statement, "statement")
    kind = "hash envelope statement" if hash_envelope else "statement"
    ident = entry_id(leaf_data(decode_sign1(statement)))
    return f"wrote {kind} {out} ({len(statement)} bytes) signed by {issuer or did_of(key)}, entry id {ident}"


def submit(
    url: str,
    statement_file: str | Path,
    *,
    receipt_out: str | Path | None = None,
    transparent_out: str | Path | None = None,
    wait: float = 30.0,
    progress: TextIO | None = None,
) -> list[str]:
    """Register a statement; write its receipt (and transparent statement); report id and location."""
    statement = read_file(statement_file, "statement")

    def pending(ident: str, waited: float) -> None:
        if progress is not None:
            print(f"{PROG}: entry {ident} is being registered ({waited:.0f}s)", file=progress, flush=True)

    with HttpLogClient(url, wait=wait) as client:
        done = client.submit(statement, on_pending=pending)
        if done.receipt is None:
            raise RegistrationPending(
                f"entry {done.entry_id} was still being registered after {wait:g}s; fetch its receipt later "
                f"from {done.location}"
            )
        lines = [f"entry {done.entry_id}", f"location {done.location}"]
        if receipt_out is not None:
            write_file(receipt_out, done.receipt, "receipt")
            lines.append(f"receipt {receipt_out} ({_receipt_summary(done.receipt)})")
        if transparent_out is not None:
            write_file(transparent_out, client.transparent_statement(done.entry_id), "transparent statement")
            lines.append(f"transparent statement {transparent_out}")
    return lines


def fetch(
    what: str,
    url: str,
    out: str | Path,
    *,
    old: int | None = None,
    new: int | None = None,
    entry: str | None = None,
    did: str | None = None,
) -> str:
    """Download what an auditor needs for offline verification; its shape is checked before it is written."""
    with HttpLogClient(url) as client:
        if what == "keys":
            data = client.key_set()
            keys = parse_key_set(data)
            summary = f"the log's key set ({len(keys)} keys: {', '.join(kid.hex() for kid in keys)})"
        elif what == "checkpoint":
            text = client.checkpoint()
            cp = parse_checkpoint(parse_note(text).text)
            data = text.encode()
            summary = f"the checkpoint of {cp.origin} at tree size {cp.size} (not yet verified)"
        elif what == "vkey":
            vkey = parse_vkey(client.vkey())
            data = (vkey.encode() + "\n").encode()
            summary = f"the log's checkpoint key {vkey.name}+{vkey.key_id.hex()}"
        elif what == "consistency":
            if old is None or new is None:
                raise UsageError("fetch consistency needs --old and --new")
            proof = client.consistency(old, new)
            data = proof.encode()
            summary = f"the consistency proof of tree size {old} to {new} ({len(proof.path)} hashes)"
        elif what in ("receipt", "statement"):
            if entry is None:
                raise UsageError(f"fetch {what} needs --entry")
            if what == "receipt":
                found = client.receipt(entry)
                if found is None:
                    raise RegistrationPending(f"the log is still registering entry {entry}")
                data, summary = found, f"the receipt of entry {entry} ({_receipt_summary(found)})"
            else:
                data = client.transparent_statement(entry)
                summary = f"the transparent statement of entry {entry}"
        elif what == "audit":
            if did is None:
                raise UsageError("fetch audit needs --did")
            data = _fetch_audit(url, did)
            summary = f"the audit bundle of {did} ({len(json.loads(data)['entries'])} entries, not yet verified)"
        else:
            raise UsageError(f"cannot fetch {what!r}")
    write_file(out, data, what)
    return f"wrote {summary} to {out}"


def _fetch_audit(url: str, did: str) -> bytes:
    try:
        answer = bounded_request("GET", f"{url.rstrip('/')}/v1/audit/{did}", timeout=60)
    except httpx.HTTPError as exc:
        raise LogUnreachable(f"{url}: {exc}") from exc
    if answer.status_code != 200:
        raise refusal(answer)
    try:
        json.loads(answer.content)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadInvalid(f"the audit bundle is not JSON: {exc}") from exc
    return answer.content


def follow(
    url: str, log_key: str, log_keys: str | Path, *, since: str | Path | None = None, out: str | Path | None = None,
    progress: TextIO | None = None,
) -> str:
    """Follow a log from its tiles (its service, or a published folder behind any static server) and check all of
    it with the log's keys (``transparency.client.log_audit``); write the verified checkpoint to ``out``."""
    vkey = load_vkey(log_key)
    keys = parse_key_set(read_file(log_keys, "key set"))
    kept = None if since is None else read_file(since, "checkpoint").decode("utf-8", "replace")
    shown = [0.0]

    def report(done: int, size: int) -> None:
        if progress is not None and (time.monotonic() - shown[0] > 2 or done == size):
            shown[0] = time.monotonic()
            print(f"{PROG} follow: {done}/{size} entries checked", file=progress, flush=True)

    with TileLogClient(url) as client:
        audit = audit_log(client, vkey, keys, since=kept, progress=report)
    if out is not None:
        write_file(out, audit.checkpoint_text.encode(), "checkpoint")
    cp = audit.checkpoint
    extends = "" if audit.since is None else f", consistent with the kept checkpoint of size {audit.since}"
    wrote = "" if out is None else f"; wrote it to {out}"
    return (f"OK: {cp.origin} at tree size {cp.size}, root {cp.root_hash.hex()}: {audit.entries} receipts, "
            f"every checkpoint and consistency proof, the hash tiles and entry bundles checked{extends}{wrote}")


def verify_statement_file(path: str | Path) -> str:
    """Check a statement's did:key signature offline."""
    statement = verify_statement(read_file(path, "statement"), DidKeyResolver())
    alg = L.SIGNING_ALGORITHMS[statement.alg]
    if statement.payload_hash_alg is not None:
        what = f"hash envelope of {statement.content_type} (SHA-256 {statement.payload.hex()})"
    else:
        what = f"{statement.content_type} payload of {len(statement.payload)} bytes"
    return (f"OK: statement by {statement.issuer} about {statement.subject}, {what}, {alg}, "
            f"entry id {entry_id(leaf_data(statement.message))}")


def verify_receipt_files(
    log_keys: str | Path,
    transparent: str | Path | None = None,
    *,
    statement: str | Path | None = None,
    receipt: str | Path | None = None,
    check_signer: bool = True,
    policy: str | Path | None = None,
    checkpoint: str | Path | None = None,
    consistency: str | Path | None = None,
) -> list[str]:
    """Check receipts offline with the log's key set: a transparent statement, or a statement and its receipt.

    The statement's own did:key signature is checked too unless ``check_signer`` is off. With a tlog-policy the
    receipts must also lead to a cosigned ``checkpoint`` that meets the policy's quorum (the same root at the
    same size, or an RFC 9162 ``consistency`` proof from the receipts' size to the checkpoint's).
    """
    if transparent is not None and (statement is not None or receipt is not None):
        raise UsageError("give either a transparent statement file or --statement and --receipt, not both")
    if transparent is None and (statement is None or receipt is None):
        raise UsageError("give a transparent statement file, or both --statement and --receipt")
    if policy is None and (checkpoint is not None or consistency is not None):
        raise UsageError("--checkpoint and --consistency go with --policy")
    if policy is not None and checkpoint is None:
        raise UsageError("--policy needs the cosigned checkpoint (--checkpoint FILE) the receipts are checked against")
    keys = parse_key_set(read_file(log_keys, "key set"))
    resolver = DidKeyResolver() if check_signer else None
    if transparent is not None:
        data = read_file(transparent, "transparent statement")
        verified = verify_transparent_statement(data, keys, resolver)
    else:
        data = read_file(str(statement), "statement")
        verified = [verify_receipt(read_file(str(receipt), "receipt"), data, keys)]
    signed = verify_statement(data, resolver) if resolver is not None else None
    signer = f", statement signed by {signed.issuer}" if signed is not None else ""
    lines = [_receipt_line(v) + signer for v in verified]
    if policy is not None:
        lines += _witnessed_receipts(verified, keys, policy, checkpoint, consistency)
    return lines


def _witnessed_receipts(
    verified: Sequence[VerifiedReceipt], keys: KeySet, policy: str | Path, checkpoint: str | Path | None,
    consistency: str | Path | None,
) -> list[str]:
    """Tie every receipt to a witnessed checkpoint: the same root at its size, else a consistency proof to it."""
    if checkpoint is None:
        raise UsageError("--policy needs the cosigned checkpoint (--checkpoint FILE)")
    loaded = load_policy(policy)
    text = read_file(checkpoint, "checkpoint")
    witnessed = verify_witnessed_checkpoint(text, loaded, _log_vkey(text, keys))
    cp = witnessed.checkpoint
    proof = ConsistencyProof.decode(read_file(consistency, "consistency proof")) if consistency is not None else None
    for receipt in verified:
        if receipt.issuer != cp.origin:
            raise CheckpointInconsistent(f"the receipt is from {receipt.issuer!r}, the checkpoint of {cp.origin!r}")
        if receipt.tree_size == cp.size:
            if receipt.root != cp.root_hash:
                raise CheckpointInconsistent(f"the receipt and the checkpoint differ on the root of {cp.size} leaves")
            continue
        if proof is None or (proof.size1, proof.size2) != (receipt.tree_size, cp.size):
            raise UsageError(f"the receipt is for tree size {receipt.tree_size} and the checkpoint for {cp.size}: give "
                             f"--consistency with the proof between them ('tabellion fetch consistency --old "
                             f"{receipt.tree_size} --new {cp.size}')")
        verify_consistency(receipt.tree_size, cp.size, receipt.root, cp.root_hash, proof.path)
    return [f"OK: the receipts lead to the checkpoint of {cp.origin} at tree size {cp.size}",
            _witness_line(witnessed, loaded)]


def _log_vkey(checkpoint: bytes, keys: KeySet) -> VerifierKey | None:
    """The checkpoint key of the key set's Ed25519 key that signed ``checkpoint`` (None when none did: then the
    policy's log lines alone decide, and refuse)."""
    origin = parse_checkpoint(parse_note(checkpoint).text).origin
    for kid in keys:
        key = keys.get(kid)
        if isinstance(key, Ed25519PublicKey):
            vkey = ed25519_vkey(origin, public_key_bytes(key))
            if any(s.key_id == vkey.key_id and s.name == origin for s in parse_note(checkpoint).signatures):
                return vkey
    return None


def load_policy(path: str | Path) -> Policy:
    """A C2SP tlog-policy file."""
    return parse_policy(read_file(path, "policy"))


def verify_checkpoint_file(
    path: str | Path, log_key: str | None, origin: str | None = None, policy: str | Path | None = None
) -> str | list[str]:
    """Check a signed checkpoint offline with the log's verifier key, and with a tlog-policy its witness quorum."""
    vkey = load_vkey(log_key) if log_key is not None else None
    text = read_file(path, "checkpoint")
    if policy is None:
        if vkey is None:
            raise UsageError("give the log's key (--log-key), a policy that lists the log (--policy), or both")
        cp = verify_checkpoint(text, vkey, origin)
        return (f"OK: checkpoint of {cp.origin} at tree size {cp.size}, root {cp.root_hash.hex()}, "
                f"signed by {vkey.name}+{vkey.key_id.hex()}")
    loaded = load_policy(policy)
    witnessed = verify_witnessed_checkpoint(text, loaded, vkey, origin)
    cp, key = witnessed.checkpoint, witnessed.log_key
    return [f"OK: checkpoint of {cp.origin} at tree size {cp.size}, root {cp.root_hash.hex()}, "
            f"signed by {key.name}+{key.key_id.hex()}", _witness_line(witnessed, loaded)]


def _witness_line(witnessed: WitnessedCheckpoint, policy: Policy) -> str:
    names = ", ".join(f"{name} (at {format_timestamp(at)})" for name, at in sorted(witnessed.cosigners.items()))
    return f"witnessed by {names or 'no witness'}: the quorum {policy.quorum} ({policy.describe_quorum()}) is met"


def verify_consistency_files(
    old: str | Path, new: str | Path, proof: str | Path, log_key: str, origin: str | None = None
) -> str:
    """Check offline that the checkpoint ``new`` extends ``old``, with a consistency proof file."""
    vkey = load_vkey(log_key)
    old_cp = verify_checkpoint(read_file(old, "old checkpoint"), vkey, origin)
    new_cp = verify_checkpoint(read_file(new, "new checkpoint"), vkey, origin)
    decoded = ConsistencyProof.decode(read_file(proof, "consistency proof"))
    if (decoded.size1, decoded.size2) != (old_cp.size, new_cp.size):
        raise ConsistencyProofInvalid(
            f"the proof is for tree sizes {decoded.size1} and {decoded.size2}, the checkpoints are of "
            f"{old_cp.size} and {new_cp.size}"
        )
    verify_checkpoint_consistency(old_cp, new_cp, decoded.path)
    return f"OK: tree size {new_cp.size} of {new_cp.origin} extends tree size {old_cp.size}"


def verify_bundle_file(path: str | Path, log_keys: str | Path, policy: str | Path | None = None) -> list[str]:
    """Check an audit bundle offline: who authorised the agent, through which chain, at which log size; with a
    tlog-policy, that the bundle's checkpoint is cosigned by the policy's witness quorum."""
    keys = parse_key_set(read_file(log_keys, "key set"))
    loaded = load_policy(policy) if policy is not None else None
    try:
        bundle = json.loads(read_file(path, "audit bundle"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadInvalid(f"the audit bundle is not JSON: {exc}") from exc
    lines = verify_bundle(bundle, keys, loaded).lines()
    return [f"OK: {lines[0]}", *(f"  {line}" for line in lines[1:])]


def _receipt_line(v: VerifiedReceipt) -> str:
    return f"OK: entry {v.leaf_index} of tree size {v.tree_size} at {v.issuer}, receipt key {v.kid.hex()}"


def _receipt_summary(receipt: bytes) -> str:
    """What an (unverified) receipt claims, for progress output."""
    parsed = parse_receipt(receipt)
    if not parsed.inclusion:
        return "no inclusion proof"
    proof = parsed.inclusion[0]
    return f"entry {proof.leaf_index} of tree size {proof.tree_size} at {parsed.issuer}"


# --- argument parsing -----------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _print(lines: str | Sequence[str]) -> int:
    for line in [lines] if isinstance(lines, str) else lines:
        print(line)
    return 0


def _cmd_serve(a: argparse.Namespace) -> int:
    handler = logging.StreamHandler()  # hypercorn logs on its own; this is for the service's loggers
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    service_log = logging.getLogger("transparency")
    service_log.addHandler(handler)
    service_log.setLevel(logging.DEBUG if a.verbose else logging.INFO)
    serve({"data_dir": a.data, "database": a.database, "publish_dir": a.publish_dir, "host": a.host,
           "port": a.port, "origin": a.origin, "public_url": a.public_url, "max_body_bytes": a.max_body,
           "body_read_timeout_s": a.body_read_timeout, "outbound_allow": a.outbound_allow,
           "witness_policy": a.witness_policy})
    return 0


def _cmd_submit(a: argparse.Namespace) -> int:
    return _print(submit(a.url, a.statement, receipt_out=a.out, transparent_out=a.transparent, wait=a.wait,
                         progress=sys.stderr))


def _cmd_verify_receipt(a: argparse.Namespace) -> int:
    return _print(verify_receipt_files(a.log_keys, a.transparent, statement=a.statement, receipt=a.receipt,
                                       check_signer=not a.no_signer_check, policy=a.policy,
                                       checkpoint=a.checkpoint, consistency=a.consistency))


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback of an error")
    parser = _Parser(prog=PROG, parents=[common], description="Tabellion: a transparency log for "
                     "AI-agent identity (SCITT), and its offline verifier.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        sub: Any, name: str, run: Callable[[argparse.Namespace], int], help_text: str
    ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, parents=[common], help=help_text,
                                                    description=help_text)
        p.set_defaults(run=run)
        return p

    p = command(commands, "serve", _cmd_serve, "run the transparency service")
    p.add_argument("--data", type=Path, help="data folder (log database and log key)")
    p.add_argument("--database", metavar="URL", help="keep the log in this PostgreSQL database "
                   "(postgresql://user@host/db) instead of the SQLite file in the data folder; several serve "
                   "processes may share one")
    p.add_argument("--publish-dir", type=Path, metavar="DIR", help="also write the log's tiles, entry and statement "
                   "bundles and checkpoint into DIR as immutable files, for any static web server")
    p.add_argument("--host", help="address to listen on")
    p.add_argument("--port", type=int, help="port to listen on")
    p.add_argument("--origin", help="the log's origin (checkpoint origin line, receipt issuer)")
    p.add_argument("--public-url", metavar="URL", help="the URL the service is reached at, e.g. "
                   "https://log.acme.example: its did:web names did.json, status lists and tokens "
                   "(default http://HOST:PORT)")
    p.add_argument("--max-body", type=int, metavar="BYTES", help="largest statement accepted")
    p.add_argument("--body-read-timeout", type=float, metavar="SECONDS",
                   help="refuse (408) a request body that stalls this long (default 10)")
    p.add_argument("--outbound-allow", metavar="CIDRS",
                   help="address ranges webhooks may be delivered to although not public, e.g. 127.0.0.0/8")
    p.add_argument("--witness-policy", type=Path, metavar="POLICY_FILE", help="a C2SP tlog-policy: the witnesses "
                   "(with URLs) asked to cosign each checkpoint, and the quorum of GET /checkpoint/witnessed")

    p = command(commands, "keygen", lambda a: _print(keygen(a.out, a.type, force=a.force)),
                "create a signing key and print its did:key")
    p.add_argument("--type", choices=KEY_KINDS, default="ed25519")
    p.add_argument("-o", "--out", required=True, metavar="KEYFILE")
    p.add_argument("--force", action="store_true", help="overwrite an existing key file")

    p = command(commands, "sign", lambda a: _print(sign(
        a.key, a.payload, a.out, subject=a.subject, content_type=a.content_type, issuer=a.issuer,
        hash_envelope=a.hash_envelope)), "sign a payload as a COSE signed statement")
    p.add_argument("--key", required=True, metavar="KEYFILE")
    p.add_argument("--payload", required=True, metavar="FILE")
    p.add_argument("--subject", required=True)
    p.add_argument("--content-type", required=True, help="the payload's media type")
    p.add_argument("--issuer", help="CWT iss (default: the key's did:key)")
    p.add_argument("--hash-envelope", action="store_true", help="sign SHA-256 of the payload (RFC 9995)")
    p.add_argument("-o", "--out", required=True, metavar="OUT")

    p = command(commands, "submit", _cmd_submit, "register a signed statement on a log")
    p.add_argument("url", metavar="URL")
    p.add_argument("statement", metavar="STATEMENT")
    p.add_argument("-o", "--out", metavar="RECEIPT", help="write the receipt here")
    p.add_argument("--transparent", metavar="OUT", help="write the transparent statement here")
    p.add_argument("--wait", type=float, default=30.0, metavar="SECONDS",
                   help="how long to wait for a registration that is still running")

    fetch_parser = command(commands, "fetch", lambda a: 2, "download log data for offline verification")
    fetches = fetch_parser.add_subparsers(dest="what", required=True, metavar="WHAT")
    for what, help_text in (("keys", "the COSE key set of the receipt keys"),
                            ("checkpoint", "the latest signed checkpoint"),
                            ("vkey", "the checkpoint (signed-note) verifier key"),
                            ("consistency", "a consistency proof between two tree sizes"),
                            ("receipt", "the receipt of an entry"),
                            ("statement", "the transparent statement of an entry"),
                            ("audit", "the audit bundle of an agent (who authorised it, with proofs)")):
        p = command(fetches, what, lambda a: _print(fetch(a.what, a.url, a.out, old=a.old, new=a.new,
                                                          entry=a.entry, did=a.did)), help_text)
        p.add_argument("url", metavar="URL")
        p.add_argument("-o", "--out", required=True, metavar="FILE")
        p.set_defaults(old=None, new=None, entry=None, did=None)
        if what == "consistency":
            p.add_argument("--old", type=int, required=True, metavar="N")
            p.add_argument("--new", type=int, required=True, metavar="M")
        if what in ("receipt", "statement"):
            p.add_argument("--entry", required=True, metavar="ENTRY_ID")
        if what == "audit":
            p.add_argument("--did", required=True, metavar="AGENT_DID")

    p = command(commands, "follow", lambda a: _print(follow(a.url, a.log_key, a.log_keys, since=a.since, out=a.out,
                                                            progress=sys.stderr)),
                "read all of a log from its tiles (its service, or a --publish-dir folder on a static server) "
                "and check it with the log's keys")
    p.add_argument("url", metavar="URL")
    p.add_argument("--log-key", required=True, metavar="VKEY_FILE_OR_STRING")
    p.add_argument("--log-keys", required=True, metavar="KEYSET_FILE")
    p.add_argument("--since", metavar="CHECKPOINT_FILE", help="a checkpoint kept earlier: the log must extend it")
    p.add_argument("-o", "--out", metavar="FILE", help="write the verified checkpoint here")

    verify_parser = command(commands, "verify", lambda a: 2, "verify offline (no network)")
    checks = verify_parser.add_subparsers(dest="what", required=True, metavar="WHAT")
    p = command(checks, "statement", lambda a: _print(verify_statement_file(a.file)),
                "check a statement's did:key signature")
    p.add_argument("file", metavar="FILE")
    p = command(checks, "receipt", _cmd_verify_receipt, "check receipts with the log's key set")
    p.add_argument("transparent", nargs="?", metavar="TRANSPARENT_FILE")
    p.add_argument("--log-keys", required=True, metavar="KEYSET_FILE")
    p.add_argument("--statement", metavar="FILE")
    p.add_argument("--receipt", metavar="FILE")
    p.add_argument("--no-signer-check", action="store_true",
                   help="check only the receipt, not the statement's did:key signature")
    p.add_argument("--policy", metavar="POLICY_FILE", help="a C2SP tlog-policy: the receipts must lead to a "
                   "checkpoint its witness quorum cosigned (with --checkpoint)")
    p.add_argument("--checkpoint", metavar="CHECKPOINT_FILE", help="the cosigned checkpoint (with --policy)")
    p.add_argument("--consistency", metavar="PROOF_FILE",
                   help="the consistency proof from the receipts' tree size to the checkpoint's")
    p = command(checks, "checkpoint", lambda a: _print(verify_checkpoint_file(a.file, a.log_key, a.origin,
                                                                              a.policy)),
                "check a signed checkpoint with the log's verifier key (and its witnesses with a policy)")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--log-key", metavar="VKEY_FILE_OR_STRING", help="the log's verifier key (optional with a "
                   "--policy that lists the log)")
    p.add_argument("--origin")
    p.add_argument("--policy", metavar="POLICY_FILE",
                   help="a C2SP tlog-policy: the checkpoint must carry its quorum of witness cosignatures")
    p = command(checks, "consistency", lambda a: _print(verify_consistency_files(
        a.old, a.new, a.proof, a.log_key, a.origin)), "check that one checkpoint extends another")
    p.add_argument("--old", required=True, metavar="CP1")
    p.add_argument("--new", required=True, metavar="CP2")
    p.add_argument("--proof", required=True, metavar="PROOF_FILE")
    p.add_argument("--log-key", required=True, metavar="VKEY_FILE_OR_STRING")
    p.add_argument("--origin")
    add_operator_commands(commands, command, _print)
    add_admin_commands(commands, command, _print)
    add_fsck_command(commands, command)
    add_gateway_commands(commands, command, _print)
    add_enrol_commands(commands, command, _print)
    add_witness_command(commands, command, _print)
    add_monitor_command(commands, command)
    add_console_commands(commands, command, _print)
    p = command(checks, "bundle", lambda a: _print(verify_bundle_file(a.file, a.log_keys, a.policy)),
                "check an audit bundle: who authorised an agent, through which chain")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--log-keys", required=True, metavar="KEYSET_FILE")
    p.add_argument("--policy", metavar="POLICY_FILE",
                   help="a C2SP tlog-policy: the bundle's checkpoint must carry its quorum of witness cosignatures")
    return parser


def run(argv: Sequence[str]) -> int:
    """Run one command; 0 on success, 1 on an error (one line on stderr), 2 on a usage error."""
    verbose = "-v" in argv or "--verbose" in argv
    try:
        args = build_parser().parse_args(list(argv))
        args.verbose = getattr(args, "verbose", False)
        verbose = args.verbose
        code: int = args.run(args)
        return code
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    except UsageError as exc:
        return _fail(exc, 2, verbose)
    except (TabellionError, OSError) as exc:
        return _fail(exc, 1, verbose)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the one edge where any error becomes one line
        return _fail(exc, 1, verbose, unexpected=True)


def _fail(exc: BaseException, code: int, verbose: bool, *, unexpected: bool = False) -> int:
    if verbose:
        traceback.print_exception(exc, file=sys.stderr)
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror and not exc.filename else str(exc)
    message = " ".join(text.split()) or type(exc).__name__
    if unexpected:
        hint = "" if verbose else " (--verbose shows the traceback)"
        message = f"unexpected {type(exc).__name__}: {message}{hint}"
    stable = _stable_code(exc)
    if stable:
        message = f"{message} [{stable}]"
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


_CODE = re.compile(r"[a-z0-9][a-z0-9-]{0,79}")


def _stable_code(exc: BaseException) -> str | None:
    """The refusal's stable code, shown at the end of the line for a script or a search: the server's, when a log
    refused a request with a Tabellion problem, else the error's own."""
    if isinstance(exc, LogRequestRefused) and exc.problem_type and exc.problem_type.startswith(PROBLEM_TYPE_BASE):
        code = exc.problem_type[len(PROBLEM_TYPE_BASE):]  # a server's words: shown only if it looks like a code
        return code if _CODE.fullmatch(code) else None
    if isinstance(exc, TabellionError) and exc.code != TabellionError.code:
        return exc.code
    return None
