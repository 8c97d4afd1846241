"""The log gathers witness cosignatures on its checkpoints (C2SP tlog-witness, as the client), off the write path.

The witnesses and the quorum the log aims for are a C2SP tlog-policy file (``Settings.witness_policy``): every
``witness`` line with a URL is asked to cosign. A thread of its own runs rounds: take the latest checkpoint,
send it in parallel to every witness that has not cosigned it (``add-checkpoint`` with the consistency proof
from the size that witness last cosigned; a 409 teaches that size and the request is made again), verify each
answer against that witness's key, and publish as the answers come in:

- the latest checkpoint with every cosignature gathered for it (``GET /checkpoint`` serves it so);
- the newest checkpoint whose cosignatures meet the policy's quorum, the *witnessed* checkpoint
  (``GET /checkpoint/witnessed``), kept in ``witnessed-checkpoint`` in the data folder (written atomically)
  so that a restart serves it again before the first round ends.

Registration never waits for any of this: the sequencer only wakes the thread after a commit. A round lasts
as long as its slowest witness (at most ``witness_timeout_s``); a witness that failed is skipped for a back-off
that doubles with each failure up to ``witness_max_backoff_s``, so a slow or dead witness costs the others one
round at most, and is asked again (from the size it holds) once it is back. Under load, rounds skip the
checkpoints made while the previous round ran: witnesses see the latest one, with a proof from what they hold.

The log keeps nothing authoritative here: the cosignatures are the witnesses' to give again (a witness
cosigns its latest checkpoint again when asked with the same size), and every published note is one a
relying party verifies itself.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from schemas.checkpoint import Checkpoint, parse_checkpoint
from schemas.errors import MalformedWitnessRequest, NoteSignatureInvalid, TabellionError
from schemas.note import Note, NoteSignature, VerifierKey, encode_signature_line, parse_note
from schemas.policy import Policy, PolicyWitness
from schemas.witness import AddCheckpoint
from transparency.client.witness import (
    WitnessClient,
    WitnessRequestRefused,
    WitnessSizeConflict,
    WitnessUnreachable,
)
from transparency.log.merkle_tree import PersistentMerkleTree
from transparency.log.reader import LogReader
from transparency.log.storage import LogLocation, open_database
from verifier.notes import verify_cosignature
from verifier.policy import quorum_met, verify_witnessed_checkpoint

log = logging.getLogger(__name__)

WITNESSED_FILE = "witnessed-checkpoint"
CONFLICT_RETRIES = 3
FIRST_BACKOFF_S = 0.5


@dataclass(frozen=True)
class Cosigned:
    """A checkpoint of this log and the cosignatures gathered for it: ``note`` is the log's signed note with the
    witnesses' lines appended; ``cosigners`` are the policy names of those witnesses."""

    size: int
    note: str
    cosigners: frozenset[str]
    lines: tuple[NoteSignature, ...] = ()


@dataclass
class _Witness:
    policy: PolicyWitness
    client: WitnessClient
    known_size: int | None = None  # the size it last cosigned (None: not known yet; ask from 0, learn from 409)
    failures: int = 0
    retry_at: float = 0.0
    problem: str = field(default="", repr=False)


class LogView:
    """The gatherer's own read connection to the log: the latest signed checkpoint and consistency proofs."""

    def __init__(self, location: LogLocation) -> None:
        self.db = open_database(location, create=False)
        self.reader = LogReader(self.db)
        self.tree = PersistentMerkleTree(self.db)

    def close(self) -> None:
        self.db.close()

    def latest(self) -> tuple[str, Checkpoint]:
        head = self.reader.latest_head()
        if head is None:
            raise TabellionError("the log has no signed tree head")
        return head.checkpoint, parse_checkpoint(parse_note(head.checkpoint).text)

    def root(self, size: int) -> bytes | None:
        head = self.reader.head(size)
        return head.root if head is not None else None

    def consistency(self, old: int, new: int) -> tuple[bytes, ...]:
        return self.tree.consistency_path(old, new) if 0 < old < new else ()


