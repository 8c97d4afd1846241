"""A writer killed with SIGKILL at random moments (most of them inside a batch's transaction, with merges of
the entry-id index half done) loses nothing that was committed, and the index stays exact; on both storage
backends."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

from tests.unit.transparency.index_world import check_index, leaf, location, open_sequencer
from transparency.log.reader import LogReader
from transparency.log.storage import open_database

REPO = Path(__file__).resolve().parents[3]

# appends leaf(size), leaf(size + 1), ... plus re-submissions, printing the size after each commit
WRITER = """
import random, sys
from pathlib import Path
from tests.unit.transparency.index_world import integrate, leaf, open_sequencer, statement
seq = open_sequencer(Path(sys.argv[1]), seal=3, fanin=2, database=sys.argv[3] or None)
rng = random.Random(int(sys.argv[2]))
while True:
    new = [(leaf(i), statement(i)) for i in range(seq.size, seq.size + rng.randint(1, 6))]
    old = [(leaf(rng.randrange(seq.size)), b"again") for _ in range(rng.randint(0, 2))] if seq.size else []
    integrate(seq, new + old)
    print(seq.size, flush=True)
"""


def test_sigkill_at_random_points_loses_no_committed_entry(tmp_path: Path, log_database: str | None) -> None:
    rng = random.Random(7)
    committed = 0
    where = location(tmp_path, log_database)
    for round_ in range(6):
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), str(round_), log_database or ""],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert child.stdout is not None
        for _ in range(rng.randint(5, 60)):
            line = child.stdout.readline()
            assert line, child.stderr.read() if child.stderr else "the writer died"
            committed = int(line)
        time.sleep(rng.random() * 0.01)
        child.kill()  # SIGKILL: no clean-up, no rollback
        child.wait(10)
        size = check_index(where)
        assert size >= committed, "an entry reported as committed is gone"
        reader = LogReader(open_database(where, create=False))
        for i in range(size):
            row = reader.entry_by_id(leaf(i))
            assert row is not None and row.index == i
        reader.db.close()
    seq = open_sequencer(tmp_path, seal=3, fanin=2, database=log_database)  # the start-up check accepts it
    assert seq.size >= committed
    assert max(r.level for r in LogReader(seq.db).index_runs()) >= 3
    seq.stop()
