"""Malformed requests to every route of a real server (``tabellion serve``: the log and the issuer); none may be
answered with a 5xx.

    .venv/bin/python -m tools.fuzz [--count 100000] [--seed 1] [--workers 8]

The inputs are those of ``tests/e2e/test_fuzz.py`` (``tests/fuzz_inputs.py``), many more of them: the server gets
a small identity world first (operator, agent, passport, delegation, claim) to mutate, and a 1 s body timeout
(some raw requests declare more body than they send). ``--workers`` keep-alive connections send concurrently.
Printed: progress, then the count of answers by status, the 5xx answers (with the requests), the refusals of
well-formed requests that were not problem documents, and how often the server logged an unexpected error.
Exit status 1 if any 5xx or unexpected error.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import httpx

from tests.fuzz_inputs import Case, cases, seed_world, send
from tests.server import running_server


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="tabellion-fuzz-") as tmp, \
            running_server(Path(tmp), body_read_timeout_s=1) as url:
        seeds = seed_world(url)
        todo = iter(cases(seeds, args.count, args.seed))
        lock = threading.Lock()
        statuses: Counter[int] = Counter()
        failures: list[tuple[int, Case]] = []
        not_problems: Counter[str] = Counter()
        done = 0
        started = time.monotonic()

        def worker() -> None:
            nonlocal done
            client = httpx.Client(base_url=url, timeout=60)
            while True:
                with lock:
                    case = next(todo, None)
                if case is None:
                    client.close()
                    return
                try:
                    answer = send(client, case, url)
                    status, problem = answer.status, answer.problem
                except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
                    status, problem = -1, False
                    print(f"no answer ({type(exc).__name__}: {exc}): {case.describe()}", file=sys.stderr)
                    client.close()
                    client = httpx.Client(base_url=url, timeout=60)
                with lock:
                    statuses[status] += 1
                    done += 1
                    if status >= 500 or status < 0:
                        failures.append((status, case))
                    elif status >= 400 and not problem and case.raw is None:
                        not_problems[f"{status} {case.kind}"] += 1
                    if done % 5000 == 0:
                        rate = done / (time.monotonic() - started)
                        print(f"  {done:,}/{args.count:,} ({rate:,.0f}/s): {len(failures)} 5xx so far",
                              file=sys.stderr, flush=True)

        threads = [threading.Thread(target=worker) for _ in range(args.workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        log = url.log()

    print(f"inputs: {done:,} in {elapsed:.0f} s ({done / elapsed:,.0f}/s), seed {args.seed}, {args.workers} workers")
    print("answers by status: " + ", ".join(f"{_name(s)}: {n:,}" for s, n in sorted(statuses.items())))
    print(f"5xx (or no answer): {len(failures)}")
    for status, case in failures[:50]:
        print(f"  {status}: {case.describe()}")
    print(f"refusals of well-formed requests that were not problem documents: {sum(not_problems.values())}")
    for kind, n in not_problems.most_common(20):
        print(f"  {n:,} x {kind}")
    unexpected = log.count("unexpected error")
    print(f"'unexpected error' in the server's log: {unexpected}")
    return 1 if failures or unexpected else 0


def _name(status: int) -> str:
    return str(status) if status > 0 else "closed without answer" if status == 0 else "no answer"


if __name__ == "__main__":
    sys.exit(main())
