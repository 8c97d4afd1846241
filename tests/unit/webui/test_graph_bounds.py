"""Drawing a graph is bounded (``webui.graphs``): a graph over ``MAX_DRAWN`` is not drawn, a drawing viewed again
runs no ``dot``, ``dot`` runs one at a time in a process, and one that hangs is stopped. The runs are observed
through a ``dot`` on PATH that records each run's start and end (process id and time) in a file, then lays the graph
out with the real ``dot``."""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from pathlib import Path

import graphviz
import pytest

from webui.graphs import DOT_TIMEOUT_S, MAX_DRAWN, Drawing, digraph, render_svg

REAL_DOT = shutil.which("dot")
pytestmark = pytest.mark.skipif(REAL_DOT is None, reason="Graphviz's dot is not installed (scripts/apt-packages.txt)")


class Runs:
    """The runs of the recording ``dot``: (pid, start, end) each."""

    def __init__(self, log: Path) -> None:
        self.log = log

    def all(self) -> list[tuple[str, float, float]]:
        if not self.log.exists():
            return []
        starts: dict[str, float] = {}
        runs = []
        for line in self.log.read_text().splitlines():
            what, pid, when = line.split()
            if what == "start":
                starts[pid] = float(when)
            else:
                runs.append((pid, starts.pop(pid), float(when)))
        return runs


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runs:
    bin_dir, log = tmp_path / "bin", tmp_path / "dot-runs.log"
    bin_dir.mkdir()
    script = bin_dir / "dot"
    script.write_text(f"""#!/bin/sh
echo "start $$ $(date +%s.%N)" >> "{log}"
if [ -n "$DOT_HANG" ]; then exec sleep "$DOT_HANG"; fi
sleep "${{DOT_SLEEP:-0}}"
"{REAL_DOT}" "$@"
status=$?
echo "end $$ $(date +%s.%N)" >> "{log}"
exit $status
""")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return Runs(log)


def _graph(nodes: int) -> tuple[graphviz.Digraph, int]:
    """A chain of ``nodes`` nodes no other test draws (the drawings are remembered per process)."""
    graph = digraph("g")
    tag = uuid.uuid4().hex[:8]
    for i in range(nodes):
        graph.node(f"n{i}", f"{tag} {i}")
    for i in range(nodes - 1):
        graph.edge(f"n{i}", f"n{i + 1}")
    return graph, 2 * nodes - 1


def _draw(nodes: int, title: str = "a chain") -> Drawing:
    graph, size = _graph(nodes)
    return render_svg(graph, title, size)


def test_a_graph_over_the_bound_is_not_drawn(runs: Runs) -> None:
    large = _draw(MAX_DRAWN // 2 + 1)  # 2 * 76 - 1 = 151 nodes and edges
    assert large.svg is None and large.note is not None and "too large to draw" in large.note
    assert runs.all() == []
    drawn = _draw(MAX_DRAWN // 2)  # 149: drawn
    assert drawn.svg is not None and drawn.svg.startswith("<svg") and drawn.note is None
    assert len(runs.all()) == 1


def test_a_drawing_viewed_again_runs_no_dot(runs: Runs) -> None:
    graph, size = _graph(10)
    first = render_svg(graph, "a chain", size)
    again = [render_svg(graph, "a chain", size) for _ in range(20)]
    assert first.svg is not None and all(d == first for d in again)
    assert len(runs.all()) == 1
    other = render_svg(graph, "another title", size)
    assert other.svg is not None and other.svg != first.svg and len(runs.all()) == 2


def test_dot_runs_one_at_a_time(runs: Runs, monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight pages at once, each dot taking 0.3 s: the runs never overlap, and pages that wait longer than
    ``DOT_WAIT_S`` show the text alone rather than queue."""
    monkeypatch.setenv("DOT_SLEEP", "0.3")
    drawings: list[Drawing] = []
    start = threading.Barrier(8)

    def page() -> None:
        start.wait()
        drawings.append(_draw(5))

    threads = [threading.Thread(target=page) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    done = sorted(runs.all(), key=lambda run: run[1])
    assert 1 <= len(done) < 8
    for (_, _, end), (_, start_next, _) in zip(done, done[1:], strict=False):
        assert end <= start_next, done
    assert sum(d.svg is not None for d in drawings) == len(done)
    assert all(d.note is None for d in drawings)  # busy: the text alone, no note


def test_a_dot_that_hangs_is_stopped(runs: Runs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOT_HANG", "60")
    started = time.monotonic()
    assert _draw(5) == Drawing()
    assert time.monotonic() - started < DOT_TIMEOUT_S + 2
    monkeypatch.delenv("DOT_HANG")
    assert _draw(5).svg is not None  # the lock was given back
