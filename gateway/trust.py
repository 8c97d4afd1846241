"""What the gateway remembers of the log across restarts: the last checkpoint it verified, and the verdict that
the log forked.

``<data_dir>/log-trust.json``::

    {"format": "tabellion-gateway-log-trust/1",
     "checkpoint": "<the last verified checkpoint, as the signed note the log served>",
     "fork": null | {"at": <unix seconds>, "detail": "<why>", "checkpoint": "<the pinned checkpoint then>"}}

A restarted gateway does not start from nothing: its follower resumes from the pinned checkpoint, so the first
checkpoint the log serves after the restart must be consistent with it (RFC 9162 consistency proof). A log
that forked while the gateway was down — another tree under the same key — is caught at the first poll. And
once a fork was seen, the verdict is written here before anything else, so every later start refuses every
request (503 ``log-untrusted``) without asking the log anything.

Only an operator clears it: ``tabellion gateway trust reset --config FILE --reason TEXT`` (``reset``) forgets
the verdict and the pinned checkpoint (the next checkpoint is trusted on first use, as at the first start) and
appends what it cleared, when, by whom and why to ``<data_dir>/trust-events.jsonl``, which the gateway
reports at its next start. Writes replace the file atomically (write, fsync, rename).
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from schemas.errors import TabellionError
from schemas.note import VerifierKey
from verifier.checkpoints import verify_checkpoint

from .errors import LogTrustFileInvalid

log = logging.getLogger(__name__)

TRUST_FILE: Final = "log-trust.json"
EVENTS_FILE: Final = "trust-events.jsonl"
FORMAT: Final = "tabellion-gateway-log-trust/1"


@dataclass(frozen=True)
class ForkVerdict:
    at: int
    detail: str
    checkpoint: str | None  # the checkpoint pinned when the fork was seen

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at, "detail": self.detail, "checkpoint": self.checkpoint}


@dataclass(frozen=True)
class TrustRecord:
    checkpoint: str | None = None
    fork: ForkVerdict | None = None


class LogTrust:
    """The trust file of one gateway data folder, for the log whose checkpoint key is ``vkey``."""

    def __init__(self, data_dir: Path, vkey: VerifierKey) -> None:
        self.path = data_dir / TRUST_FILE
        self.events_path = data_dir / EVENTS_FILE
        self.vkey = vkey

    def load(self) -> TrustRecord:
        """The record kept, its pinned checkpoint verified with the configured key; an empty record when there
        is no file. A file that does not parse, or a checkpoint of another log, raises ``LogTrustFileInvalid``."""
        try:
            raw = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return TrustRecord()
        except (OSError, ValueError) as exc:
            raise LogTrustFileInvalid(f"cannot read {self.path}: {exc}") from exc
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise LogTrustFileInvalid(f"{self.path} is not a {FORMAT} file")
        checkpoint, fork = raw.get("checkpoint"), raw.get("fork")
        if checkpoint is not None:
            if not isinstance(checkpoint, str):
                raise LogTrustFileInvalid(f"{self.path}: the pinned checkpoint is not text")
            try:
                verify_checkpoint(checkpoint, self.vkey)
            except TabellionError as exc:
                raise LogTrustFileInvalid(
                    f"{self.path} pins a checkpoint that the configured log key {self.vkey.name!r} does not verify "
                    f"({exc.detail}); if the gateway now follows another log, clear it with "
                    "'tabellion gateway trust reset'"
                ) from exc
        verdict = None
        if fork is not None:
            if not (isinstance(fork, dict) and isinstance(fork.get("at"), int) and isinstance(fork.get("detail"), str)
                    and isinstance(fork.get("checkpoint"), str | None)):
                raise LogTrustFileInvalid(f"{self.path}: the fork verdict is malformed")
            verdict = ForkVerdict(fork["at"], fork["detail"], fork["checkpoint"])
        return TrustRecord(checkpoint, verdict)

    def pin(self, checkpoint: str) -> None:
        """Keep ``checkpoint`` (verified and consistent with the last one) as the one to resume from. A fork
        verdict already on disk is never overwritten (another worker may have written it)."""
        current = self._read_quietly()
        if current.fork is not None:
            return
        self._write(TrustRecord(checkpoint, None))

    def record_fork(self, detail: str, checkpoint: str | None) -> ForkVerdict:
        """Write the verdict that the log forked, with the checkpoint pinned at the time."""
        verdict = ForkVerdict(int(time.time()), detail, checkpoint)
        self._write(TrustRecord(checkpoint, verdict))
        return verdict

    def reset(self, reason: str, *, operator: str | None = None) -> dict[str, Any]:
        """Forget the verdict and the pinned checkpoint; append the event to the events file and return it."""
        if not reason.strip():
            raise LogTrustFileInvalid("a trust reset needs a reason (--reason)")
        record = self.load_unchecked()
        event = {
            "event": "trust-reset", "at": int(time.time()), "operator": operator or _user(), "reason": reason,
            "cleared_fork": record.fork.to_json() if record.fork else None, "cleared_checkpoint": record.checkpoint,
            "log": self.vkey.name,
        }
        self.events_path.parent.mkdir(parents=True, exist_ok=True)
        with self.events_path.open("a", encoding="utf-8") as fh:  # the event first: a reset is never unrecorded
            fh.write(json.dumps(event, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.path.unlink(missing_ok=True)
        _fsync_dir(self.path.parent)
        return event

    def events(self) -> list[dict[str, Any]]:
        try:
            lines = self.events_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]

    def load_unchecked(self) -> TrustRecord:
        """The record as stored, without verifying the checkpoint (a reset must work after a key change)."""
        try:
            raw = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return TrustRecord()
        except (OSError, ValueError):
            return TrustRecord()
        fork = raw.get("fork") if isinstance(raw, dict) else None
        verdict = None
        if isinstance(fork, dict):
            verdict = ForkVerdict(int(fork.get("at", 0)), str(fork.get("detail", "")),
                                  fork.get("checkpoint") if isinstance(fork.get("checkpoint"), str) else None)
        checkpoint = raw.get("checkpoint") if isinstance(raw, dict) else None
        return TrustRecord(checkpoint if isinstance(checkpoint, str) else None, verdict)

    def _read_quietly(self) -> TrustRecord:
        return self.load_unchecked()

    def _write(self, record: TrustRecord) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"format": FORMAT, "checkpoint": record.checkpoint,
                           "fork": record.fork.to_json() if record.fork else None}, indent=1) + "\n"
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"
