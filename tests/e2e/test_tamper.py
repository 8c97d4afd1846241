"""A log written by a real server, stopped, then tampered with (``tests.log_tampering``), one class each:
``tabellion fsck`` exits 3 naming the class and the entry, and ``tabellion serve`` (and ``scripts/serve.sh``)
refuses to start with one line naming the corruption, no traceback (what only the identity fold reads, a start
from the state's snapshot leaves to fsck). A clean log passes, also while it runs."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from cli.fsck import EXIT_CORRUPTED
from schemas.cose_sign1 import decode_sign1
from schemas.errors import VerificationError
from schemas.leaf import entry_id, leaf_data
from tests.cli_process import run_cli
from tests.log_tampering import (
    copy_log,
    delete_entry,
    flip_checkpoint_signature,
    flip_entry_id,
    flip_head_root,
    flip_statement_byte,
    flip_tree_node,
    head_sizes,
    tampered,
    truncate_entries,
)
from tests.server import REPO, free_port, start_server
from transparency.client import HttpLogClient, generate_key, sign_statement
from verifier.merkle import verify_consistency

COSE = {"Content-Type": "application/cose"}
COUNT = 30
START_TIMEOUT_S = 60
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (INFO|WARNING) transparency\.")


KEY = generate_key("ed25519")
STATEMENTS = [sign_statement(KEY, b'{"n":%d}' % n, subject=f"urn:example:{n}", content_type="application/json")
              for n in range(COUNT)]


def _fsck(data: Path) -> subprocess.CompletedProcess[str]:
    return run_cli("fsck", data, timeout=START_TIMEOUT_S)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A log of ``COUNT`` entries written over HTTP by a real server, then stopped; fsck passes while it runs."""
    root = tmp_path_factory.mktemp("tamper")
    server = start_server(root, batch_max_wait_ms=1.0)
    try:
        for statement in STATEMENTS:
            assert httpx.post(f"{server}/entries", content=statement, headers=COSE).status_code == 201
        running = _fsck(server.data_dir)
        assert running.returncode == 0, running.stdout + running.stderr
        assert running.stdout.endswith(f"log of size {COUNT}: {COUNT} entries, {COUNT + 1} tree heads, "
                                       f"{2 * COUNT - bin(COUNT).count('1')} tree nodes, {COUNT} index rows "
                                       "checked: clean\n")
    finally:
        assert server.terminate() == 0
    return server.data_dir


def test_a_clean_stopped_log_passes_and_fsck_writes_nothing(pristine: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in pristine.iterdir()}
    done = _fsck(pristine)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.endswith(": clean\n") and done.stderr == ""
    assert {p.name: p.stat().st_mtime_ns for p in pristine.iterdir()} == before


def _latest(db: sqlite3.Connection) -> int:
    return head_sizes(db)[-1]


CLASSES: dict[str, tuple[Callable[[sqlite3.Connection], None], str, str, str]] = {
    # name: (tampering; fsck's class and what its line says; what the refused start says)
    "entry bytes": (lambda db: flip_statement_byte(db, 12), "statement-corrupted", "entry 12: its statement",
                    "Logged statement corrupted: entry 12: "),
    "entry id": (lambda db: flip_entry_id(db, 12), "entry-id-corrupted", "entry 12: stored entry_id",
                 "Entry id corrupted: entry 12: stored entry_id"),
    "deleted row": (lambda db: delete_entry(db, 12), "entry-missing", "entry 12 is missing",
                    "Entry missing: entry 12 is missing"),
    "tree head root": (lambda db: flip_head_root(db, _latest(db)), "tree-head-corrupted",
                       f"tree head {COUNT}: stored root", f"Tree head corrupted: tree head {COUNT}: stored root"),
    "checkpoint signature": (lambda db: flip_checkpoint_signature(db, _latest(db)), "tree-head-corrupted",
                             f"tree head {COUNT}: its checkpoint",
                             f"Tree head corrupted: tree head {COUNT}: its checkpoint"),
    "truncation": (lambda db: truncate_entries(db, COUNT - 4), "log-truncated",
                   f"entries {COUNT - 4}..{COUNT - 1} are missing", "Log truncated: the latest signed tree head"),
}


