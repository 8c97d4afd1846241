"""The ``tabellion`` command: every command through ``run(argv)``, against a real server where it needs one.

Errors must be exactly one line on stderr (``tabellion: error: …``) with exit status 1 (2 for usage).
"""

from __future__ import annotations

import base64
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cbor2
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from cli.commands import fetch, keygen, load_vkey, sign, submit
from schemas.checkpoint import parse_checkpoint
from schemas.cose_sign1 import decode_sign1
from schemas.leaf import entry_id, leaf_data
from schemas.note import ed25519_vkey, parse_note
from schemas.proofs import ConsistencyProof
from schemas.statement import parse_statement
from tests.server import HeldCommits, ServerUrl, commits_held, running_server
from tests.unit.cli.cli_runs import Capsys, ok, one_line_error, tabellion
from tests.waiting import wait_for
from verifier.keys import KeySet, parse_key_set

ORIGIN = "tabellion.localhost/log"


def flip_last_byte(source: Path, target: Path) -> Path:
    data = bytearray(source.read_bytes())
    data[-1] ^= 0x01
    target.write_bytes(bytes(data))
    return target


# --- keys, signing, offline statement checks --------------------------------------------------------


@pytest.mark.parametrize("kind", ["ed25519", "p256"])
def test_keygen_sign_verify_statement(tmp_path: Path, capsys: Capsys, kind: str) -> None:
    key = tmp_path / "signer.pem"
    did = ok(tabellion(capsys, "keygen", "--type", kind, "-o", key)).strip()
    assert did.startswith("did:key:z") and "\n" not in did
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    (tmp_path / "payload.json").write_bytes(b'{"hello":"world"}')
    out = ok(tabellion(capsys, "sign", "--key", key, "--payload", tmp_path / "payload.json", "--subject",
                       "did:example:agent", "--content-type", "application/json", "-o", tmp_path / "s.cose"))
    assert f"signed by {did}" in out
    statement = parse_statement((tmp_path / "s.cose").read_bytes())
    assert (statement.issuer, statement.subject, statement.content_type) == (
        did, "did:example:agent", "application/json")
    line = ok(tabellion(capsys, "verify", "statement", tmp_path / "s.cose"))
    assert line.startswith(f"OK: statement by {did} about did:example:agent") and line.count("\n") == 1


def test_sign_hash_envelope(tmp_path: Path, capsys: Capsys) -> None:
    keygen(tmp_path / "k.pem")
    (tmp_path / "doc.pdf").write_bytes(b"%PDF-1.7 " * 500)
    ok(tabellion(capsys, "sign", "--key", tmp_path / "k.pem", "--payload", tmp_path / "doc.pdf",
                 "--subject", "s", "--content-type", "application/pdf", "--hash-envelope",
                 "-o", tmp_path / "h.cose"))
    statement = parse_statement((tmp_path / "h.cose").read_bytes())
    assert statement.payload_hash_alg == -16 and statement.content_type == "application/pdf"
    line = ok(tabellion(capsys, "verify", "statement", tmp_path / "h.cose"))
    assert "hash envelope of application/pdf" in line


def test_tampered_statement_is_one_line_error(tmp_path: Path, capsys: Capsys) -> None:
    keygen(tmp_path / "k.pem")
    (tmp_path / "p").write_bytes(b"payload")
    sign(tmp_path / "k.pem", tmp_path / "p", tmp_path / "s.cose", subject="s", content_type="text/plain")
    flip_last_byte(tmp_path / "s.cose", tmp_path / "bad.cose")
    assert one_line_error(tabellion(capsys, "verify", "statement", tmp_path / "bad.cose")).startswith(
        "Signature invalid:")
    (tmp_path / "junk").write_bytes(b"\xff\x00junk")
    message = one_line_error(tabellion(capsys, "verify", "statement", tmp_path / "junk"))
    assert message.startswith("Malformed CBOR:") and message.endswith(" [malformed-cbor]"), message  # its code


def test_statement_whose_issuer_is_not_its_did_key_does_not_verify(
    tmp_path: Path, capsys: Capsys
) -> None:
    keygen(tmp_path / "k.pem")
    (tmp_path / "p").write_bytes(b"payload")
    sign(tmp_path / "k.pem", tmp_path / "p", tmp_path / "s.cose", subject="s", content_type="text/plain",
         issuer="did:example:someone-else")
    message = one_line_error(tabellion(capsys, "verify", "statement", tmp_path / "s.cose"))
    assert message.startswith("Signer cannot be resolved:")


