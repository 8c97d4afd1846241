"""Append cost per entry near 10^3 entries vs near 10^6 entries, measured side by side.

    .venv/bin/python -m tools.bench.append_cost [--large 1000000] [--small 1000] [--rounds 16] [--dir DIR]

Each timed step is one batch of ``--batch`` (256) entries through the sequencer's integration step
(``Sequencer._integrate``): duplicate check, entry rows, Merkle node rows, tree-head signing (one receipt
signature, one checkpoint signature) and COMMIT. The production durability setting
(``PRAGMA synchronous=FULL`` in WAL mode: one fsync per commit) is the headline; the same batches with
``synchronous=NORMAL`` (no fsync at commit) are timed in the same rounds to separate the fsync from the
rest of the work.

Three logs are kept open: a small one (restarted from ``--small`` entries whenever it has grown past
twice that, so it stays near 10^3), a mid one (``--mid``, 10^5; 0 leaves it out) and a large one (built
once to ``--large`` entries with the builder of ``inclusion_proofs``). Every round appends one batch to
each, in alternating order, for each setting; ratios are per entry against the small log in the same
rounds, so machine drift cancels. The mid log shows whether the growth is still going on or has levelled.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tools.bench.inclusion_proofs import BUILD_BATCH, build, fill, filler, integrate, log_directory, open_log
from transparency.keys import LogKey, load_or_create_log_key
from transparency.log.sequencer import Sequencer

SETTINGS = ("FULL", "NORMAL")


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
            shutil.rmtree(old.db_path.parent)
            self.sequencer = self._fresh()


def append_batch(sequencer: Sequencer, batch: int, synchronous: str) -> float:
    """Seconds to integrate one batch of fresh entries with ``synchronous`` set."""
    sequencer.db.execute(f"PRAGMA synchronous={synchronous}")
    first = sequencer.size
    items = [filler(i) for i in range(first, first + batch)]
    t0 = time.perf_counter()
    integrate(sequencer, items)
    return time.perf_counter() - t0


def wal_pages_per_commit(sequencer: Sequencer, batch: int, commits: int = 4) -> float:
    """Pages one batch's commit appends to the WAL (autocheckpoint paused while counting; not timed)."""
    wal = Path(f"{sequencer.db_path}-wal")
    page_size = int(sequencer.db.execute("PRAGMA page_size").fetchone()[0])
    sequencer.db.execute("PRAGMA wal_autocheckpoint=0")
    sequencer.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    try:
        before = wal.stat().st_size if wal.exists() else 0
        for _ in range(commits):
            append_batch(sequencer, batch, "NORMAL")
        return (wal.stat().st_size - before) / (page_size + 24) / commits  # 24-byte WAL frame header
    finally:
        sequencer.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        sequencer.db.execute("PRAGMA wal_autocheckpoint=1000")


def per_entry_us(samples: Sequence[float], batch: int) -> tuple[float, float]:
    """Median and mean microseconds per entry over batch timings."""
    return statistics.median(samples) / batch * 1e6, statistics.fmean(samples) / batch * 1e6


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--large", type=int, default=1_000_000, help="size of the large log (default 10^6)")
    parser.add_argument("--small", type=int, default=1000, help="size of the small log (default 10^3)")
    parser.add_argument("--mid", type=int, default=100_000, help="also a log of this size (0: none)")
    parser.add_argument("--batch", type=int, default=256, help="entries per timed batch")
    parser.add_argument("--rounds", type=int, default=40, help="timed batches per log and setting")
    parser.add_argument("--warmup", type=int, default=3, help="untimed batches per log and setting first")
    parser.add_argument("--build-batch", type=int, default=BUILD_BATCH)
    parser.add_argument("--dir", type=Path, default=None, help="keep (and reuse) the large log here")
    args = parser.parse_args(argv)

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
        times: dict[tuple[str, str], list[float]] = {(n, s): [] for n in names for s in SETTINGS}
        wal: dict[str, float] = {}
        try:
            total = args.warmup + args.rounds
            for r in range(total):
                for setting in SETTINGS:
                    for name in names if r % 2 == 0 else reversed(names):
                        small.renew_if_grown()
                        seq = small.sequencer if name == "small" else grown[name]
                        elapsed = append_batch(seq, args.batch, setting)
                        if r >= args.warmup:
                            times[name, setting].append(elapsed)
                print(f"  round {r + 1}/{total}{' (warm-up)' if r < args.warmup else ''}", file=sys.stderr,
                      flush=True)
            ends = {name: seq.size for name, seq in grown.items()}
            small.renew_if_grown()
            for name in names:
                wal[name] = wal_pages_per_commit(small.sequencer if name == "small" else grown[name], args.batch)
        finally:
            for seq in grown.values():
                seq.db.execute("PRAGMA synchronous=FULL")
                seq.stop()
            small.sequencer.stop()

    print(f"append cost per entry, batches of {args.batch} through Sequencer._integrate "
          f"(entries, tree nodes, 2 Ed25519 signatures, COMMIT), {args.rounds} batches per cell, interleaved")
    print(f"small log: kept between {args.small:,} and {2 * args.small + args.batch:,} entries; "
          + "; ".join(f"{name} log: {starts[name]:,} -> {ends[name]:,} entries" for name in grown))
    print(f"{'log':<7} {'synchronous':<12} {'median µs/entry':>16} {'mean µs/entry':>14} "
          f"{'ratio vs small (median)':>24} {'(mean)':>7}")
    for setting in SETTINGS:
        base_med, base_mean = per_entry_us(times["small", setting], args.batch)
        for name in names:
            med, mean = per_entry_us(times[name, setting], args.batch)
            print(f"{name:<7} {setting:<12} {med:>16.1f} {mean:>14.1f} {med / base_med:>24.2f} "
                  f"{mean / base_mean:>7.2f}")
    fsync = {n: (statistics.median(times[n, "FULL"]) - statistics.median(times[n, "NORMAL"])) * 1e3 for n in names}
    print("FULL - NORMAL per batch (≈ the commit's fsync): "
          + ", ".join(f"{n} {fsync[n]:.2f} ms" for n in names))
    print(f"WAL pages written per {args.batch}-entry commit: " + ", ".join(f"{n} {wal[n]:.0f}" for n in names)
          + " (the mean includes the WAL checkpoints these pages cause; the median mostly does not)")
    print("aim: flat, ratio ≈ 1 (ratio = large / small, same setting, same rounds)")


if __name__ == "__main__":
    main()