def _tampered_copy(pristine: Path, tmp_path: Path, name: str) -> Path:
    data = copy_log(pristine, tmp_path / "data")
    with tampered(data / "log.sqlite") as db:
        CLASSES[name][0](db)
    return data


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one error line of a refused start (the service's own log lines, timestamped, may come before it)."""
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    lines = [line for line in done.stderr.splitlines() if not LOG_LINE.match(line)]
    assert len(lines) == 1 and lines[0].startswith("tabellion: error: "), done.stderr
    return lines[0].removeprefix("tabellion: error: ")


@pytest.mark.parametrize("name", list(CLASSES))
def test_fsck_names_the_class_and_the_entry(pristine: Path, tmp_path: Path, name: str) -> None:
    _, code, says, _ = CLASSES[name]
    done = _fsck(_tampered_copy(pristine, tmp_path, name))
    assert done.returncode == EXIT_CORRUPTED, done.stdout + done.stderr
    problems = done.stdout.splitlines()[:-1]
    assert len(problems) == 1 and says in problems[0] and problems[0].endswith(f"[{code}]"), done.stdout
    assert done.stdout.splitlines()[-1].endswith(f"1 problem ({code} 1)")


FOLD_ONLY = {"entry bytes"}
"""Classes that only the identity fold sees at a start, as it reads each statement: a start from the state's
snapshot folds only the entries after it, so for the entries below it they are fsck's (docs/operations.md)."""


@pytest.mark.parametrize("name", list(CLASSES))
def test_serve_refuses_a_tampered_log_in_one_line(pristine: Path, tmp_path: Path, name: str) -> None:
    data = _tampered_copy(pristine, tmp_path, name)
    assert list((data / "state").glob("fold-*.cbor")), "the stop saved a snapshot of the identity state"
    if name in FOLD_ONLY:
        shutil.rmtree(data / "state")  # a start with no snapshot folds, and so checks, every entry
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "serve", "--data", str(data), "--port", str(free_port())],
        cwd=REPO, capture_output=True, text=True, timeout=START_TIMEOUT_S,
    )
    message = _one_error_line(done)
    assert message.startswith(CLASSES[name][3]), message
    assert message.endswith(f"the log was not started ('tabellion fsck {data}' checks all of it) [{CLASSES[name][1]}]")


def test_serve_sh_refuses_a_tampered_log_in_one_line(pristine: Path, tmp_path: Path) -> None:
    data = _tampered_copy(pristine, tmp_path, "entry id")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TABELLION_")}
    env.update(TABELLION_DATA=str(data), TABELLION_PORT=str(free_port()))
    done = subprocess.run(["bash", "scripts/serve.sh"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=START_TIMEOUT_S)
    assert _one_error_line(done).startswith("Entry id corrupted: entry 12: stored entry_id")


def test_a_flipped_entry_id_is_not_served_as_missing_nor_logged_twice(pristine: Path, tmp_path: Path) -> None:
    """The issue: the entry answered 404 and re-submitting it added a second leaf. The start now refuses the
    log, so neither can happen; the untampered copy answers the entry and dedupes the re-submission."""
    data = _tampered_copy(pristine, tmp_path, "entry id")
    with pytest.raises(RuntimeError, match="Entry id corrupted: entry 12"):
        start_server(tmp_path / "tampered", data_dir=data)
    server = start_server(tmp_path / "clean", data_dir=copy_log(pristine, tmp_path / "clean-data"))
    try:
        ident = entry_id(leaf_data(decode_sign1(STATEMENTS[12])))
        assert httpx.get(f"{server}/entries/{ident}").status_code == 200
        assert httpx.post(f"{server}/entries", content=STATEMENTS[12], headers=COSE).status_code == 201
        assert httpx.get(f"{server}/checkpoint").text.split("\n")[1] == str(COUNT)
    finally:
        server.terminate()


def test_a_tree_node_the_start_does_not_read_is_caught_by_fsck_and_by_a_verifying_client(
    pristine: Path, tmp_path: Path
) -> None:
    """The start reads only the tree's frontier (and the embedded issuer shares the log's fold, reading no proofs):
    a damaged inner node is fsck's. A proof that carries the node no longer verifies, so a client or follower
    that checks it sees the damage too: here the consistency of the signed checkpoints of 6 and 30 entries
    (node (1, 3), the parent of leaves 6 and 7, completes the old tree's last subtree); other proofs still do."""
    data = copy_log(pristine, tmp_path / "data")
    with tampered(data / "log.sqlite") as db:
        flip_tree_node(db, 1, 3)
        roots = dict(db.execute("SELECT tree_size, root FROM tree_heads WHERE tree_size IN (6, 8, ?)", (COUNT,)))
    done = _fsck(data)
    assert done.returncode == EXIT_CORRUPTED and "tree node (1, 3): stored hash" in done.stdout, done.stdout
    server = start_server(tmp_path / "served", data_dir=data)
    try:
        with HttpLogClient(server) as client:
            damaged, intact = client.consistency(6, COUNT), client.consistency(8, COUNT)
    finally:
        server.terminate()
    with pytest.raises(VerificationError):
        verify_consistency(6, COUNT, roots[6], roots[COUNT], damaged.path)
    verify_consistency(8, COUNT, roots[8], roots[COUNT], intact.path)
