"""Malformed input to every route of a real server (the log's and the issuer's): never a 5xx, every refusal of a
well-formed request a problem document, nothing unexpected in the server's log. ``tools/fuzz.py`` sends the same
kinds of input (``tests/fuzz_inputs.py``) by the hundred thousand."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx

from tests.fuzz_inputs import cases, routes, seed_world, send
from tests.server import running_server

COUNT = 2000


def test_no_malformed_input_gets_a_5xx(tmp_path: Path) -> None:
    with running_server(tmp_path, body_read_timeout_s=1) as url:
        seeds = seed_world(url)
        statuses: Counter[int] = Counter()
        failures, not_problems, kinds = [], [], set()
        with httpx.Client(base_url=url, timeout=60) as client:
            for case in cases(seeds, COUNT, seed=20261207):
                answer = send(client, case, url)
                statuses[answer.status] += 1
                kinds.add(case.kind)
                if answer.status >= 500 or (answer.status == 0 and case.raw is None):
                    failures.append(f"{answer.status}: {case.describe()}")
                elif answer.status >= 400 and not answer.problem and case.raw is None:
                    not_problems.append(f"{answer.status}: {case.describe()}")
        log = url.log()
    assert not failures, "\n".join(failures[:20])
    assert not not_problems, "\n".join(not_problems[:20])
    assert "unexpected error" not in log, log[-3000:]
    assert {f"{method} {path}" for method, path in routes()} <= kinds  # every route was exercised
    assert statuses[400] > COUNT // 4 and statuses[200] > 0  # refused mostly, but not only
