"""Append cost per entry near 10^3 entries vs near 10^6 entries, measured side by side.

    .venv/bin/python -m tools.bench.append_cost [--large 1000000] [--small 1000] [--rounds 16] [--dir DIR]

Each timed step is one batch of ``--batch`` (256) entries through the sequencer's integration step
(``Sequencer._integrate``): duplicate check, entry rows, entry-id index rows and merge work, Merkle node
rows, tree-head signing (one receipt signature, one checkpoint signature) and COMMIT. The production
durability setting (``PRAGMA synchronous=FULL`` in WAL mode: one fsync per commit) is the headline; the same
batches with ``synchronous=NORMAL`` (no fsync at commit) are timed in the same rounds to separate the fsync
from the rest of the work. Entries are submitted as the service submits them, without a look-up first: the
sequencer's dedupe finds the ids of recent entries in memory and probes the index's large runs for the rest.

Three logs are kept open: a small one (restarted from ``--small`` entries whenever it has grown past
twice that, so it stays near 10^3), a mid one (``--mid``, 10^5; 0 leaves it out) and a large one (built
once to ``--large`` entries with the builder of ``inclusion_proofs``). Every round appends one batch to
each, in alternating order, for each setting; ratios are per entry against the small log in the same
rounds, so machine drift cancels. The mid log shows whether the growth is still going on or has levelled.

Per cell: median, mean, p99 and max µs per entry over the timed batches (the tail is where a merge of the
entry-id index would show: it is not hidden by the median). Then, per log: WAL pages per commit (mean and
max over ``--wal-commits`` commits), the entry-id index (live runs, rows moved by merges per appended entry
during the timed rounds) and ``LogReader.entry_by_id`` on a fresh read connection, for ids in the log (hit)
and not in it (miss).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path

from tools.bench.inclusion_proofs import BUILD_BATCH, build, fill, filler, log_directory, open_log
from transparency.keys import LogKey, load_or_create_log_key
from transparency.log.reader import LogReader
from transparency.log.sequencer import Sequencer, _Pending
from transparency.log.sqlite_storage import open_sqlite

# (label, PRAGMA synchronous)
SETTINGS = (("FULL", "FULL"), ("NORMAL", "NORMAL"))


class SmallLog:
    """A log kept between ``start`` and ``2 * start`` entries (plus one batch) by restarting it."""

    def __init__(self, root: Path, start: int, key: LogKey) -> None:
        self.root = root
        self.start = start
        self.key = key
        self.generation = 0
        self.sequencer = self._fresh()

    def _fresh(self) -> Sequencer:
        folder = self.root / f"small-{self.generation}"
        self.generation += 1
        sequencer = open_log(folder, self.key)
        fill(sequencer, self.start, batch=256, progress=False)
        return sequencer

    def renew_if_grown(self) -> None:
        if self.sequencer.size > 2 * self.start:
            old = self.sequencer
            old.stop()
            shutil.rmtree(Path(old.location).parent)
            self.sequencer = self._fresh()


def append_batch(sequencer: Sequencer, batch: int, synchronous: str) -> float:
    """Seconds to integrate one batch of fresh entries with ``synchronous`` set."""
    sequencer.db.execute(f"PRAGMA synchronous={synchronous}")
    first = sequencer.size
    pending = [_Pending(leaf, statement, Future()) for leaf, statement in
               (filler(i) for i in range(first, first + batch))]
    t0 = time.perf_counter()
    sequencer._integrate(pending)
    elapsed = time.perf_counter() - t0
    for p in pending:
        p.future.result()  # re-raises if the batch failed
    return elapsed


def wal_pages_per_commit(sequencer: Sequencer, batch: int, commits: int) -> list[float]:
    """Pages each of ``commits`` batch commits appends to the WAL (autocheckpoint paused while counting)."""
    wal = Path(f"{sequencer.location}-wal")
    page_size = int(sequencer.db.execute("PRAGMA page_size").fetchone()[0])
    sequencer.db.execute("PRAGMA wal_autocheckpoint=0")
    sequencer.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages = []
    try:
        for _ in range(commits):
            before = wal.stat().st_size if wal.exists() else 0
            append_batch(sequencer, batch, "NORMAL")
            pages.append((wal.stat().st_size - before) / (page_size + 24))  # 24-byte WAL frame header
        return pages
    finally:
        sequencer.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        sequencer.db.execute("PRAGMA wal_autocheckpoint=1000")


def percentile(ordered: Sequence[float], q: int) -> float:
    """Nearest-rank percentile of sorted samples (with fewer than 100 samples, p99 is the max)."""
    rank = -(-len(ordered) * q // 100)
    return ordered[max(0, min(len(ordered), rank) - 1)]


def per_entry_us(samples: Sequence[float], batch: int) -> dict[str, float]:
    """Median, mean, p99 and max microseconds per entry over batch timings."""
    ordered = sorted(s / batch * 1e6 for s in samples)
    return {"median": statistics.median(ordered), "mean": statistics.fmean(ordered),
            "p99": percentile(ordered, 99), "max": ordered[-1]}


def lookup_us(db_path: Path, size: int, samples: int, rng: random.Random) -> dict[str, tuple[float, float]]:
    """``LogReader.entry_by_id`` on a fresh read connection: (p50, p99) µs for ids in the log and not in it."""
    db = open_sqlite(db_path, create=False)
    try:
        reader = LogReader(db)
        hits = [filler(rng.randrange(size))[0] for _ in range(samples)]
        misses = [hashlib.sha256(b"absent" + rng.randbytes(8)).digest() for _ in range(samples)]
        out = {}
        for kind, ids in (("hit", hits), ("miss", misses)):
            for leaf in ids[:50]:  # warm-up, not reported
                reader.entry_by_id(leaf)
            times = []
            for leaf in ids:
                t0 = time.perf_counter()
                row = reader.entry_by_id(leaf)
                times.append((time.perf_counter() - t0) * 1e6)
                if (row is None) != (kind == "miss"):
                    raise SystemExit(f"entry_by_id gave a wrong answer for a {kind}")
            times.sort()
            out[kind] = (statistics.median(times), percentile(times, 99))
        return out
    finally:
        db.close()


def index_layout(sequencer: Sequencer) -> str:
    """The live runs of the entry-id index as ``level:count`` pairs, most recent level first."""
    runs = LogReader(sequencer.db).index_runs()
    levels = sorted({r.level for r in runs})
    merging = sum(1 for r in runs if r.filled_below is not None)
    return (f"{len(runs)} runs (" + ", ".join(f"L{lv}×{sum(1 for r in runs if r.level == lv)}" for lv in levels)
            + (f"; {merging} being merged)" if merging else ")"))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--large", type=int, default=1_000_000, help="size of the large log (default 10^6)")
    parser.add_argument("--small", type=int, default=1000, help="size of the small log (default 10^3)")
    parser.add_argument("--mid", type=int, default=100_000, help="also a log of this size (0: none)")
    parser.add_argument("--batch", type=int, default=256, help="entries per timed batch")
    parser.add_argument("--rounds", type=int, default=40, help="timed batches per log and setting")
    parser.add_argument("--warmup", type=int, default=3, help="untimed batches per log and setting first")
    parser.add_argument("--wal-commits", type=int, default=16, help="commits whose WAL pages are counted")
    parser.add_argument("--lookups", type=int, default=2000, help="entry_by_id calls timed per log and kind")
    parser.add_argument("--build-batch", type=int, default=BUILD_BATCH)
    parser.add_argument("--dir", type=Path, default=None, help="keep (and reuse) the large log here")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)

    with log_directory(args.dir) as large_dir, tempfile.TemporaryDirectory(prefix="tabellion-small-") as tmp:
        scratch = Path(tmp)
        build(large_dir, args.large, batch=args.build_batch)
        if args.mid:
            build(scratch / "mid", args.mid, batch=args.build_batch)
        key = load_or_create_log_key(scratch / "log-key.pem")
        small = SmallLog(scratch, args.small, key)
        grown: dict[str, Sequencer] = {"mid": open_log(scratch / "mid")} if args.mid else {}
        grown["large"] = open_log(large_dir)
        names = ["small", *grown]
        starts = {name: seq.size for name, seq in grown.items()}
        times: dict[tuple[str, str], list[float]] = {(n, s[0]): [] for n in names for s in SETTINGS}
        moved = dict.fromkeys(names, 0)
        appended = dict.fromkeys(names, 0)
        wal: dict[str, list[float]] = {}
        lookups: dict[str, dict[str, tuple[float, float]]] = {}
        layout: dict[str, str] = {}
        try:
            total = args.warmup + args.rounds
            for r in range(total):
                # a shuffled order of cells each round: WAL checkpoints (one every 1000 WAL pages) would
                # otherwise fall on the same cell round after round
                for label, synchronous in rng.sample(SETTINGS, len(SETTINGS)):
                    for name in names if r % 2 == 0 else reversed(names):
                        small.renew_if_grown()
                        seq = small.sequencer if name == "small" else grown[name]
                        before = seq.index.moved
                        elapsed = append_batch(seq, args.batch, synchronous)
                        if r >= args.warmup:
                            times[name, label].append(elapsed)
                            moved[name] += seq.index.moved - before
                            appended[name] += args.batch
                print(f"  round {r + 1}/{total}{' (warm-up)' if r < args.warmup else ''}", file=sys.stderr,
                      flush=True)
            ends = {name: seq.size for name, seq in grown.items()}
            small.renew_if_grown()
            for name in names:  # layout and lookups first: counting WAL pages appends more batches
                seq = small.sequencer if name == "small" else grown[name]
                layout[name] = index_layout(seq)
                lookups[name] = lookup_us(Path(seq.location), seq.size, args.lookups, rng)
                wal[name] = wal_pages_per_commit(seq, args.batch, args.wal_commits)
        finally:
            for seq in grown.values():
                seq.db.execute("PRAGMA synchronous=FULL")
                seq.stop()
            small.sequencer.stop()

    print(f"append cost per entry, batches of {args.batch} through Sequencer._integrate (dedupe lookup, entries, "
          f"entry-id index, tree nodes, 2 Ed25519 signatures, COMMIT), {args.rounds} batches per cell, interleaved")
    print(f"small log: kept between {args.small:,} and {2 * args.small + args.batch:,} entries; "
          + "; ".join(f"{name} log: {starts[name]:,} -> {ends[name]:,} entries" for name in grown))
    print(f"{'log':<7} {'synchronous':<13} {'median':>8} {'mean':>8} {'p99':>8} {'max':>8}   µs/entry"
          f"   {'ratio vs small: median':>22} {'mean':>6} {'p99':>6} {'max':>6}")
    for label, _ in SETTINGS:
        base = per_entry_us(times["small", label], args.batch)
        for name in names:
            cell = per_entry_us(times[name, label], args.batch)
            print(f"{name:<7} {label:<13} {cell['median']:>8.1f} {cell['mean']:>8.1f} {cell['p99']:>8.1f} "
                  f"{cell['max']:>8.1f}   {'':8}   {cell['median'] / base['median']:>22.2f} "
                  f"{cell['mean'] / base['mean']:>6.2f} {cell['p99'] / base['p99']:>6.2f} "
                  f"{cell['max'] / base['max']:>6.2f}")
    fsync = {n: (statistics.median(times[n, "FULL"]) - statistics.median(times[n, "NORMAL"])) * 1e3 for n in names}
    print("FULL - NORMAL per batch (≈ the commit's fsync): "
          + ", ".join(f"{n} {fsync[n]:.2f} ms" for n in names))
    print(f"WAL pages per {args.batch}-entry commit, mean (max) over {args.wal_commits} commits: "
          + ", ".join(f"{n} {statistics.fmean(wal[n]):.0f} ({max(wal[n]):.0f})" for n in names))
    print("entry-id index rows moved by merges per appended entry (timed rounds): "
          + ", ".join(f"{n} {moved[n] / max(appended[n], 1):.2f}" for n in names))
    for name in names:
        print(f"entry-id index of the {name} log: {layout[name]}")
    print(f"entry_by_id (fresh read connection, {args.lookups} each) p50 / p99 µs: "
          + "; ".join(f"{n} hit {lookups[n]['hit'][0]:.0f} / {lookups[n]['hit'][1]:.0f}, "
                      f"miss {lookups[n]['miss'][0]:.0f} / {lookups[n]['miss'][1]:.0f}" for n in names))
    print("aim: flat, ratio ≈ 1 (ratio = large / small, same setting, same rounds)")


if __name__ == "__main__":
    main()
