"""A monitor of one log: its checkpoints, what its witnesses cosigned, and what other monitors saw, compared.

Each pass (``check``):

1. the log's latest checkpoint: its signature by the log's key (from the C2SP tlog-policy), and its consistency
   with the last one the monitor verified (the log's RFC 9162 proof), so every checkpoint the monitor sees
   extends every one it saw before, across runs when the monitor keeps its ``state`` file. The log must give that
   proof: a refusal is equivocation; a proof that cannot be read (the log unreachable, an answer past the bound)
   leaves the monitor on the checkpoint it verified, reported, and the next pass asks again;
2. each witness of the policy with a URL (C2SP tlog-witness monitoring API, ``GET <url>/<origin hash>/checkpoint``):
   the latest checkpoint it cosigned, with the log's signature and its own cosignature verified;
3. each peer — another monitor's published ``state`` file, or any URL or file holding a signed checkpoint of
   the log — verified under the log's key;

and every checkpoint of steps 2 and 3 is compared with the log's: at the same size the roots must be equal; at
different sizes the log must prove the smaller is a prefix of the larger. Two checkpoints signed by the log for
the same size with different roots, or a proof that fails, raise ``LogEquivocated`` with both signed notes as
``Evidence`` (``monitor.evidence``). A witness or peer with a larger tree than the log serves the monitor is
reported (a frozen view, or a race with the log's growth), not taken as equivocation: the log cannot prove
consistency with a size it does not serve, and nothing signed conflicts yet.

A peer or witness that cannot be reached, answers more than a checkpoint could be (``answer-too-large``: an endless
or compressed answer is not read past the bound), or serves something that does not verify, is reported and skipped:
only the log's key makes a checkpoint evidence.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from monitor.evidence import Evidence, LogEquivocated, Seen
from schemas.checkpoint import Checkpoint
from schemas.errors import ConsistencyProofInvalid, LogRequestRefused, LogUnreachable, TabellionError
from schemas.note import VerifierKey, parse_note
from schemas.policy import Policy
from transparency.client import HttpLogClient
from transparency.client.bounded import BoundedTransport
from transparency.client.witness import WitnessClient
from verifier.checkpoints import verify_checkpoint
from verifier.merkle import verify_consistency
from verifier.notes import verify_cosignature

MAX_PEER_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Report:
    """What one pass found: the log's checkpoint it verified, and a line per source."""

    checkpoint: Checkpoint
    lines: tuple[str, ...]