def test_keygen_keeps_an_existing_key_unless_forced(tmp_path: Path, capsys: Capsys) -> None:
    first = keygen(tmp_path / "k.pem")
    assert "already exists" in one_line_error(tabellion(capsys, "keygen", "-o", tmp_path / "k.pem"))
    second = ok(tabellion(capsys, "keygen", "--force", "-o", tmp_path / "k.pem")).strip()
    assert second != first


def test_sign_with_a_file_that_is_not_a_key(tmp_path: Path, capsys: Capsys) -> None:
    (tmp_path / "p").write_bytes(b"payload")
    args: list[str | Path] = ["sign", "--payload", tmp_path / "p", "--subject", "s", "--content-type", "a/b",
                              "-o", tmp_path / "o"]
    assert one_line_error(tabellion(capsys, *args, "--key", tmp_path / "p")).startswith("Malformed key:")
    assert "cannot read key file" in one_line_error(tabellion(capsys, *args, "--key", tmp_path / "absent"))
    assert not (tmp_path / "o").exists()


def test_missing_input_file(tmp_path: Path, capsys: Capsys) -> None:
    message = one_line_error(tabellion(capsys, "verify", "statement", tmp_path / "absent.cose"))
    assert message == f"cannot read the statement {tmp_path / 'absent.cose'}: No such file or directory"


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["keygen"],
        ["keygen", "--type", "rsa", "-o", "k"],
        ["verify"],
        ["verify", "receipt", "--log-keys", "keys.cbor"],
        ["verify", "receipt", "--log-keys", "keys.cbor", "--statement", "s.cose"],
        ["verify", "receipt", "--log-keys", "keys.cbor", "t.cose", "--receipt", "r.cose"],
        ["fetch", "consistency", "http://127.0.0.1:9", "-o", "p", "--old", "1"],
        ["serve", "--port", "eighty"],
    ],
)
def test_usage_errors_exit_2_with_one_line(capsys: Capsys, argv: list[str]) -> None:
    one_line_error(tabellion(capsys, *argv), code=2)


def test_help_exits_0(capsys: Capsys) -> None:
    ran = tabellion(capsys, "verify", "receipt", "--help")
    assert ran.code == 0 and "--log-keys" in ran.out


def test_verbose_shows_the_traceback(tmp_path: Path, capsys: Capsys) -> None:
    (tmp_path / "junk").write_bytes(b"\x18")
    ran = tabellion(capsys, "--verbose", "verify", "statement", tmp_path / "junk")
    assert ran.code == 1
    assert "Traceback (most recent call last)" in ran.err
    assert ran.err.splitlines()[-1].startswith("tabellion: error: Malformed CBOR:")
    ran = tabellion(capsys, "verify", "statement", tmp_path / "junk", "-v")
    assert "Traceback" in ran.err


def test_serve_refuses_bad_settings_before_starting(tmp_path: Path, capsys: Capsys) -> None:
    message = one_line_error(tabellion(capsys, "serve", "--data", tmp_path, "--origin", "two words"))
    assert message.startswith("Configuration error:")


# --- against a real server ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Log:
    """A log with two entries, and everything an auditor fetched from it."""

    url: ServerUrl
    dir: Path
    statement1: Path
    receipt1: Path
    transparent1: Path
    statement2: Path
    receipt2: Path
    keys: Path
    vkey: Path
    checkpoint1: Path
    checkpoint2: Path
    proof: Path


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Log]:
    root = tmp_path_factory.mktemp("cli-log")
    with running_server(root) as url:
        d = root / "files"
        d.mkdir()
        keygen(d / "ed.pem")
        keygen(d / "p256.pem", "p256")
        (d / "payload.json").write_bytes(b'{"act":"issue"}')
        sign(d / "ed.pem", d / "payload.json", d / "s1.cose", subject="did:example:a1",
             content_type="application/json")
        sign(d / "p256.pem", d / "payload.json", d / "s2.cose", subject="did:example:a2",
             content_type="application/json", hash_envelope=True)
        submit(url, d / "s1.cose", receipt_out=d / "r1.cose", transparent_out=d / "t1.cose")
        fetch("checkpoint", url, d / "cp1")
        submit(url, d / "s2.cose", receipt_out=d / "r2.cose")
        fetch("checkpoint", url, d / "cp2")
        fetch("consistency", url, d / "proof", old=1, new=2)
        fetch("keys", url, d / "keys.cbor")
        fetch("vkey", url, d / "vkey")
        yield Log(url, d, d / "s1.cose", d / "r1.cose", d / "t1.cose", d / "s2.cose", d / "r2.cose",
                  d / "keys.cbor", d / "vkey", d / "cp1", d / "cp2", d / "proof")


