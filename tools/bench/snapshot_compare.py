"""Loading a snapshot's identity state, this code against another checkout, side by side.

    .venv/bin/python -m tools.bench.snapshot_compare --baseline /tmp/old-checkout [--entries 20000] [--loads 5]

The signed lifecycle log of ``tools.bench.identity_fold`` is generated once and folded by two worker processes,
one importing this checkout's ``verifier``, the other the baseline's (as ``tools.bench.fold_compare``). Each
encodes its state as its snapshot body (``verifier.fold_snapshot.encode_state``); then the two take turns
decoding their own body (``decode_state``, what a start does with the snapshot file), ``--loads`` times each,
and each decoded state is checked to equal the folded one. Printed: the body's size, the best and median decode
time, the memory a decoded state holds (``tracemalloc``, in a separate decode), and the ratio of the two decode
times.
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tools.bench.fold_compare import Worker
from tools.bench.identity_fold import generate
from tools.bench.processes import REPO

SNAPSHOT_WORKER = r"""
import dataclasses, gc, pickle, sys, time, tracemalloc
from verifier.fold import Fold, FoldEntry
from verifier.fold_snapshot import NOT_ENCODED, decode_state, encode_state
statements = pickle.loads(open(sys.argv[1], "rb").read())
state = Fold().apply_all(FoldEntry(i, s) for i, s in enumerate(statements))
body = encode_state(state)
names = [f.name for f in dataclasses.fields(state) if f.name not in NOT_ENCODED]
for line in sys.stdin:
    command = line.strip()
    if command == "size":
        print(len(body), flush=True)
    elif command == "decode":
        gc.collect()
        t0 = time.perf_counter()
        decoded = decode_state(body)
        elapsed = time.perf_counter() - t0
        assert all(getattr(decoded, n) == getattr(state, n) for n in names), "the decoded state differs"
        del decoded
        print(elapsed, flush=True)
    elif command == "memory":
        gc.collect()
        tracemalloc.start()
        decoded = decode_state(body)
        held = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        del decoded
        print(held, flush=True)
"""


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True, help="another checkout of the repository")
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--loads", type=int, default=5)
    args = parser.parse_args(argv)
    statements, _agents = generate(args.entries, int(time.time()))
    with tempfile.TemporaryDirectory(prefix="snapshot-compare-") as folder:
        path = Path(folder) / "statements.pickle"
        path.write_bytes(pickle.dumps(statements))
        this = Worker(REPO, path, SNAPSHOT_WORKER)
        baseline = Worker(args.baseline.resolve(), path, SNAPSHOT_WORKER)
        workers = [this, baseline]
        times: dict[int, list[float]] = {id(w): [] for w in workers}
        try:
            sizes = {id(w): int(w.ask("size")) for w in workers}
            for n in range(args.loads):
                for worker in workers if n % 2 == 0 else workers[::-1]:
                    times[id(worker)].append(float(worker.ask("decode")))
            memory = {id(w): int(w.ask("memory")) for w in workers}
        finally:
            for worker in workers:
                worker.close()
    print(f"the identity state of {len(statements):,} lifecycle entries, decoded {args.loads} times by each code, "
          "alternating:", file=sys.stderr)
    for name, worker in (("this code", this), (f"baseline {args.baseline}", baseline)):
        t = times[id(worker)]
        print(f"{name:40s} body {sizes[id(worker)] / 2**20:6.2f} MiB  decode best {min(t) * 1e3:7.1f} ms  "
              f"median {statistics.median(t) * 1e3:7.1f} ms  held in memory {memory[id(worker)] / 2**20:6.1f} MiB")
    ratio = statistics.median(times[id(baseline)]) / statistics.median(times[id(this)])
    print(f"decode time, baseline / this code (medians): {ratio:.2f}")


if __name__ == "__main__":
    main()