class Monitor:
    def __init__(self, log_url: str, log_key: VerifierKey, policy: Policy, *, peers: Sequence[str] = (),
                 state: Path | None = None, timeout: float = 10.0) -> None:
        self.log_url = log_url
        self.log_key = log_key
        self.log = HttpLogClient(log_url, timeout=timeout)
        self.witnesses = [(name, WitnessClient(w.url, w.vkey, timeout=timeout))
                          for name, w in policy.witnesses.items() if w.url]
        self.peers = list(peers)
        self.state = state
        self.timeout = timeout
        self.verified: Seen | None = None
        self.checkpoint: Checkpoint | None = None
        if state is not None and state.exists():
            note = state.read_text("utf-8")
            self.checkpoint = verify_checkpoint(note, log_key)
            self.verified = Seen(f"the monitor's state {state}", note)

    def close(self) -> None:
        self.log.close()
        for _, client in self.witnesses:
            client.close()

    def check(self) -> Report:
        """One pass (see the module docstring); raises ``LogEquivocated`` with the evidence."""
        lines: list[str] = []
        note = self.log.checkpoint()
        latest = verify_checkpoint(note, self.log_key)
        seen = Seen(f"log {self.log_url}", note)
        if self.checkpoint is not None and self.verified is not None:
            if latest.size < self.checkpoint.size:
                raise self._equivocated(f"the log now serves a tree of {latest.size} leaves after one of "
                                        f"{self.checkpoint.size}", self.verified, seen)
            try:
                self._compare(self.verified, self.checkpoint, seen, latest, own=True)
            except LogUnreachable as exc:  # the proof could not be read: keep the checkpoint verified, ask again
                return Report(self.checkpoint, (f"log: checkpoint of size {latest.size} not compared with the one "
                                                f"of size {self.checkpoint.size} verified before ({exc.detail}); "
                                                "kept that one",))
        grew = self.checkpoint is None or latest.size != self.checkpoint.size
        self.checkpoint, self.verified = latest, seen
        if grew:
            lines.append(f"log: checkpoint of size {latest.size}, root {latest.root_hash.hex()[:16]}…, consistent "
                         "with every one seen before")
        for name, client in self.witnesses:
            lines.append(self._witness(name, client, seen, latest))
        for peer in self.peers:
            lines.append(self._peer(peer, seen, latest))
        self._save(note)
        return Report(latest, tuple(lines))

    def _witness(self, name: str, client: WitnessClient, log_seen: Seen, latest: Checkpoint) -> str:
        try:
            text = client.checkpoint(self.log_key.name)
        except TabellionError as exc:
            return f"witness {name}: not checked ({exc.detail})"
        if text is None:
            return f"witness {name}: has cosigned no checkpoint of this log"
        try:
            cosigned = verify_checkpoint(text, self.log_key)
            verify_cosignature(parse_note(text), client.vkey)
        except TabellionError as exc:
            return f"witness {name}: serves a checkpoint that does not verify ({exc.detail})"
        return f"witness {name}: " + self._compare(log_seen, latest, Seen(f"witness {name} {client.url}", text),
                                                    cosigned)

    def _peer(self, peer: str, log_seen: Seen, latest: Checkpoint) -> str:
        try:
            text = _read_peer(peer, self.timeout)
            other = verify_checkpoint(text, self.log_key)
        except (TabellionError, OSError, httpx.HTTPError, UnicodeDecodeError) as exc:
            return f"peer {peer}: not checked ({getattr(exc, 'detail', exc)})"
        return f"peer {peer}: " + self._compare(log_seen, latest, Seen(f"peer {peer}", text), other)

    def _compare(self, a_seen: Seen, a: Checkpoint, b_seen: Seen, b: Checkpoint, *, own: bool = False) -> str:
        """Check two checkpoints signed by the log agree; raise ``LogEquivocated`` when they cannot.

        ``own``: both are checkpoints the log served this monitor, so the log must prove the newer extends the older
        (a refusal is equivocation) and a proof that cannot be read raises ``LogUnreachable`` (not taken as checked).
        """
        if a.size == b.size:
            if a.root_hash != b.root_hash:
                raise self._equivocated(f"two checkpoints of size {a.size} with different roots", a_seen, b_seen)
            return f"agrees at size {a.size}"
        (small_seen, small), (large_seen, large) = sorted(((a_seen, a), (b_seen, b)), key=lambda p: p[1].size)
        if small.size == 0:
            return f"consistent (size {small.size} and {large.size})"
        try:
            proof = self.log.consistency(small.size, large.size)
        except LogRequestRefused as exc:
            if not own and large_seen is b_seen and large.size > (self.checkpoint.size if self.checkpoint else 0):
                return (f"has size {large.size}, larger than the log serves this monitor ({small.size}): "
                        "not comparable yet")
            raise self._equivocated(f"the log gives no consistency proof from size {small.size} to {large.size}: "
                                    f"{exc.detail}", small_seen, large_seen) from exc
        except LogUnreachable as exc:
            if own:
                raise
            return f"not compared: {exc.detail}"
        try:
            verify_consistency(small.size, large.size, small.root_hash, large.root_hash, proof.path)
        except ConsistencyProofInvalid as exc:
            raise self._equivocated(f"the checkpoint of size {large.size} does not extend the one of size "
                                    f"{small.size}: {exc.detail}", small_seen, large_seen,
                                    (small.size, large.size, proof.path)) from exc
        return f"consistent (size {small.size} and {large.size})"

    def _equivocated(self, reason: str, a: Seen, b: Seen,
                     consistency: tuple[int, int, Sequence[bytes]] | None = None) -> LogEquivocated:
        return LogEquivocated(Evidence(self.log_key.name, self.log_key.encode(), reason, (a, b), consistency))

    def _save(self, note: str) -> None:
        """The monitor's latest verified checkpoint, written atomically: its memory across runs, and what it
        publishes for other monitors (serve the file, and name it with their ``--peer``)."""
        if self.state is None:
            return
        tmp = self.state.with_name(f".{self.state.name}.tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(note)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.state)


def _read_peer(peer: str, timeout: float) -> str:
    if peer.startswith(("http://", "https://")):
        with httpx.Client(timeout=timeout, transport=BoundedTransport(max_bytes=MAX_PEER_BYTES)) as http:
            answer = http.get(peer)  # no more than MAX_PEER_BYTES read, nothing inflated, no redirect followed
        if answer.status_code != 200:
            raise OSError(f"GET {peer} answered {answer.status_code}")
        data = answer.content
    else:
        with open(peer, "rb") as fh:
            data = fh.read(MAX_PEER_BYTES + 1)
    if len(data) > MAX_PEER_BYTES:
        raise OSError(f"{peer} is larger than {MAX_PEER_BYTES} bytes")
    return data.decode("utf-8")