def test_serve_announces_itself(log: Log) -> None:
    assert f"tabellion: serving {ORIGIN} on {log.url} (data {log.url.data_dir})" in log.url.log()


def test_submit_writes_receipt_and_transparent_statement(
    log: Log, tmp_path: Path, capsys: Capsys
) -> None:
    (tmp_path / "p").write_bytes(b'{"n":3}')
    keygen(tmp_path / "k.pem")
    sign(tmp_path / "k.pem", tmp_path / "p", tmp_path / "s.cose", subject="s", content_type="text/plain")
    out = ok(tabellion(capsys, "submit", log.url, tmp_path / "s.cose", "-o", tmp_path / "r.cose",
                       "--transparent", tmp_path / "t.cose")).splitlines()
    entry = out[0].removeprefix("entry ")
    assert len(entry) == 64
    assert out[1] == f"location {log.url}/entries/{entry}"
    assert out[2].startswith(f"receipt {tmp_path / 'r.cose'} (entry ")
    assert out[3] == f"transparent statement {tmp_path / 't.cose'}"
    line = ok(tabellion(capsys, "verify", "receipt", "--log-keys", log.keys, tmp_path / "t.cose"))
    assert line.startswith("OK: entry ") and f"at {ORIGIN}, receipt key " in line
    ok(tabellion(capsys, "verify", "receipt", "--log-keys", log.keys, "--statement", tmp_path / "s.cose",
                 "--receipt", tmp_path / "r.cose"))
    again = ok(tabellion(capsys, "submit", log.url, tmp_path / "s.cose")).splitlines()
    assert again[0] == out[0], "re-submitting returns the existing entry"


def test_submit_refused_statement(log: Log, tmp_path: Path, capsys: Capsys) -> None:
    (tmp_path / "junk.cose").write_bytes(b"\xd2\x84junk")
    message = one_line_error(tabellion(capsys, "submit", log.url, tmp_path / "junk.cose"))
    assert message.startswith("Malformed CBOR:") and message.endswith(" [malformed-cbor]"), message  # the log's code


def test_submit_to_an_unreachable_log(tmp_path: Path, capsys: Capsys) -> None:
    (tmp_path / "s.cose").write_bytes(b"x")
    message = one_line_error(tabellion(capsys, "submit", "http://127.0.0.1:9", tmp_path / "s.cose"))
    assert message.startswith("Log unreachable:")


def test_fetch_through_run(log: Log, tmp_path: Path, capsys: Capsys) -> None:
    ok(tabellion(capsys, "fetch", "keys", log.url, "-o", tmp_path / "keys"))
    assert len(parse_key_set((tmp_path / "keys").read_bytes())) == 1
    ok(tabellion(capsys, "fetch", "vkey", log.url, "-o", tmp_path / "vkey"))
    assert (tmp_path / "vkey").read_text().startswith(f"{ORIGIN}+")
    ok(tabellion(capsys, "fetch", "checkpoint", log.url, "-o", tmp_path / "cp"))
    assert parse_checkpoint(parse_note((tmp_path / "cp").read_text()).text).size >= 2
    ok(tabellion(capsys, "fetch", "consistency", log.url, "--old", "1", "--new", "2",
                 "-o", tmp_path / "proof"))
    assert ConsistencyProof.decode((tmp_path / "proof").read_bytes()).size2 == 2
    entry = parse_entry(log.transparent1)
    ok(tabellion(capsys, "fetch", "receipt", log.url, "--entry", entry, "-o", tmp_path / "r"))
    assert (tmp_path / "r").read_bytes() == log.receipt1.read_bytes()
    ok(tabellion(capsys, "fetch", "statement", log.url, "--entry", entry, "-o", tmp_path / "t"))
    assert (tmp_path / "t").read_bytes() == log.transparent1.read_bytes()


def parse_entry(transparent: Path) -> str:
    return entry_id(leaf_data(decode_sign1(transparent.read_bytes())))


