"""Evidence that a log showed two histories: two checkpoints its key signed that cannot both be true.

    {"type": "tabellion-log-equivocation", "version": 1,
     "origin": "<the log's origin>", "log_key": "<its vkey>",
     "reason": "<what conflicts, in words>",
     "detected_at": "<RFC 3339 UTC>",
     "checkpoints": [{"source": "log <url>", "note": "<signed checkpoint note>"},
                     {"source": "witness w1 <url>", "note": "<signed note, with the witness's cosignature>"}],
     "consistency": {"old": n, "new": m, "path": [base64, ...]}     # when a proof was served and failed
    }

Anyone holding the log's public key checks it: both notes verify under the log key. Two notes for the same size
with different roots prove the equivocation offline, on their own. For notes of different sizes the proof is not
self-contained: the consistency path recorded here is what the log served, but the log did not sign it, so a
reader asks the log (or any copy of it) for the proof between the two sizes again — a proof that fails, or a log
that will not give one, confirms it. A witness's cosignature on one of them adds that the witness saw the log show
it that.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import httpx

from schemas.errors import LogUnreachable, TabellionError, VerificationError
from transparency.client.bounded import bounded_request

EVIDENCE_TYPE: Final = "tabellion-log-equivocation"
EVIDENCE_VERSION: Final = 1


@dataclass(frozen=True)
class Seen:
    """A signed checkpoint and where the monitor got it."""

    source: str
    note: str


@dataclass(frozen=True)
class Evidence:
    origin: str
    log_key: str
    reason: str
    checkpoints: tuple[Seen, Seen]
    consistency: tuple[int, int, Sequence[bytes]] | None = None
    detected_at: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))

    def json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "type": EVIDENCE_TYPE, "version": EVIDENCE_VERSION, "origin": self.origin, "log_key": self.log_key,
            "reason": self.reason, "detected_at": self.detected_at,
            "checkpoints": [{"source": s.source, "note": s.note} for s in self.checkpoints],
        }
        if self.consistency is not None:
            old, new, path = self.consistency
            document["consistency"] = {"old": old, "new": new, "path": [base64.b64encode(h).decode() for h in path]}
        return document

    def encode(self) -> bytes:
        return (json.dumps(self.json(), indent=1) + "\n").encode()


class LogEquivocated(VerificationError):
    """The log signed two checkpoints that cannot both be true; ``evidence`` holds both."""

    code = "log-equivocated"
    title = "The log showed two histories"

    def __init__(self, evidence: Evidence) -> None:
        super().__init__(evidence.reason)
        self.evidence = evidence


class WebhookFailed(TabellionError):
    code = "monitor-webhook-failed"
    title = "The evidence could not be delivered"


def send_webhook(url: str, evidence: Evidence, *, timeout: float = 10.0) -> None:
    """POST the evidence as JSON; anything but a 2xx answer raises ``WebhookFailed``."""
    try:
        answer = bounded_request("POST", url, content=evidence.encode(), headers={"Content-Type": "application/json"},
                                 timeout=timeout, max_bytes=64 * 1024)
    except (httpx.HTTPError, LogUnreachable) as exc:
        raise WebhookFailed(f"POST {url}: {exc}") from exc
    if not 200 <= answer.status_code < 300:
        raise WebhookFailed(f"POST {url} answered {answer.status_code}")
