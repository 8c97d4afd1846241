"""tlog-cosignature against an independent implementation: Go's golang.org/x/mod/sumdb/note (Debian's
golang-golang-x-mod-dev) and crypto/ed25519, through ``tests/interop/notecheck``.

- Go-made cosignatures (kept in ``tests/vectors/c2sp-witness/go_cosignatures.json``) verify here, our cosigner
  makes them byte for byte, and every mutation of them is refused;
- a checkpoint of a real log cosigned by our witness opens with Go's ``note.Open`` knowing only the log's key
  (signed-note: signatures by unknown keys are ignored), and with the witnesses' keys too.

The Go program is built offline, in GOPATH mode; the Go tests are skipped, saying why, when Go or the package
is missing. The stored vectors are checked either way.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.errors import NoteSignatureInvalid
from schemas.note import Note, NoteSignature, VerifierKey, parse_note, parse_signature_line, parse_vkey
from schemas.witness import AddCheckpoint
from tests.server import REPO
from tests.vectors import vectors_dir
from transparency.client import generate_key, sign_statement
from transparency.service import TransparencyService
from transparency.settings import Settings
from verifier.notes import verify_cosignature
from witness.config import WitnessConfig
from witness.cosigner import Cosigner
from witness.service import Witness
from witness.store import WitnessStore

VECTORS: list[dict[str, Any]] = json.loads(
    (vectors_dir() / "c2sp-witness" / "go_cosignatures.json").read_text())["cosignatures"]
GOPATH = Path("/usr/share/gocode")
SOURCE = REPO / "tests" / "interop" / "notecheck" / "main.go"


def _line(vector: dict[str, Any]) -> NoteSignature:
    return parse_signature_line(vector["cosignature_line"].removesuffix("\n"))


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_go_cosignatures_verify_and_match_ours(vector: dict[str, Any]) -> None:
    vkey = parse_vkey(vector["vkey"])
    line = _line(vector)
    assert verify_cosignature(Note(vector["text"], (line,)), vkey) == vector["timestamp"]
    ours = Cosigner(vector["name"], Ed25519PrivateKey.from_private_bytes(bytes.fromhex(vector["seed_hex"])))
    assert ours.vkey == vkey
    assert ours.cosign(vector["text"], vector["timestamp"]) == line  # Ed25519 is deterministic: the same bytes


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_mutated_go_cosignatures_refused(vector: dict[str, Any]) -> None:
    vkey = parse_vkey(vector["vkey"])
    line = _line(vector)
    stamp, signature = line.signature[:8], line.signature[8:]
    other_time = (int.from_bytes(stamp, "big") ^ 1).to_bytes(8, "big")
    text = vector["text"]
    cases = [
        (text, replace(line, signature=other_time + signature)),
        (text, replace(line, signature=stamp + _flip(signature, 3))),
        (text, replace(line, signature=stamp + _flip(signature, 511))),
        (text, replace(line, signature=_flip(stamp, 0) + signature)),  # the top bit: a time above 2^63-1
        (text, replace(line, signature=line.signature[:-1])),
        (text.replace("\n", "\n ", 1), line),
        (text + "extra\n", line),
        (text, replace(line, key_id=_flip(line.key_id, 7))),
        (text, replace(line, name=line.name + "x")),
    ]
    for mutated_text, mutated in cases:
        with pytest.raises(NoteSignatureInvalid):
            verify_cosignature(Note(mutated_text, (mutated,)), vkey)


# --- with Go -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def notecheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go")
    if go is None:
        pytest.skip("Go is not installed (Debian: golang-go): the Go interop tests need it")
    if not (GOPATH / "src" / "golang.org" / "x" / "mod" / "sumdb" / "note" / "note.go").is_file():
        pytest.skip(f"golang.org/x/mod/sumdb/note is not under {GOPATH} (Debian: golang-golang-x-mod-dev)")
    folder = tmp_path_factory.mktemp("notecheck")
    binary = folder / "notecheck"
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": str(GOPATH), "GOCACHE": str(folder / "cache"),
           "GOFLAGS": "", "GOPROXY": "off", "CGO_ENABLED": "0"}
    built = subprocess.run([go, "build", "-o", str(binary), str(SOURCE)], env=env, capture_output=True, text=True,
                           cwd=folder, check=False, timeout=300)
    if built.returncode != 0:
        pytest.fail(f"building {SOURCE} failed:\n{built.stderr}")
    return binary


def _go(binary: Path, *args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binary), *args], input=stdin, capture_output=True, text=True, check=False, timeout=30)


@pytest.fixture
def cosigned(tmp_path: Path) -> Iterator[tuple[str, VerifierKey, list[VerifierKey]]]:
    """A checkpoint of a real log (3 entries), cosigned by three of our witnesses."""
    service = TransparencyService(Settings(data_dir=tmp_path / "log", origin="interop.test/log",
                                           batch_max_wait_ms=1.0))
    try:
        key = generate_key()
        for i in range(3):
            statement = sign_statement(key, f"{i}".encode(), subject="go", content_type="text/plain")
            asyncio.run(service.register(statement))
        note_text = service.checkpoint()
        log_key = service.key.note_key("interop.test/log")
    finally:
        service.close()
    note = parse_note(note_text)
    lines: list[NoteSignature] = []
    keys: list[VerifierKey] = []
    for i in range(3):
        cosigner = Cosigner(f"w{i}.interop.test", Ed25519PrivateKey.generate())
        config = WitnessConfig(cosigner.name, tmp_path / "k.pem", tmp_path / f"w{i}", {log_key.name: (log_key,)})
        witness = Witness(config, cosigner, WitnessStore(config.db_path))
        lines += witness.add_checkpoint(AddCheckpoint(0, (), note_text).encode())
        keys.append(cosigner.vkey)
    yield Note(note.text, (*note.signatures, *lines)).encode(), log_key, keys


def test_go_verifies_the_log_signature_knowing_only_the_log_key(
    notecheck: Path, cosigned: tuple[str, VerifierKey, list[VerifierKey]]
) -> None:
    note, log_key, witness_keys = cosigned
    opened = _go(notecheck, "open", log_key.encode(), stdin=note)
    assert opened.returncode == 0, opened.stderr
    lines = opened.stdout.splitlines()
    assert lines[0] == "interop.test/log"
    assert lines[1] == f"verified interop.test/log {log_key.key_id.hex()}"
    assert sorted(lines[2:]) == sorted(f"unverified {k.name} {k.key_id.hex()}" for k in witness_keys)


def test_go_verifies_every_cosignature_with_the_witness_keys(
    notecheck: Path, cosigned: tuple[str, VerifierKey, list[VerifierKey]]
) -> None:
    note, log_key, witness_keys = cosigned
    opened = _go(notecheck, "open", log_key.encode(), *(k.encode() for k in witness_keys), stdin=note)
    assert opened.returncode == 0, opened.stderr
    assert len([line for line in opened.stdout.splitlines() if line.startswith("verified ")]) == 4
    # a cosignature tampered with: ignored by a verifier that does not know the witness, refused by one that does
    parsed = parse_note(note)
    bad = replace(parsed.signatures[1], signature=_flip(parsed.signatures[1].signature, 100))
    tampered = Note(parsed.text, (parsed.signatures[0], bad, *parsed.signatures[2:])).encode()
    assert _go(notecheck, "open", log_key.encode(), stdin=tampered).returncode == 0
    assert _go(notecheck, "open", log_key.encode(), witness_keys[0].encode(), stdin=tampered).returncode == 1


def test_go_and_our_cosigner_agree_byte_for_byte(notecheck: Path) -> None:
    for i in range(5):
        seed = os.urandom(32)
        cosigner = Cosigner(f"agree{i}.test/w", Ed25519PrivateKey.from_private_bytes(seed))
        text = f"agree.test/log\n{i * 1000}\n{'A' * 43}=\n"
        made = _go(notecheck, "cosign", cosigner.name, seed.hex(), str(1_700_000_000 + i), stdin=text)
        assert made.returncode == 0, made.stderr
        assert parse_signature_line(made.stdout.removesuffix("\n")) == cosigner.cosign(text, 1_700_000_000 + i)
