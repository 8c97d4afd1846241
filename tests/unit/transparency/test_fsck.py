"""``transparency.log.fsck`` and the start-up checks on a real log tampered with, one class of tampering each:
fsck names the class and the place; the start refuses what it loads; a clean log passes and nothing is written."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from schemas.errors import (
    EntryIdCorrupted,
    EntryMissing,
    LogCorrupted,
    LogTruncated,
    StatementCorrupted,
    TreeHeadCorrupted,
    TreeNodeCorrupted,
)
from tests.log_tampering import (
    build_log,
    copy_log,
    delete_entry,
    delete_index_row,
    flip_checkpoint_signature,
    flip_entry_id,
    flip_head_root,
    flip_receipt_signature,
    flip_statement_byte,
    flip_tree_node,
    head_sizes,
    shift_registered_at,
    statements,
    tampered,
    truncate_entries,
)
from tests.postgres import PostgresServer
from tests.unit.transparency.index_world import ORIGIN, integrate, open_sequencer
from transparency.client import generate_key, sign_statement
from transparency.identity import IdentityFollower
from transparency.keys import load_or_create_log_key
from transparency.log.fsck import FsckReport, fsck
from transparency.log.reader import LogReader
from transparency.log.storage import open_database
from transparency.service import TransparencyService
from transparency.settings import Settings

COUNT = 60
Tamper = Callable[[sqlite3.Connection], None]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_log(tmp_path_factory.mktemp("fsck") / "data", COUNT)


def _tamper(pristine: Path, tmp_path: Path, tamper: Tamper) -> Path:
    data = copy_log(pristine, tmp_path / "data")
    with tampered(data / "log.sqlite") as db:
        tamper(db)
    return data


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def _sizes(pristine: Path) -> list[int]:
    with sqlite3.connect(f"file:{pristine / 'log.sqlite'}?mode=ro&immutable=1", uri=True) as db:
        return head_sizes(db)


def test_a_clean_log_passes_and_nothing_is_written(pristine: Path) -> None:
    before = _files(pristine)
    progress: list[tuple[str, int, int]] = []
    report = fsck(pristine, progress=lambda *p: progress.append(p))
    assert report.problems == []
    assert (report.size, report.entries, report.index_rows) == (COUNT, COUNT, COUNT)
    assert report.heads == len(_sizes(pristine)) > 10
    assert report.nodes == 2 * COUNT - bin(COUNT).count("1")  # every perfect subtree of 60 leaves
    assert report.lines()[-1].endswith(": clean")
    assert ("entries", COUNT, COUNT) in progress and ("index rows", COUNT, COUNT) in progress
    assert _files(pristine) == before, "fsck created or changed a file"


def test_the_index_of_the_built_log_has_runs_out_of_the_writers_recent_window(pristine: Path) -> None:
    sequencer = open_sequencer(copy_log(pristine, pristine.parent / "window"), seal=4, fanin=2)
    assert 20 < sequencer.index.recent_from < 50  # entries 2 and 20 are checked at start-up by the fold only
    sequencer.stop()


LAST = -1
CLASSES: dict[str, tuple[Callable[[list[int]], Tamper], str, str]] = {
    # name: (tampering, given the head sizes; the class fsck names; what its line says)
    "statement bytes": (lambda s: lambda db: flip_statement_byte(db, 20), "statement-corrupted", "entry 20:"),
    "entry id": (lambda s: lambda db: flip_entry_id(db, 20), "entry-id-corrupted", "entry 20: stored entry_id"),
    "entry id (index key)": (lambda s: lambda db: flip_entry_id(db, 21, at=2), "entry-id-corrupted", "entry 21:"),
    "deleted row": (lambda s: lambda db: delete_entry(db, 20), "entry-missing", "entry 20 is missing"),
    "truncation": (lambda s: lambda db: truncate_entries(db, 55), "log-truncated", "entries 55..59 are missing"),
    "tree head root": (lambda s: lambda db: flip_head_root(db, s[7]), "tree-head-corrupted", "tree head {7}:"),
    "latest tree head root": (lambda s: lambda db: flip_head_root(db, s[LAST]), "tree-head-corrupted",
                              "tree head {-1}: stored root"),
    "checkpoint signature": (lambda s: lambda db: flip_checkpoint_signature(db, s[7]), "tree-head-corrupted",
                             "tree head {7}: its checkpoint"),
    "receipt signature": (lambda s: lambda db: flip_receipt_signature(db, s[7]), "tree-head-corrupted",
                          "tree head {7}: its receipt signature"),
    "tree node": (lambda s: lambda db: flip_tree_node(db, 1, 3), "tree-node-corrupted", "tree node (1, 3):"),
    "entry-id index": (lambda s: lambda db: delete_index_row(db, 30), "entry-index-corrupted",
                       "entry 30 is not in the entry-id index"),
    "registration time": (lambda s: lambda db: shift_registered_at(db, 10), "entry-metadata-corrupted",
                          "entry 10: registered at"),
}


@pytest.mark.parametrize("name", list(CLASSES))
def test_fsck_names_each_class_of_tampering_and_where(pristine: Path, tmp_path: Path, name: str) -> None:
    tamper, code, says = CLASSES[name]
    sizes = _sizes(pristine)
    says = says.replace("{7}", str(sizes[7])).replace("{-1}", str(sizes[LAST]))
    report = fsck(_tamper(pristine, tmp_path, tamper(sizes)))
    assert [p.code for p in report.problems] == [code], report.lines()
    lines = report.lines()
    assert says in lines[0] and lines[0].endswith(f"[{code}]"), lines
    assert lines[-1].endswith(f"1 problem ({code} 1)")


def test_a_statement_logged_twice_is_found(tmp_path: Path) -> None:
    """What the issue's bug did: an entry id the dedupe did not find, so the statement got a second leaf."""
    sequencer = open_sequencer(tmp_path, seal=1000)
    items = statements(10)
    integrate(sequencer, items)
    sequencer.index.find = lambda *args, **kwargs: {}  # type: ignore[method-assign]
    integrate(sequencer, [items[3]])
    sequencer.stop()
    report = fsck(tmp_path)
    assert [p.code for p in report.problems] == ["entry-id-corrupted"]
    assert "entry 10 repeats entry 3" in report.lines()[0]


