"""Where a fold rebuild spends its time: cProfile of ``Fold().apply_all`` over a generated lifecycle log.

    PYTHONPATH=. .venv/bin/python -m tools.bench.fold_profile [--entries 6000] [--top 35] [--sort tottime]

The log is ``tools.bench.identity_fold.generate``'s (not timed); 500 entries are folded first, untimed, so that
compiled schemas and caches are warm. cProfile inflates Python calls against C ones: read it for where to look,
and ``tools.bench.identity_fold`` for the rate.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from collections.abc import Sequence

from tools.bench.identity_fold import generate
from verifier.fold import Fold, FoldEntry


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=6000)
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--sort", default="tottime")
    args = parser.parse_args(argv)
    statements, _ = generate(args.entries, int(time.time()))
    entries = [FoldEntry(i, s) for i, s in enumerate(statements)]
    Fold().apply_all(entries[:500])
    profile = cProfile.Profile()
    profile.enable()
    Fold().apply_all(entries)
    profile.disable()
    pstats.Stats(profile).sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
