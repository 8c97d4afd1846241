"""Inclusion-proof cost on a large log, built without HTTP.

    .venv/bin/python -m tools.bench.inclusion_proofs [--size 1000000] [--samples 2000] [--dir DIR]

The log is built by calling the sequencer's integration step directly (``Sequencer._integrate``) in
large batches: same SQLite schema, same Merkle node rows, same signed tree heads as a served log, but
no HTTP and no statement checks. Entries are small fixed-size blobs with distinct ``leaf_data``; the
sequencer only stores them.

Then ``PersistentMerkleTree.inclusion_path(i, size)`` is timed for random ``i``:

- cold: a fresh connection and tree object per proof (empty SQLite page cache and empty pymerkle
  subroot cache; the OS page cache is warm, which this script cannot change);
- warm: one connection and tree answering many proofs;
- receipt: what ``TransparencyService._receipt_for`` does (tree head read + path + CBOR assembly), warm.
  It is rebuilt here from the same pieces (``LogReader.head``, ``inclusion_path``, ``assemble_receipt``)
  because starting a ``TransparencyService`` folds the whole log into identity state first, which on
  10^6 filler entries would time the fold, not the proofs.

It also counts the SQL statements one proof runs (``sqlite3.Connection.set_trace_callback``) at several
tree sizes, to show that the cost grows with log2(size), not with size.

The builder (``open_log``, ``fill``, ``integrate``) is reused by ``append_cost`` and
``receipt_verification``. ``--dir`` keeps the built log so later runs (of any of them) can reuse it.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path

from schemas.errors import LogCorrupted
from schemas.leaf import leaf_hash
from schemas.proofs import InclusionProof
from transparency.keys import LogKey, load_or_create_log_key
from transparency.log.merkle_tree import PersistentMerkleTree
from transparency.log.reader import LogReader
from transparency.log.sequencer import Integrated, Sequencer, _Pending
from transparency.log.sqlite_storage import open_sqlite
from transparency.receipts import assemble_receipt
from transparency.settings import Settings
from verifier.merkle import verify_inclusion

ORIGIN = "bench.tabellion.localhost/log"
BUILD_BATCH = 10_000
STATEMENT_BYTES = 64


# --- the builder (shared with append_cost and receipt_verification) --------------------------------


def log_settings(directory: Path) -> Settings:
    """Settings whose ``db_path`` and ``key_path`` are the log built in ``directory``."""
    return Settings(data_dir=directory, origin=ORIGIN)


def open_log(directory: Path, key: LogKey | None = None) -> Sequencer:
    """The sequencer of the log in ``directory`` (created on first use); its thread is not started."""
    settings = log_settings(directory)
    key = key or load_or_create_log_key(settings.key_path)
    return Sequencer(settings.db_path, key, ORIGIN)


def filler(i: int, statement_bytes: int = STATEMENT_BYTES) -> tuple[bytes, bytes]:
    """Entry ``i`` of a bench log: distinct ``leaf_data`` and a fixed-size statement blob."""
    leaf = hashlib.sha256(b"tabellion-bench-" + i.to_bytes(8, "big")).digest()
    return leaf, (i.to_bytes(8, "big") + leaf).ljust(statement_bytes, b"\x00")


def integrate(sequencer: Sequencer, items: Sequence[tuple[bytes, bytes]]) -> list[Integrated]:
    """One batch through the sequencer's integration step (one transaction, one signed head)."""
    batch: list[_Pending] = []
    for leaf, statement in items:
        future: Future[Integrated] = Future()
        batch.append(_Pending(leaf, statement, future))
    sequencer._integrate(batch)
    return [p.future.result() for p in batch]  # re-raises if the batch failed


def fill(
    sequencer: Sequencer, target: int, *, batch: int = BUILD_BATCH, statement_bytes: int = STATEMENT_BYTES,
    progress: bool = True,
) -> None:
    """Append filler entries until the log holds ``target`` entries."""
    start = sequencer.size
    if start >= target:
        return
    began = time.perf_counter()
    last_report = began
    while sequencer.size < target:
        first = sequencer.size
        integrate(sequencer, [filler(i, statement_bytes) for i in range(first, min(first + batch, target))])
        now = time.perf_counter()
        if progress and (now - last_report > 2.0 or sequencer.size == target):
            last_report = now
            done = sequencer.size - start
            print(f"  built {sequencer.size:>9,}/{target:,} entries ({done / (now - began):,.0f} entries/s)",
                  file=sys.stderr, flush=True)


