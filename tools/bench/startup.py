"""Start-up time and resident memory of ``tabellion serve`` on an existing log, with and without its snapshot.

    .venv/bin/python -m tools.bench.startup --dir /tmp/log1m [--starts 3] [--rebuild]

First an empty log is started twice (the first start writes the bytecode caches; the second is the baseline:
the imports, Hypercorn and the issuer, whatever the log's size). Each start is the real command (``tabellion
serve --data DIR``: the log, its identity fold and the embedded issuer in one process), timed from the process's
spawn until ``GET /checkpoint`` answers 200 (Hypercorn listens only once the log has opened and checked itself,
the fold has caught up and the issuer has started). Then the process's resident memory is read (``VmRSS`` and
its peak ``VmHWM``, ``/proc/<pid>/status``), and it is stopped with SIGTERM, which saves the final snapshot, as
an operator's stop does.

The first start uses whatever ``DIR/state`` holds (``tools.bench.lifecycle_log`` leaves a snapshot there); with
``--rebuild`` the state folder is removed before every start, which measures a start with no usable snapshot
(a full rebuild of the identity state). The service's own lines about its identity state (snapshot loaded, or
why none was usable, and how many entries it folded) are printed with each start.

Build the logs with ``tools.bench.lifecycle_log`` (docs/benchmarks.md has the commands).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from tools.bench.processes import REPO, clean_env, free_port


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _env() -> dict[str, str]:
    """The environment of a deployed service: compiled bytecode is cached (a session may run with
    ``PYTHONDONTWRITEBYTECODE``, which makes every start compile every module again)."""
    env = clean_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def one_start(data: Path, log: Path) -> tuple[float, int, int, list[str]]:
    """Seconds until ready, VmRSS and VmHWM (KiB), and the identity-state lines of the start."""
    port = free_port()
    began = time.perf_counter()
    with log.open("wb") as out:
        process = subprocess.Popen([str(REPO / ".venv/bin/tabellion"), "serve", "--data", str(data), "--port",
                                    str(port)], cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=_env())
    try:
        while True:
            if process.poll() is not None:
                raise SystemExit(f"serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/checkpoint", timeout=2).status_code == 200:
                    break
            time.sleep(0.02)
        ready = time.perf_counter() - began
        rss, hwm = status_kib(process.pid, "VmRSS"), status_kib(process.pid, "VmHWM")
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(600)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    lines = [line.split(": ", 1)[-1] for line in log.read_text().splitlines() if "identity state" in line]
    return ready, rss, hwm, lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, required=True, help="a log's data folder (tools.bench.lifecycle_log)")
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--rebuild", action="store_true", help="remove DIR/state before each start")
    args = parser.parse_args(argv)
    if not (args.dir / "log.sqlite").is_file():
        raise SystemExit(f"{args.dir} holds no log (build one with tools.bench.lifecycle_log)")
    with tempfile.TemporaryDirectory(prefix="tabellion-empty-") as empty:
        for _ in range(2):  # the first writes the bytecode caches
            base, base_rss, _peak, _lines = one_start(Path(empty) / "data", Path(empty) / "serve.log")
    print(f"  an empty log: ready in {base:.2f} s, RSS {base_rss / 1024:,.0f} MiB (imports, Hypercorn, the issuer)",
          file=sys.stderr, flush=True)
    times, rss, hwm = [], [], []
    for n in range(args.starts):
        if args.rebuild:
            shutil.rmtree(args.dir / "state", ignore_errors=True)
        ready, resident, peak, lines = one_start(args.dir, args.dir.parent / f"{args.dir.name}-serve.log")
        times.append(ready)
        rss.append(resident)
        hwm.append(peak)
        print(f"  start {n + 1}/{args.starts}: ready in {ready:.2f} s, RSS {resident / 1024:,.0f} MiB "
              f"(peak {peak / 1024:,.0f} MiB)", file=sys.stderr, flush=True)
        for line in lines:
            print(f"    {line}", file=sys.stderr, flush=True)
    size = os.path.getsize(args.dir / "log.sqlite")
    print(f"log {args.dir} ({size / 2**20:,.0f} MiB), {'rebuilt from the log' if args.rebuild else 'from its snapshot'}"
          f" at every start: ready in {statistics.median(times):.2f} s (median of {args.starts}; "
          f"{min(times):.2f}..{max(times):.2f}); resident {statistics.median(rss) / 1024:,.0f} MiB, "
          f"peak {statistics.median(hwm) / 1024:,.0f} MiB; an empty log, same run: {base:.2f} s, "
          f"{base_rss / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
