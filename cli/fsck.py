"""``tabellion fsck DATA``: check a log's data folder read-only (``transparency.log.fsck``), stopped or running.

One line per problem on stdout (at most ``--max-per-class`` of each class, then how many more), then a
summary line; progress on stderr when the check takes a while. Exit status: 0 clean, 3 problems found, 1 the
check could not run (one error line, as every command), 2 a usage error.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from transparency.log.fsck import fsck

EXIT_CORRUPTED = 3
PROGRESS_INTERVAL_S = 2.0

Command = Callable[[Any, str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


class ProgressLines:
    """Progress on ``stream``: a line every ``interval`` seconds, none for a check quicker than that."""

    def __init__(self, stream: TextIO, interval: float = PROGRESS_INTERVAL_S) -> None:
        self.stream = stream
        self.interval = interval
        self.next_at = time.monotonic() + interval

    def __call__(self, what: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now < self.next_at:
            return
        self.next_at = now + self.interval
        share = f" ({100 * done // total}%)" if total else ""
        print(f"tabellion fsck: {what} {done}/{total}{share}", file=self.stream, flush=True)


def run_fsck(data: Path, per_class: int = 10, *, database: str | None = None, out: TextIO | None = None,
             err: TextIO | None = None) -> int:
    report = fsck(data, progress=ProgressLines(err or sys.stderr), database=database)
    for line in report.lines(per_class):
        print(line, file=out or sys.stdout)
    return EXIT_CORRUPTED if report.problems else 0


def add_fsck_command(commands: Any, command: Command) -> None:
    p = command(commands, "fsck", lambda a: run_fsck(a.data, a.max_per_class, database=a.database),
                "check a log's data folder read-only (the service may be running); exit 3 if it is corrupted")
    p.add_argument("data", type=Path, metavar="DATA", help="the service's data folder (tabellion serve --data)")
    p.add_argument("--database", metavar="URL", help="the log's PostgreSQL database (tabellion serve --database); "
                   "the keys are still read from DATA")
    p.add_argument("--max-per-class", type=int, default=10, metavar="N",
                   help="show at most N problems of each class (default 10), then how many more")
