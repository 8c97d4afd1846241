"""``tabellion monitor``: follow a log and compare its checkpoints with its witnesses' and other monitors'.

    tabellion monitor --policy witnesses.policy [--log URL] [--peer URL_OR_FILE ...] [--state FILE]
                      [--webhook URL] [--evidence FILE] [--interval SECONDS] [--once]

The policy (C2SP tlog-policy) names the log (its key, and its URL unless ``--log`` gives it) and the witnesses
whose monitoring API is read (those with a URL). ``--state`` keeps the latest verified checkpoint across runs,
and is what other monitors read with ``--peer``. Each pass prints what changed, one line per source. On
equivocation the evidence (both signed checkpoints, ``monitor.evidence``) is written to ``--evidence`` (default:
standard output) and POSTed to ``--webhook``, and the command exits with status 3; an error that stops a pass
(the log unreachable, a signature that fails) exits 1 with ``--once``, and is reported and retried otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from monitor.evidence import LogEquivocated, send_webhook
from monitor.monitor import Monitor
from schemas.checkpoint import parse_checkpoint
from schemas.errors import InvalidParameter, TabellionError
from schemas.note import VerifierKey, parse_note
from schemas.policy import Policy, parse_policy
from transparency.client import HttpLogClient

Command = Callable[[Any, str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]
EXIT_EQUIVOCATION = 3


def _log_of(policy: Policy, url: str | None) -> tuple[str, VerifierKey]:
    """The log to follow: ``url`` (or the policy's only log URL) and the key the policy gives for its origin."""
    if not policy.logs:
        raise InvalidParameter("the policy lists no log: the monitor needs the log's key from a 'log' line")
    if url is None:
        urls = [log.url for log in policy.logs if log.url]
        if len(urls) != 1:
            raise InvalidParameter("give the log's URL with --log (the policy names no single log URL)")
        url = urls[0]
    with HttpLogClient(url) as client:
        origin = parse_checkpoint(parse_note(client.checkpoint()).text).origin  # which key; verified in each pass
    keys = [log.vkey for log in policy.logs if log.vkey.name == origin]
    if not keys:
        raise InvalidParameter(f"the log at {url} serves checkpoints of {origin!r}, which the policy does not list")
    return url, keys[0]


def run_monitor(policy_file: Path, *, log_url: str | None = None, peers: list[str] | None = None,
                state: Path | None = None, webhook: str | None = None, evidence: Path | None = None,
                interval: float = 10.0, once: bool = False, out: TextIO | None = None) -> int:
    out = out or sys.stderr
    policy = parse_policy(policy_file.read_bytes())
    url, key = _log_of(policy, log_url)
    monitor = Monitor(url, key, policy, peers=peers or [], state=state)
    last: dict[str, str] = {}
    print(f"tabellion: monitoring {key.name} at {url} with {len(monitor.witnesses)} witnesses and "
          f"{len(monitor.peers)} peers", file=out, flush=True)
    try:
        while True:
            try:
                report = monitor.check()
            except LogEquivocated as exc:
                return _equivocation(exc, webhook, evidence, out)
            except TabellionError as exc:
                if once:
                    raise
                print(f"tabellion: pass failed: {exc}", file=out, flush=True)
            else:
                for line in report.lines:
                    source = line.split(":", 1)[0]
                    if last.get(source) != line:
                        print(line, file=out, flush=True)
                        last[source] = line
            if once:
                return 0
            time.sleep(interval)
    finally:
        monitor.close()


def _equivocation(exc: LogEquivocated, webhook: str | None, evidence: Path | None, out: TextIO) -> int:
    data = exc.evidence.encode()
    if evidence is not None:
        evidence.write_bytes(data)
        where = f"evidence in {evidence}"
    else:
        sys.stdout.write(data.decode())
        sys.stdout.flush()
        where = "evidence on standard output"
    if webhook is not None:
        try:
            send_webhook(webhook, exc.evidence)
            where += f", sent to {webhook}"
        except TabellionError as failed:
            where += f"; the webhook failed: {failed.detail}"
    print(f"tabellion: EQUIVOCATION by {exc.evidence.origin}: {exc.detail} ({where})", file=out, flush=True)
    return EXIT_EQUIVOCATION


def add_monitor_command(commands: Any, command: Command) -> None:
    p = command(commands, "monitor", lambda a: run_monitor(
        a.policy, log_url=a.log, peers=a.peer, state=a.state, webhook=a.webhook, evidence=a.evidence,
        interval=a.interval, once=a.once), "follow a log; compare its checkpoints with its witnesses' and other "
        "monitors'; exit 3 with the evidence on equivocation")
    p.add_argument("--policy", type=Path, required=True, metavar="POLICY_FILE",
                   help="a C2SP tlog-policy naming the log and its witnesses (with URLs)")
    p.add_argument("--log", metavar="URL", help="the log's URL (default: the URL of the policy's log line)")
    p.add_argument("--peer", action="append", default=[], metavar="URL_OR_FILE",
                   help="another monitor's published checkpoint, or any signed checkpoint of the log (repeat)")
    p.add_argument("--state", type=Path, metavar="FILE",
                   help="keep the latest verified checkpoint here (across runs; what peers read)")
    p.add_argument("--webhook", metavar="URL", help="POST the evidence of an equivocation here (JSON)")
    p.add_argument("--evidence", type=Path, metavar="FILE", help="write the evidence here (default: stdout)")
    p.add_argument("--interval", type=float, default=10.0, metavar="SECONDS", help="pause between passes")
    p.add_argument("--once", action="store_true", help="one pass, then exit (0: all agree)")
