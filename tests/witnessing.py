"""Test helpers for witnessing: a log that signs checkpoints of a tree it holds in memory (and can fork), and
``tabellion witness`` processes on free 127.0.0.1 ports.

    log = TestLog("example.test/log")
    log.append(5)
    body = log.add_checkpoint(old=0, size=5)          # an add-checkpoint request body
    with running_witness(tmp_path, "w1.test", [log.vkey]) as w:
        httpx.post(f"{w}/add-checkpoint", content=body)
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from schemas.checkpoint import Checkpoint
from schemas.leaf import leaf_hash
from schemas.note import Note, NoteSignature, VerifierKey, ed25519_vkey
from schemas.policy import Policy, parse_policy
from schemas.witness import AddCheckpoint
from tests.merkle_reference import consistency_proof, mth
from tests.server import REPO, START_TIMEOUT_S, ServerUrl, free_port, start_server
from witness.config import load_config


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


class TestLog:
    """A log that signs checkpoints of its in-memory leaves with its own key (as a real log, or a lying one)."""

    __test__ = False  # not a pytest class

    def __init__(self, origin: str = "example.test/log", private: Ed25519PrivateKey | None = None,
                 tag: str = "") -> None:
        self.private = private or Ed25519PrivateKey.generate()
        self.vkey: VerifierKey = ed25519_vkey(origin, raw_public(self.private))
        self.origin = origin
        self.tag = tag  # a fork of the same log appends other leaves under the same key
        self.leaves: list[bytes] = []

    def append(self, n: int) -> int:
        start = len(self.leaves)
        self.leaves += [leaf_hash(hashlib.sha256(f"{self.tag}{i}".encode()).digest()) for i in range(start, start + n)]
        return len(self.leaves)

    def fork(self, at: int, tag: str) -> TestLog:
        """The same log (same key) that agrees on the first ``at`` leaves and then appends others."""
        other = TestLog(self.origin, self.private, tag)
        other.leaves = list(self.leaves[:at])
        return other

    def checkpoint(self, size: int | None = None, extensions: Sequence[str] = ()) -> Checkpoint:
        size = len(self.leaves) if size is None else size
        return Checkpoint(self.origin, size, mth(self.leaves[:size]), tuple(extensions))

    def sign(self, checkpoint: Checkpoint, *extra: NoteSignature) -> str:
        body = checkpoint.body()
        own = NoteSignature(self.vkey.name, self.vkey.key_id, self.private.sign(body.encode()))
        return Note(body, (own, *extra)).encode()

    def signed(self, size: int | None = None) -> str:
        return self.sign(self.checkpoint(size))

    def proof(self, old: int, new: int) -> tuple[bytes, ...]:
        if old == 0 or old == new:
            return ()
        return tuple(consistency_proof(old, self.leaves[:new]))

    def add_checkpoint(self, old: int, size: int | None = None) -> bytes:
        size = len(self.leaves) if size is None else size
        return AddCheckpoint(old, self.proof(old, size), self.signed(size)).encode()


class WitnessUrl(ServerUrl):
    config_path: Path


def write_witness_config(folder: Path, name: str, logs: Sequence[VerifierKey], port: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "witness.toml"
    tables = "".join(f'\n[[logs]]\nvkey = "{vkey.encode()}"\n' for vkey in logs)
    config.write_text(f'name = "{name}"\nport = {port}\ndata_dir = "data"\nkey_file = "witness-key.pem"\n{tables}')
    return config


def start_witness(folder: Path, name: str, logs: Sequence[VerifierKey], port: int | None = None) -> WitnessUrl:
    """Start ``tabellion witness`` (a real process) and wait until it answers; the caller stops it."""
    config = folder / "witness.toml"
    if config.exists():  # a restart: same configuration, same port
        port = load_config(config).port
    else:
        port = port or free_port()
        config = write_witness_config(folder, name, logs, port)
    log_path = folder / f"witness-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TABELLION_")}
    log: IO[bytes]
    with log_path.open("ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "cli.main", "witness", "--config", str(config)], cwd=REPO,
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
    url = WitnessUrl(f"http://127.0.0.1:{port}", process, folder / "data", log_path)
    url.config_path = config
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the witness exited with {process.returncode}:\n{url.log()}")
        try:
            httpx.get(f"{url}/health", timeout=1.0)  # any answer: it listens
            return url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            url.terminate()
            raise RuntimeError(f"the witness did not answer in {START_TIMEOUT_S}s:\n{url.log()}")
        time.sleep(0.05)


@contextmanager
def running_witness(folder: Path, name: str, logs: Sequence[VerifierKey]) -> Iterator[WitnessUrl]:
    url = start_witness(folder, name, logs)
    try:
        yield url
    finally:
        url.terminate()


def witness_vkey(url: WitnessUrl) -> VerifierKey:
    """The witness's vkey, read with ``tabellion witness --vkey``."""
    from cli.witness import witness_identity
    from schemas.note import parse_vkey

    return parse_vkey(witness_identity(url.config_path)[0])