def test_fetch_refusals_are_one_line(log: Log, tmp_path: Path, capsys: Capsys) -> None:
    message = one_line_error(tabellion(capsys, "fetch", "consistency", log.url, "--old", "2", "--new", "1",
                                       "-o", tmp_path / "p"))
    assert message.startswith("Invalid request parameter: need 1 <= old <= new")
    message = one_line_error(tabellion(capsys, "fetch", "receipt", log.url, "--entry", "00" * 32,
                                       "-o", tmp_path / "r"))
    assert message.startswith("Entry not found:")
    assert not (tmp_path / "p").exists() and not (tmp_path / "r").exists()


# verify receipt


def test_verify_receipt_good(log: Log, capsys: Capsys) -> None:
    line = ok(tabellion(capsys, "verify", "receipt", "--log-keys", log.keys, log.transparent1))
    kid = next(iter(parse_key_set(log.keys.read_bytes()))).hex()
    assert line.startswith(f"OK: entry 0 of tree size 1 at {ORIGIN}, receipt key {kid}, "
                           "statement signed by did:key:")
    line = ok(tabellion(capsys, "verify", "receipt", "--log-keys", log.keys, "--statement", log.statement2,
                        "--receipt", log.receipt2))
    assert line.startswith(f"OK: entry 1 of tree size 2 at {ORIGIN}, receipt key {kid}")
    line = ok(tabellion(capsys, "verify", "receipt", "--log-keys", log.keys, "--no-signer-check",
                        log.transparent1))
    assert line == f"OK: entry 0 of tree size 1 at {ORIGIN}, receipt key {kid}\n"


def test_verify_receipt_tampered(log: Log, tmp_path: Path, capsys: Capsys) -> None:
    def verify(*args: str | Path) -> str:
        return one_line_error(tabellion(capsys, "verify", "receipt", "--log-keys", *args))

    bad_receipt = flip_last_byte(log.receipt1, tmp_path / "bad-receipt")
    assert verify(log.keys, "--statement", log.statement1, "--receipt", bad_receipt).startswith(
        "Receipt signature invalid:")
    assert verify(log.keys, "--statement", log.statement1, "--receipt", log.receipt2).startswith(
        "Receipt signature invalid:")
    other_keys = tmp_path / "other-keys"
    other_keys.write_bytes(KeySet.from_keys([Ed25519PrivateKey.generate().public_key()]).encode())
    assert verify(other_keys, log.transparent1).startswith("Key unknown:")
    tag = cbor2.loads(log.transparent1.read_bytes())
    parts = list(tag.value)  # cbor2 6 decodes arrays as tuples
    parts[2] = parts[2].replace(b"issue", b"revok")
    (tmp_path / "t.cose").write_bytes(cbor2.dumps(cbor2.CBORTag(tag.tag, parts)))
    assert verify(log.keys, tmp_path / "t.cose").startswith("Signature invalid:")
    assert verify(log.keys, "--no-signer-check", tmp_path / "t.cose").startswith("Receipt signature invalid:")
    assert verify(log.keys, log.statement1).startswith("Malformed receipt:")  # no receipts (394)
    assert verify(log.receipt1, log.transparent1).startswith("Malformed key:")


# verify checkpoint


def test_verify_checkpoint_good(log: Log, capsys: Capsys) -> None:
    line = ok(tabellion(capsys, "verify", "checkpoint", log.checkpoint2, "--log-key", log.vkey))
    assert line.startswith(f"OK: checkpoint of {ORIGIN} at tree size 2, root ")
    inline = log.vkey.read_text().strip()
    ok(tabellion(capsys, "verify", "checkpoint", log.checkpoint1, "--log-key", inline, "--origin", ORIGIN))