class CosignatureGatherer:
    def __init__(
        self, policy: Policy, log_key: VerifierKey, view: LogView, data_dir: Path, *, timeout: float = 5.0,
        max_backoff: float = 10.0, on_published: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self.log_key = log_key
        self.view = view
        self.path = data_dir / WITNESSED_FILE
        self.max_backoff = max_backoff
        self.on_published = on_published
        self.clock = clock
        self.witnesses = [_Witness(w, WitnessClient(w.url, w.vkey, timeout=timeout))
                          for w in policy.witnesses.values() if w.url]
        self._lock = threading.Lock()
        self._latest: Cosigned | None = None
        self._witnessed: Cosigned | None = self._load()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max(1, len(self.witnesses)), thread_name_prefix="tabellion-witness")

    # --- what the service serves ------------------------------------------------------------------------

    def latest(self) -> Cosigned | None:
        """The latest checkpoint a round has worked on, with the cosignatures gathered for it so far."""
        with self._lock:
            return self._latest

    def witnessed(self) -> Cosigned | None:
        """The newest checkpoint whose cosignatures meet the policy's quorum."""
        with self._lock:
            return self._witnessed

    # --- the thread -----------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="tabellion-cosignatures", daemon=True)
        self._thread.start()
        self.notify()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._pool.shutdown(wait=True)
        for witness in self.witnesses:
            witness.client.close()
        self.view.close()

    def notify(self) -> None:
        """A new checkpoint was committed (called from the sequencer's thread: it only sets an event)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._until_next_retry())
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.round()
            except Exception:  # noqa: BLE001 - the thread's edge: keep gathering, say why
                log.exception("a round of cosignatures failed unexpectedly")
                self._stop.wait(1.0)

    def _until_next_retry(self) -> float | None:
        now = self.clock()
        pending = [w.retry_at - now for w in self.witnesses if w.retry_at > now]
        return max(0.05, min(pending)) if pending else None

    # --- one round ------------------------------------------------------------------------------------

    def round(self) -> Cosigned | None:
        """Ask every witness that has not cosigned the latest checkpoint (and is not backing off) to cosign it."""
        text, checkpoint = self.view.latest()
        with self._lock:
            current = self._latest if self._latest is not None and self._latest.size == checkpoint.size else None
            fresh = current is None
        if current is None:
            current = Cosigned(checkpoint.size, text, frozenset())
        now = self.clock()
        due = [w for w in self.witnesses if w.policy.name not in current.cosigners and w.retry_at <= now]
        if fresh:
            self._publish(current, text)
        futures = {self._pool.submit(self._cosignature, w, text, checkpoint): w for w in due}
        for future in as_completed(futures):
            lines = future.result()
            if lines:
                current = Cosigned(checkpoint.size, "", current.cosigners | {futures[future].policy.name},
                                   (*current.lines, *lines))
                self._publish(current, text)
        return current

    def _publish(self, current: Cosigned, text: str) -> None:
        note = text + "".join(encode_signature_line(line) for line in current.lines)
        cosigned = Cosigned(current.size, note, current.cosigners, current.lines)
        witnessed = quorum_met(self.policy, current.cosigners)
        with self._lock:
            self._latest = cosigned
            before = self._witnessed
            grew = witnessed and (before is None or cosigned.size > before.size or (
                cosigned.size == before.size and len(cosigned.cosigners) > len(before.cosigners)))
            if grew:
                self._witnessed = cosigned
        if grew:
            self._save(note)
        if self.on_published is not None:
            self.on_published()

    def _cosignature(self, witness: _Witness, text: str, checkpoint: Checkpoint) -> tuple[NoteSignature, ...]:
        """The witness's verified cosignature lines on ``checkpoint``, or () after logging why not."""
        old = witness.known_size if witness.known_size is not None and witness.known_size <= checkpoint.size else 0
        for _ in range(CONFLICT_RETRIES):
            try:
                proof = self.view.consistency(old, checkpoint.size)
                lines = witness.client.add_checkpoint(AddCheckpoint(old, proof, text))
            except WitnessSizeConflict as exc:
                if exc.known_size > checkpoint.size:
                    return self._failed(witness, f"it has cosigned a tree of {exc.known_size} leaves of this log, "
                                        f"larger than the log's {checkpoint.size}: it saw a checkpoint this log "
                                        "does not have", error=True)
                witness.known_size = old = exc.known_size
                continue
            except WitnessRequestRefused as exc:
                return self._failed(witness, exc.detail, error=exc.answer_status == 422)
            except (WitnessUnreachable, MalformedWitnessRequest, TabellionError) as exc:
                return self._failed(witness, exc.detail)
            return self._verified(witness, lines, text, checkpoint)
        return self._failed(witness, f"its size kept changing ({CONFLICT_RETRIES} conflicts in a row)")

    def _verified(self, witness: _Witness, lines: Sequence[NoteSignature], text: str,
                  checkpoint: Checkpoint) -> tuple[NoteSignature, ...]:
        key = witness.policy.vkey
        own = tuple(line for line in lines if (line.name, line.key_id) == (key.name, key.key_id))
        if not own:
            return self._failed(witness, f"it answered no cosignature by its key {key.name}+{key.key_id.hex()}",
                                error=True)
        try:
            verify_cosignature(Note(parse_note(text).text, own), key)
        except NoteSignatureInvalid as exc:
            return self._failed(witness, f"its cosignature does not verify: {exc.detail}", error=True)
        witness.known_size, witness.failures, witness.retry_at = checkpoint.size, 0, 0.0
        if witness.problem:
            log.info("witness %s cosigns again (tree size %d)", witness.policy.name, checkpoint.size)
            witness.problem = ""
        return own

    def _failed(self, witness: _Witness, why: str, *, error: bool = False) -> tuple[NoteSignature, ...]:
        witness.failures += 1
        delay = min(self.max_backoff, FIRST_BACKOFF_S * 2 ** (witness.failures - 1))
        witness.retry_at = self.clock() + delay
        if why != witness.problem:  # once per distinct reason: a witness down for an hour is one line
            (log.error if error else log.warning)("witness %s did not cosign: %s (next try in %.1f s)",
                                                  witness.policy.name, why, delay)
            witness.problem = why
        return ()

    # --- the witnessed checkpoint on disk ---------------------------------------------------------------

    def _load(self) -> Cosigned | None:
        """The witnessed checkpoint kept by the last run, if it still verifies and is a checkpoint of this log."""
        try:
            text = self.path.read_text("utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("ignoring %s: %s", self.path, exc)
            return None
        try:
            witnessed = verify_witnessed_checkpoint(text, self.policy, self.log_key)
        except TabellionError as exc:
            log.warning("ignoring %s: %s", self.path, exc.detail)
            return None
        checkpoint = witnessed.checkpoint
        if self.view.root(checkpoint.size) != checkpoint.root_hash:
            log.warning("ignoring %s: it is not a checkpoint of this log", self.path)
            return None
        note = parse_note(text)
        cosigners = frozenset(witnessed.cosigners)
        keys = {(w.vkey.name, w.vkey.key_id) for name, w in self.policy.witnesses.items() if name in cosigners}
        lines = tuple(s for s in note.signatures if (s.name, s.key_id) in keys)
        return Cosigned(checkpoint.size, text, cosigners, lines)

    def _save(self, note: str) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            with tmp.open("w", encoding="utf-8") as fh:
                fh.write(note)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("could not keep the witnessed checkpoint in %s: %s", self.path, exc)