def test_many_problems_of_a_class_are_counted_beyond_the_ones_shown(pristine: Path, tmp_path: Path) -> None:
    def tamper(db: sqlite3.Connection) -> None:
        for index in range(10, 25):
            flip_statement_byte(db, index)

    lines = fsck(_tamper(pristine, tmp_path, tamper)).lines(per_class=3)
    assert [line.split(":")[1] for line in lines[:3]] == [" entry 10", " entry 11", " entry 12"]
    assert lines[3] == "fsck: … and 12 more [statement-corrupted]"
    assert lines[4].endswith("15 problems (statement-corrupted 15)")


def test_fsck_reads_a_log_that_a_writer_has_open(pristine: Path, tmp_path: Path) -> None:
    data = copy_log(pristine, tmp_path / "data")
    sequencer = open_sequencer(data, seal=4, fanin=2)  # the writer's connection: the -wal file exists
    integrate(sequencer, statements(5, salt="more"))  # committed in the WAL, not yet in the database file
    try:
        report: FsckReport = fsck(data)
    finally:
        sequencer.stop()
    assert report.problems == [] and report.size == COUNT + 5


# --- the start refuses what it loads ------------------------------------------------------------------

START: dict[str, tuple[Callable[[list[int]], Tamper], type[LogCorrupted], str]] = {
    "statement bytes": (lambda s: lambda db: flip_statement_byte(db, 20), StatementCorrupted, "entry 20:"),
    "entry id": (lambda s: lambda db: flip_entry_id(db, 20), EntryIdCorrupted, "entry 20: stored entry_id"),
    "entry id out of the recent window": (lambda s: lambda db: flip_entry_id(db, 2), EntryIdCorrupted,
                                          "entry 2: stored entry_id"),
    "deleted row": (lambda s: lambda db: delete_entry(db, 20), EntryMissing, "entry 20 is missing"),
    "deleted old row": (lambda s: lambda db: delete_entry(db, 1), EntryMissing, "entry 1 is missing"),
    "truncation": (lambda s: lambda db: truncate_entries(db, 55), LogTruncated, "entries 55..59 are missing"),
    "latest tree head root": (lambda s: lambda db: flip_head_root(db, s[LAST]), TreeHeadCorrupted,
                              "tree head {-1}: stored root"),
    "latest checkpoint signature": (lambda s: lambda db: flip_checkpoint_signature(db, s[LAST]),
                                    TreeHeadCorrupted, "tree head {-1}: its checkpoint"),
    "latest receipt signature": (lambda s: lambda db: flip_receipt_signature(db, s[LAST]), TreeHeadCorrupted,
                                 "tree head {-1}: its receipt signature"),
    "tree leaf": (lambda s: lambda db: flip_tree_node(db, 0, 58), TreeNodeCorrupted, "tree node (0, 58):"),
    "tree frontier": (lambda s: lambda db: flip_tree_node(db, 5, 0), TreeNodeCorrupted,
                      "does not match the latest signed head"),
}


@pytest.mark.parametrize("name", list(START))
def test_the_start_refuses_a_tampered_log(pristine: Path, tmp_path: Path, name: str) -> None:
    tamper, error, says = START[name]
    sizes = _sizes(pristine)
    data = _tamper(pristine, tmp_path, tamper(sizes))
    with pytest.raises(error) as refused:
        TransparencyService(Settings(data_dir=data, origin=ORIGIN)).close()
    assert says.replace("{-1}", str(sizes[LAST])) in refused.value.detail
    assert fsck(data).problems, "fsck must see it too"


def test_the_start_refuses_a_flipped_entry_id_instead_of_losing_the_entry(pristine: Path, tmp_path: Path) -> None:
    """The issue's regression: the entry would answer 404 and a re-submission would add a second leaf. Entry 50
    is among those whose ids the writer keeps in memory for its dedupe (entry 20 is not: the fold checks it)."""
    data = _tamper(pristine, tmp_path, lambda db: flip_entry_id(db, 50))
    with pytest.raises(EntryIdCorrupted, match="entry 50: stored entry_id"):
        TransparencyService(Settings(data_dir=data, origin=ORIGIN))
    with pytest.raises(EntryIdCorrupted, match="entry 50: stored entry_id"):  # the writer alone refuses too
        open_sequencer(data, seal=4, fanin=2)


