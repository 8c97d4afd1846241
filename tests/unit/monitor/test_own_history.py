"""A monitor never takes a new checkpoint of the log without the log's proof that it extends the last one it
verified. A log that forks and then will not give the proof (any refusal) is equivocation, with both signed notes as
evidence; a proof that cannot be read (the log unreachable, an endless answer) leaves the monitor on the checkpoint
it verified, so the next pass asks again. A real log double on 127.0.0.1, the monitor's state file kept between."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from monitor.evidence import LogEquivocated
from monitor.monitor import Monitor
from schemas import media_types
from schemas.policy import parse_policy
from tests.hostile_server import CHUNK
from tests.http_stub import QuietHandler, serving
from tests.witnessing import TestLog
from verifier.checkpoints import verify_checkpoint

ORIGIN = "fork.test/log"


@contextmanager
def log_double(shown: list[TestLog], proofs: str) -> Iterator[str]:
    """Serves ``shown[0]``'s checkpoint; ``proofs``: "refuse" (a 404 problem) or "endless" (a body that never ends)."""

    class Handler(QuietHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - the http.server hook
            route = urlsplit(self.path).path.strip("/")
            if route == "checkpoint":
                body = shown[0].signed().encode()
                self.send_response(200)
                self.send_header("Content-Type", media_types.CHECKPOINT)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif proofs == "endless":
                self.send_response(200)
                self.send_header("Content-Type", media_types.CBOR)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    while True:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))
                except OSError:
                    return
            else:
                body = b'{"type": "urn:tabellion:error:not-found", "status": 404}'
                self.send_response(404)
                self.send_header("Content-Type", media_types.PROBLEM_JSON)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

    with serving(Handler) as base:
        yield base


def _forks() -> tuple[TestLog, TestLog]:
    a = TestLog(ORIGIN)
    a.append(5)
    b = a.fork(3, "fork-b")
    b.append(6)  # fork B: 9 leaves whose first 3 agree with A's, then differ
    return a, b


def _monitor(url: str, a: TestLog, state: Path) -> Monitor:
    return Monitor(url, a.vkey, parse_policy(f"log {a.vkey.encode()}\nquorum none\n"), state=state, timeout=5)


def test_a_fork_whose_proof_the_log_refuses_is_equivocation(tmp_path: Path) -> None:
    a, b = _forks()
    shown = [a]
    state = tmp_path / "monitor.state"
    with log_double(shown, "refuse") as url:
        monitor = _monitor(url, a, state)
        assert monitor.check().checkpoint.size == 5
        shown[0] = b  # the log now shows fork B, larger, and will not prove it extends A
        with pytest.raises(LogEquivocated) as caught:
            monitor.check()
        monitor.close()
    notes = [seen.note for seen in caught.value.evidence.checkpoints]
    assert [verify_checkpoint(n, a.vkey).size for n in notes] == [5, 9]
    assert verify_checkpoint(state.read_text(), a.vkey).size == 5  # fork B was never taken


def test_an_unreadable_proof_keeps_the_verified_checkpoint(tmp_path: Path) -> None:
    a, b = _forks()
    shown = [a]
    state = tmp_path / "monitor.state"
    with log_double(shown, "endless") as url:
        monitor = _monitor(url, a, state)
        monitor.check()
        shown[0] = b
        report = monitor.check()
        monitor.close()
    assert report.checkpoint.size == 5 and "not compared" in " ".join(report.lines)
    assert verify_checkpoint(state.read_text(), a.vkey).size == 5
