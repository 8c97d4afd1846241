"""The fold's rebuild rate of this code and of another checkout, side by side, each against bare Ed25519.

    .venv/bin/python -m tools.bench.fold_compare --baseline /tmp/old-checkout [--entries 10000] [--rounds 2]

The signed lifecycle log of ``tools.bench.identity_fold`` is generated once (not timed) and handed to two worker
processes, one importing this checkout's ``verifier.fold``, the other the baseline's (``git archive <commit> |
tar -x -C DIR`` makes one). The workers take turns, chunk by chunk: each folds the same 1,000 entries
(``Fold.apply_all``), then each runs 300 bare Ed25519 verifications, in alternating order; every rebuild is
checked to accept every entry. On a machine whose load comes and goes, a burst falls on both codes and on
their bare verifications alike: the figures to read are each code's ratio to its bare verifications, and the
ratio of the two rebuild rates. With more than one round, the same figures are also given from the fastest
run of each chunk over the rounds (for each code, its folds and its bare verifications alike), which drops the
bursts of load a shared machine has. ``--without-signatures`` makes every Ed25519 verification of the folds
answer at once (the bare verifications still run): the rebuild rates are then those of the Python work alone,
and 10^6 / rate is its µs per entry.
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tools.bench.identity_fold import CHUNK, generate
from tools.bench.processes import REPO

BARE_PER_CHUNK = 300
WITHOUT_SIGNATURES = r"""
# the Python work alone: every Ed25519 verification the fold makes answers at once (a COSE signature through
# verifier.cose.verify_over, a passport's proof through the key its resolver returns); everything else runs
import verifier.cose as _cose, verifier.passports as _passports
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey as _Key, Ed25519PublicKey as _Public
class _Accepting:
    def verify(self, signature, data):
        return None
_Public.register(_Accepting)
_cose._as_ed25519(_Key.generate().public_key())  # the class check the real verifications would have warmed
_cose.verify_over = lambda *arguments: None
_multikey_key = _passports.multikey_key
_passports.multikey_key = lambda multikey: (_multikey_key(multikey), _Accepting())[1]
"""
WORKER = r"""
import pickle, sys, time
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from verifier.fold import Fold, FoldEntry
"""
WORKER_LOOP = r"""
statements = pickle.loads(open(sys.argv[1], "rb").read())
entries = [FoldEntry(i, s) for i, s in enumerate(statements)]
key = Ed25519PrivateKey.generate()
public, signature = key.public_key(), key.sign(b"x" * 32)
fold = Fold()
for line in sys.stdin:
    command, _, argument = line.strip().partition(" ")
    t0 = time.perf_counter()
    if command == "fold":
        start = int(argument)
        fold.apply_all(entries[start:start + 1000])
    elif command == "bare":
        for _ in range(int(argument)):
            public.verify(signature, b"x" * 32)
    elif command == "new":
        fold = Fold()
    elif command == "check":
        refused = [o for o in fold.state.outcomes if not o.accepted]
        print(f"{len(fold.state.outcomes)} {len(refused)}", flush=True)
        continue
    print(time.perf_counter() - t0, flush=True)
"""


class Worker:
    def __init__(self, tree: Path, statements: Path, script: str) -> None:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["PYTHONPATH"] = str(tree)
        self.tree = tree
        self.process = subprocess.Popen([str(REPO / ".venv/bin/python"), "-c", script, str(statements)], cwd=tree,
                                        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.fold_time = self.bare_time = 0.0
        self.fold_best: dict[int, float] = {}  # chunk -> its fastest fold over the rounds
        self.bare_best: dict[int, float] = {}

    def ask(self, command: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise SystemExit(f"the worker of {self.tree} stopped")
        return answer.strip()

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True, help="another checkout of the repository")
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2, help="rebuilds of the whole log by each code")
    parser.add_argument("--without-signatures", action="store_true",
                        help="the Python work alone: the fold's Ed25519 verifications answer at once")
    args = parser.parse_args(argv)
    statements, _agents = generate(args.entries, int(time.time()))
    n = len(statements)
    with tempfile.TemporaryDirectory(prefix="fold-compare-") as folder:
        path = Path(folder) / "statements.pickle"
        path.write_bytes(pickle.dumps(statements))
        script = WORKER + (WITHOUT_SIGNATURES if args.without_signatures else "") + WORKER_LOOP
        this, baseline = Worker(REPO, path, script), Worker(args.baseline.resolve(), path, script)
        workers = [this, baseline]
        try:
            for round_ in range(args.rounds):
                for worker in workers:
                    worker.ask("new")
                for k, start in enumerate(range(0, n, CHUNK)):
                    order = workers if (k + round_) % 2 == 0 else workers[::-1]
                    for worker in order:
                        took = float(worker.ask(f"fold {start}"))
                        worker.fold_time += took
                        worker.fold_best[start] = min(took, worker.fold_best.get(start, took))
                    for worker in order[::-1]:
                        took = float(worker.ask(f"bare {BARE_PER_CHUNK}"))
                        worker.bare_time += took
                        worker.bare_best[start] = min(took, worker.bare_best.get(start, took))
                for worker in workers:
                    folded, refused = map(int, worker.ask("check").split())
                    if folded != n or refused:
                        raise SystemExit(f"{worker.tree}: {folded} of {n} entries folded, {refused} refused")
                print(f"  round {round_ + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        finally:
            for worker in workers:
                worker.close()
    bare_count = args.rounds * len(range(0, n, CHUNK)) * BARE_PER_CHUNK
    rates = {}
    for name, worker in (("this code", this), (f"baseline {args.baseline}", baseline)):
        rate, bare = args.rounds * n / worker.fold_time, bare_count / worker.bare_time
        rates[name] = rate
        print(f"{name:40s} rebuild {rate:8,.0f} entries/s  bare Ed25519 {bare:8,.0f} /s  ratio {rate / bare:.2f}")
        if args.rounds > 1:
            best_rate = n / sum(worker.fold_best.values())
            best_bare = len(worker.bare_best) * BARE_PER_CHUNK / sum(worker.bare_best.values())
            print(f"{'':40s} fastest of the rounds, chunk by chunk: rebuild {best_rate:8,.0f} entries/s  bare "
                  f"{best_bare:8,.0f} /s  ratio {best_rate / best_bare:.2f}")
            rates[name + " (fastest)"] = best_rate
    this_rate, baseline_rate = rates["this code"], rates[f"baseline {args.baseline}"]
    print(f"rebuild rate, this code / baseline: {this_rate / baseline_rate:.2f} ({n:,} entries, {args.rounds} "
          f"rebuilds each, alternating in chunks of {CHUNK:,})")
    if args.rounds > 1:
        this_best, baseline_best = rates["this code (fastest)"], rates[f"baseline {args.baseline} (fastest)"]
        print(f"the same, fastest of the rounds chunk by chunk (a burst of load on the machine dropped): "
              f"{this_best / baseline_best:.2f}")


if __name__ == "__main__":
    main()