def test_verify_checkpoint_tampered(log: Log, tmp_path: Path, capsys: Capsys) -> None:
    def verify(checkpoint: Path, *args: str | Path) -> str:
        return one_line_error(tabellion(capsys, "verify", "checkpoint", checkpoint, *args))

    lines = log.checkpoint2.read_text().split("\n")
    root = bytearray(base64.b64decode(lines[2]))
    root[0] ^= 1
    lines_with_other_root = [lines[0], lines[1], base64.b64encode(root).decode(), *lines[3:]]
    (tmp_path / "root").write_text("\n".join(lines_with_other_root))
    assert verify(tmp_path / "root", "--log-key", log.vkey).startswith("Checkpoint signature invalid:")
    (tmp_path / "size").write_text("\n".join([lines[0], "3", *lines[2:]]))
    assert verify(tmp_path / "size", "--log-key", log.vkey).startswith("Checkpoint signature invalid:")
    assert verify(log.checkpoint2, "--log-key", log.vkey, "--origin", "other.example/log").startswith(
        "Checkpoint signature invalid:")
    stranger = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert verify(log.checkpoint2, "--log-key", ed25519_vkey(ORIGIN, stranger).encode()).startswith(
        "Checkpoint signature invalid:")
    assert verify(log.checkpoint2, "--log-key", "nonsense").startswith("Invalid request parameter:")
    assert verify(log.proof, "--log-key", log.vkey).startswith("Malformed signed note:")


# verify consistency


def test_verify_consistency_good(log: Log, capsys: Capsys) -> None:
    line = ok(tabellion(capsys, "verify", "consistency", "--old", log.checkpoint1, "--new", log.checkpoint2,
                        "--proof", log.proof, "--log-key", log.vkey))
    assert line == f"OK: tree size 2 of {ORIGIN} extends tree size 1\n"


def test_verify_consistency_tampered(log: Log, tmp_path: Path, capsys: Capsys) -> None:
    def verify(old: Path, new: Path, proof: Path) -> str:
        return one_line_error(tabellion(capsys, "verify", "consistency", "--old", old, "--new", new,
                                        "--proof", proof, "--log-key", log.vkey))

    bad = flip_last_byte(log.proof, tmp_path / "bad-proof")
    assert verify(log.checkpoint1, log.checkpoint2, bad).startswith("Checkpoint inconsistent:")
    assert verify(log.checkpoint2, log.checkpoint1, log.proof).startswith("Consistency proof invalid:")
    (tmp_path / "other").write_bytes(ConsistencyProof(1, 3, ()).encode())
    message = verify(log.checkpoint1, log.checkpoint2, tmp_path / "other")
    assert message.startswith("Consistency proof invalid:")
    (tmp_path / "junk").write_bytes(b"\x83")
    assert verify(log.checkpoint1, log.checkpoint2, tmp_path / "junk").startswith("Malformed receipt:")


# registration that is still running (202)


def test_submit_polls_a_registration_still_running(tmp_path: Path, capsys: Capsys) -> None:
    keygen(tmp_path / "k.pem")
    (tmp_path / "p").write_bytes(b"{}")
    sign(tmp_path / "k.pem", tmp_path / "p", tmp_path / "s1.cose", subject="s1", content_type="text/plain")
    sign(tmp_path / "k.pem", tmp_path / "p", tmp_path / "s2.cose", subject="s2", content_type="text/plain")
    with running_server(tmp_path / "srv", registration_timeout_s=0.2) as url:
        held = HeldCommits(url)
        location = f"{url}/entries/{entry_id(leaf_data(decode_sign1((tmp_path / 's1.cose').read_bytes())))}"

        def release_once_pending() -> None:  # once the CLI has had its 202 (at the 0.2 s timeout) and polls
            try:
                wait_for(lambda: httpx.get(location).status_code == 204, "the registration to be pending")
                time.sleep(2.0)
            finally:
                held.release()

        threading.Thread(target=release_once_pending, daemon=True).start()
        ran = tabellion(capsys, "submit", url, tmp_path / "s1.cose", "-o", tmp_path / "r1.cose")
        assert ran.code == 0, ran.err
        assert "is being registered" in ran.err
        assert (tmp_path / "r1.cose").read_bytes()[:1] == b"\xd2"
        with commits_held(url):
            ran = tabellion(capsys, "submit", url, tmp_path / "s2.cose", "--wait", "0")
        assert ran.code == 1
        last = ran.err.splitlines()[-1]
        assert last.startswith("tabellion: error: Registration still running: entry ")
        assert f"{url}/entries/" in last


def test_a_log_key_whose_base64_holds_a_plus_is_read(tmp_path: Path) -> None:
    vkey = ed25519_vkey(ORIGIN, b"\xfb" * 32)
    text = vkey.encode()
    assert "+" in text.split("+", 2)[2]
    assert load_vkey(text) == vkey
    (tmp_path / "vkey").write_text(text + "\n")
    assert load_vkey(str(tmp_path / "vkey")) == vkey