class Deployment:
    """A log (``tabellion serve``) asking witnesses (``tabellion witness``), all real processes, with the policy
    file both the log and relying parties read."""

    def __init__(self, log: ServerUrl, witnesses: list[WitnessUrl], policy_path: Path, log_vkey: VerifierKey) -> None:
        self.log = log
        self.witnesses = witnesses
        self.policy_path = policy_path
        self.log_vkey = log_vkey

    @property
    def policy(self) -> Policy:
        return parse_policy(self.policy_path.read_bytes())

    def restart_witness(self, i: int) -> WitnessUrl:
        old = self.witnesses[i]
        self.witnesses[i] = start_witness(old.config_path.parent, "", [])
        return self.witnesses[i]

    def stop(self) -> None:
        for w in self.witnesses:
            w.terminate()
        self.log.terminate()


def policy_text(log_vkey: VerifierKey, witnesses: Sequence[tuple[str, VerifierKey, str | None]], quorum: int) -> str:
    lines = [f"log {log_vkey.encode()}"]
    lines += [f"witness {name} {vkey.encode()}" + (f" {url}" if url else "") for name, vkey, url in witnesses]
    lines += [f"group quorum {quorum} {' '.join(name for name, _, _ in witnesses)}", "quorum quorum"]
    return "\n".join(lines) + "\n"


WITNESS_TIMEOUT_S = 2.0  # how long the log waits for a witness's answer, unless a test sets another


@contextmanager
def witnessed_deployment(tmp_path: Path, witnesses: int = 3, quorum: int = 2,
                         origin: str = "tabellion.localhost/log", **settings: object) -> Iterator[Deployment]:
    """``witnesses`` witness processes, and a log whose witness policy names them all with a quorum of
    ``quorum``; the log retries a failed witness after at most 1 s and waits ``WITNESS_TIMEOUT_S`` for one."""
    from transparency.keys import load_or_create_log_key

    data = tmp_path / "log-data"
    log_vkey = load_or_create_log_key(data / "log-key.pem").note_key(origin)
    started: list[WitnessUrl] = []
    log: ServerUrl | None = None
    try:
        for i in range(witnesses):
            started.append(start_witness(tmp_path / f"w{i}", f"witness{i}.test/w", [log_vkey]))
        entries = [(f"w{i}", witness_vkey(w), str(w)) for i, w in enumerate(started)]
        policy_path = tmp_path / "log.policy"
        policy_path.write_text(policy_text(log_vkey, entries, quorum))
        values: dict[str, object] = {"witness_max_backoff_s": 1.0, "witness_timeout_s": WITNESS_TIMEOUT_S}
        values.update(settings)
        log = start_server(tmp_path, data_dir=data, origin=origin, witness_policy=policy_path, **values)
        deployment = Deployment(log, started, policy_path, log_vkey)
        yield deployment
    finally:
        for w in started:
            w.terminate()
        if log is not None:
            log.terminate()