@contextmanager
def log_directory(keep: Path | None) -> Iterator[Path]:
    """``keep`` when given (created if missing, never deleted), else a temporary folder."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="tabellion-bench-") as tmp:
        yield Path(tmp)


def build(directory: Path, size: int, *, batch: int = BUILD_BATCH) -> int:
    """Build (or extend) the log in ``directory`` to at least ``size`` entries; its size."""
    sequencer = open_log(directory)
    try:
        if sequencer.size < size:
            print(f"building a log of {size:,} entries in {directory} (batches of {batch:,})",
                  file=sys.stderr, flush=True)
        fill(sequencer, size, batch=batch)
        return sequencer.size
    finally:
        sequencer.stop()


# --- statistics ------------------------------------------------------------------------------------


def summary_us(samples_ns: Sequence[int]) -> str:
    """``mean / p50 / p99`` of nanosecond samples, in microseconds."""
    ordered = sorted(samples_ns)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (f"mean {statistics.fmean(ordered) / 1000:7.1f} µs   p50 {ordered[len(ordered) // 2] / 1000:7.1f} µs   "
            f"p99 {p99 / 1000:7.1f} µs")


# --- the benchmark ---------------------------------------------------------------------------------


def count_reads(db_path: Path, index: int, size: int) -> int:
    """SQL statements one inclusion proof runs on a fresh connection (so no cache hides any)."""
    db = open_sqlite(db_path, create=False)
    try:
        statements: list[str] = []
        db.conn.set_trace_callback(statements.append)
        PersistentMerkleTree(db).inclusion_path(index, size)
        db.conn.set_trace_callback(None)
        return sum(1 for s in statements if s.lstrip().upper().startswith("SELECT"))
    finally:
        db.close()


def time_cold(db_path: Path, indices: Sequence[int], size: int) -> list[int]:
    samples = []
    for i in indices:
        db = open_sqlite(db_path, create=False)
        try:
            tree = PersistentMerkleTree(db)
            t0 = time.perf_counter_ns()
            tree.inclusion_path(i, size)
            samples.append(time.perf_counter_ns() - t0)
        finally:
            db.close()
    return samples


def time_warm(tree: PersistentMerkleTree, indices: Sequence[int], size: int) -> list[int]:
    samples = []
    for i in indices:
        t0 = time.perf_counter_ns()
        tree.inclusion_path(i, size)
        samples.append(time.perf_counter_ns() - t0)
    return samples


def receipt_for(reader: LogReader, tree: PersistentMerkleTree, index: int, tree_size: int) -> bytes:
    """The receipt of entry ``index`` at ``tree_size``, as ``TransparencyService._receipt_for`` builds it."""
    head = reader.head(tree_size)
    if head is None:
        raise LogCorrupted(f"entry {index} names tree head {tree_size}, which is missing")
    proof = InclusionProof(tree_size, index, tree.inclusion_path(index, tree_size))
    return assemble_receipt(head.receipt_protected, head.receipt_signature, proof)


def time_receipts(reader: LogReader, tree: PersistentMerkleTree, indices: Sequence[int], size: int) -> list[int]:
    samples = []
    for i in indices:
        t0 = time.perf_counter_ns()
        receipt_for(reader, tree, i, size)
        samples.append(time.perf_counter_ns() - t0)
    return samples


def check_proofs(db_path: Path, indices: Sequence[int], size: int) -> None:
    """The timed code must be right: each sampled path leads to the signed root of ``size``."""
    db = open_sqlite(db_path, create=False)
    try:
        head = LogReader(db).head(size)
        if head is None:
            raise SystemExit(f"no signed tree head of size {size}")
        tree = PersistentMerkleTree(db)
        for i in indices:
            verify_inclusion(i, size, leaf_hash(filler(i)[0]), tree.inclusion_path(i, size), head.root)
    finally:
        db.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1_000_000, help="entries in the log (default 10^6)")
    parser.add_argument("--samples", type=int, default=2000, help="proofs timed per mode")
    parser.add_argument("--batch", type=int, default=BUILD_BATCH, help="entries per build transaction")
    parser.add_argument("--dir", type=Path, default=None, help="keep (and reuse) the built log here")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    with log_directory(args.dir) as directory:
        t0 = time.perf_counter()
        size = build(directory, args.size, batch=args.batch)
        build_s = time.perf_counter() - t0
        settings = log_settings(directory)
        rng = random.Random(args.seed)
        print(f"log: {size:,} entries, built/opened in {build_s:.1f} s "
              f"({settings.db_path.stat().st_size / 2**20:,.0f} MiB + WAL)")

        check_proofs(settings.db_path, [rng.randrange(size) for _ in range(50)], size)
        print("checked: 50 sampled inclusion paths verify against the signed root")

        print("\nSQL reads per inclusion proof (fresh connection, max over 200 random leaves):")
        probe = 10
        while probe <= size:
            counts = [count_reads(settings.db_path, rng.randrange(probe), probe) for _ in range(200)]
            print(f"  tree size {probe:>10,}  log2 {probe.bit_length() - 1:>2}   "
                  f"reads mean {statistics.fmean(counts):5.1f}  max {max(counts):3d}")
            probe *= 10

        cold_n = min(args.samples, 1000)
        print(f"\ninclusion_path(i, {size:,}) for random i:")
        cold = time_cold(settings.db_path, [rng.randrange(size) for _ in range(cold_n)], size)
        print(f"  cold (fresh connection each, n={cold_n:,})  {summary_us(cold)}")
        db = open_sqlite(settings.db_path, create=False)
        try:
            tree = PersistentMerkleTree(db)
            time_warm(tree, [rng.randrange(size) for _ in range(1000)], size)  # warm-up, not reported
            warm = time_warm(tree, [rng.randrange(size) for _ in range(args.samples)], size)
            print(f"  warm (one connection, n={args.samples:,})        {summary_us(warm)}")
            reader = LogReader(db)
            head = reader.latest_head()
            if head is None:
                raise SystemExit("the log has no signed tree head")
            n = head.tree_size
            time_receipts(reader, tree, [rng.randrange(n) for _ in range(200)], n)  # warm-up
            receipts = time_receipts(reader, tree, [rng.randrange(n) for _ in range(args.samples)], n)
            print(f"  full receipt, warm (n={args.samples:,})         {summary_us(receipts)}")
        finally:
            db.close()
        p99 = sorted(warm)[int(len(warm) * 0.99)] / 1000
        print(f"\naim: < 1 ms per proof; warm p99 {p99:.0f} µs, cold mean {statistics.fmean(cold) / 1000:.0f} µs")


if __name__ == "__main__":
    main()