def test_the_fold_at_start_checks_the_ids_of_the_entries_it_reads(pristine: Path, tmp_path: Path) -> None:
    data = _tamper(pristine, tmp_path, lambda db: flip_statement_byte(db, 1))
    reader = LogReader(open_database(data / "log.sqlite", create=False))
    with pytest.raises(StatementCorrupted, match="entry 1: its statement hashes to"):
        IdentityFollower().catch_up(reader)
    reader.db.close()


def test_an_older_head_is_left_to_fsck(pristine: Path, tmp_path: Path) -> None:
    """The start checks the latest head only (a cheap start); fsck checks them all."""
    sizes = _sizes(pristine)
    data = _tamper(pristine, tmp_path, lambda db: flip_head_root(db, sizes[7]))
    TransparencyService(Settings(data_dir=data, origin=ORIGIN)).close()
    assert [p.code for p in fsck(data).problems] == ["tree-head-corrupted"]


def test_heads_signed_by_a_retired_log_key_still_check_out(pristine: Path, tmp_path: Path) -> None:
    """After the log key is replaced (the old public key kept in retired-keys/), the start and fsck accept the
    heads the old key signed, and those the new one signs after."""
    data = copy_log(pristine, tmp_path / "data")
    old = load_or_create_log_key(data / "log-key.pem")
    (data / "retired-keys").mkdir()
    (data / "retired-keys" / "1.pem").write_bytes(
        old.public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    (data / "log-key.pem").unlink()
    load_or_create_log_key(data / "log-key.pem")  # a new current key
    service = TransparencyService(Settings(data_dir=data, origin=ORIGIN, batch_max_wait_ms=1.0))
    key = generate_key("ed25519")
    for n in range(3):
        asyncio.run(service.register(sign_statement(key, b"{}", subject=f"urn:example:rotated:{n}",
                                                    content_type="application/json")))
    service.close()
    report = fsck(data)
    assert report.problems == [] and report.size == COUNT + 3
    (data / "retired-keys" / "1.pem").unlink()
    assert {p.code for p in fsck(data).problems} == {"tree-head-corrupted"}  # the old heads: no key of the log


def test_a_damaged_database_file_is_reported_not_raised(pristine: Path, tmp_path: Path) -> None:
    data = copy_log(pristine, tmp_path / "data")
    with (data / "log.sqlite").open("r+b") as db_file:
        db_file.seek(3 * 4096)
        db_file.write(b"\xff" * 4096 * 4)  # four pages of b-tree garbage
    report = fsck(data)
    assert report.problems and {p.code for p in report.problems} == {"log-corrupted"}
    assert report.lines()[0].startswith("fsck: SQLite: "), report.lines()


def test_a_writer_opening_a_closed_log_during_the_check_is_told(pristine: Path, tmp_path: Path) -> None:
    data = copy_log(pristine, tmp_path / "data")
    writers: list[sqlite3.Connection] = []

    def open_a_writer(what: str, done: int, total: int) -> None:
        if not writers:
            writers.append(sqlite3.connect(str(data / "log.sqlite")))
            writers[0].execute("PRAGMA journal_mode=WAL")  # a -wal file appears: the file is open now

    report = fsck(data, progress=open_a_writer)
    writers[0].close()
    assert report.problems == [] and report.opened_meanwhile
    assert "run it again" in report.lines()[-2]


def test_fsck_checks_a_log_on_postgresql(tmp_path: Path, postgres: PostgresServer) -> None:
    """The same checks through the storage interface, on one REPEATABLE READ snapshot of a PostgreSQL log; the
    tampering needs the append-only triggers disabled first (the owner of the tables can)."""
    database = postgres.create_database()
    data = build_log(tmp_path / "data", COUNT, database=database)
    report = fsck(data, database=database)
    assert report.problems == [] and (report.size, report.entries, report.index_rows) == (COUNT, COUNT, COUNT)
    with psycopg.connect(database, autocommit=True) as conn:
        for table in ("entries", "tree_nodes"):
            conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        conn.execute("UPDATE entries SET statement = set_byte(statement, 40, get_byte(statement, 40) # 1) "
                     "WHERE idx = 20")
        conn.execute("UPDATE tree_nodes SET hash = set_byte(hash, 0, get_byte(hash, 0) # 1) "
                     "WHERE level = 1 AND idx = 3")
        conn.execute("DELETE FROM entry_index WHERE idx = 30")
    report = fsck(data, database=database)
    assert {p.code for p in report.problems} == {"statement-corrupted", "tree-node-corrupted",
                                                  "entry-index-corrupted"}
    lines = "\n".join(report.lines())
    assert "entry 20:" in lines and "tree node (1, 3):" in lines and "entry 30 is not in the entry-id index" in lines
