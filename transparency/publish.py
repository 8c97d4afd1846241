"""``--publish-dir DIR``: the log's reads as immutable files, for any static web server or object store.

After the sequencer commits, a publisher thread writes into ``DIR``, under the paths the service answers on
(so a client reads either the same way, ``transparency.client.tiles``):

- ``tile/<L>/<N>[.p/<W>]`` and ``tile/entries/<N>[.p/<W>]``: C2SP tlog-tiles hash tiles and entry bundles;
- ``statements/<N>[.p/<W>]``: Tabellion's statement bundles, the logged statements with their receipts
  (``schemas.tiles``), which a follower needs to fold the log;
- ``checkpoint``: the latest signed checkpoint, written last and replaced atomically, so every file a
  checkpoint needs is in place before it appears;
- ``log/vkey`` and ``.well-known/scitt-keys``: the log's public keys, as the service serves them (a client
  should have them from elsewhere: they are there so that the folder is complete).

Every file but ``checkpoint`` and the keys is written once (a temporary file, fsync, rename) and never changes;
a partial tile of width ``W`` stays valid forever, and is left in place when the full tile appears (C2SP lets
a client fall back to the full tile when a partial one is gone, so an operator may delete them). The
directories written are synced before the checkpoint is replaced, so after a crash the published checkpoint
never names a missing tile; on start the publisher checks that ``DIR``'s checkpoint is one of this log's
(signed by its key, with the root the log has at that size) and carries on from it.

Only the sequencer publishes (with several processes on one PostgreSQL log, the one holding the lock), so
the published checkpoint never goes back, whoever takes over. Publishing runs beside integration, at most
every ``interval_s``, coalescing batches; it never delays a receipt.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from schemas.errors import BadInput, ConfigurationError, VerificationError
from schemas.note import VerifierKey
from schemas.tiles import TILE_HEIGHT, TILE_WIDTH, entries_path, statements_path, tile_path
from transparency.log.merkle_tree import PersistentMerkleTree
from transparency.log.reader import LogReader
from transparency.log.resources import LoggedEntry, LogResources, encode_entries
from transparency.log.storage import LogLocation, open_database
from verifier.checkpoints import verify_checkpoint

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint"
VKEY = "log/vkey"
KEY_SET = ".well-known/scitt-keys"
INTERVAL_S = 0.25


class Publisher:
    def __init__(
        self, directory: Path, location: LogLocation, vkey: VerifierKey, key_set: bytes, *,
        is_sequencer: Callable[[], bool] = lambda: True, interval_s: float = INTERVAL_S,
    ) -> None:
        self.directory = directory
        self.vkey = vkey
        self.is_sequencer = is_sequencer
        self.interval_s = interval_s
        self.db = open_database(location, create=False)
        self.resources = LogResources(LogReader(self.db), PersistentMerkleTree(self.db))
        self.published = -1  # the size of DIR's checkpoint; -1: none yet
        self._bundle: tuple[int, list[LoggedEntry]] = (0, [])  # the statement bundle being filled, its entries
        self._grown = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.published = self._check_published()
            self._write(VKEY, (vkey.encode() + "\n").encode(), replace=True)
            self._write(KEY_SET, key_set, replace=True)
        except BaseException:
            self.db.close()
            raise

    def _check_published(self) -> int:
        """The size of ``DIR``'s checkpoint if it is this log's (else ``ConfigurationError``); -1 if there is none."""
        path = self.directory / CHECKPOINT
        if not path.exists():
            return -1
        try:
            published = verify_checkpoint(path.read_text(), self.vkey, self.vkey.name)
        except (BadInput, VerificationError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"{path} is not a checkpoint of this log: {exc}") from exc
        size = self.resources.latest_head().tree_size
        if published.size > size or (published.size and self.resources.tree.root(published.size) !=
                                      published.root_hash):
            raise ConfigurationError(
                f"{path} is a checkpoint of size {published.size} that this log (of size {size}) never signed"
            )
        return published.size

    # --- the thread -------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="tabellion-publisher", daemon=True)
        self._thread.start()
        self.notify()

    def notify(self) -> None:
        """The log grew (called in the sequencer's thread: only sets a flag)."""
        self._grown.set()

    def stop(self) -> None:
        self._stop.set()
        self._grown.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None
        self.db.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._grown.wait()
            self._grown.clear()
            if self._stop.is_set():
                return
            if self.is_sequencer():
                try:
                    self.publish()
                except Exception:  # noqa: BLE001 - the edge of the publisher thread: say so, try again
                    log.exception("publishing the log into %s failed; retrying", self.directory)
                    self._grown.set()
            self._stop.wait(self.interval_s)

    # --- publishing -------------------------------------------------------------------------------

    def publish(self) -> int:
        """Write what the latest head adds to the published files, then its checkpoint; the size published."""
        head = self.resources.latest_head()
        size, old = head.tree_size, max(self.published, 0)
        if size <= self.published:
            return self.published
        synced: set[Path] = set()
        level = 0
        while size >> (TILE_HEIGHT * level):
            old_hashes, hashes = old >> (TILE_HEIGHT * level), size >> (TILE_HEIGHT * level)
            for index in range(old_hashes // TILE_WIDTH, (hashes - 1) // TILE_WIDTH + 1):
                width = min(TILE_WIDTH, hashes - index * TILE_WIDTH)
                synced.add(self._write(tile_path(level, index, width),
                                       functools.partial(self.resources.tile, level, index, width, size)))
                if level == 0:
                    synced.add(self._write(entries_path(index, width),
                                           functools.partial(self.resources.entry_bundle, index, width, size)))
                    synced.add(self._write(statements_path(index, width),
                                           functools.partial(self._statement_bundle, index, width)))
            level += 1
        for folder in synced:
            _fsync_directory(folder)
        self._write(CHECKPOINT, head.checkpoint.encode(), replace=True)
        self.published = size
        return size

    def _statement_bundle(self, index: int, width: int) -> bytes:
        """The bundle's entries with their receipts; those of the bundle being filled are kept, so each receipt
        is built once."""
        kept_index, kept = self._bundle
        if kept_index != index:
            kept = []
        start = index * TILE_WIDTH
        if len(kept) < width:
            kept = [*kept[:width], *self.resources.bundle_entries(start + len(kept), width - len(kept))]
        self._bundle = (index, kept if width < TILE_WIDTH else [])
        return encode_entries(kept[:width])

    def _write(self, path: str, data: bytes | Callable[[], bytes], *, replace: bool = False) -> Path:
        """Write ``DIR/path`` through a synced temporary file and a rename; an immutable file already there is
        left as it is. The folder written into."""
        target = self.directory / path
        if target.exists() and not replace:
            return target.parent
        target.parent.mkdir(parents=True, exist_ok=True)
        content = data() if callable(data) else data
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        with temporary.open("wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        temporary.replace(target)
        if replace:
            _fsync_directory(target.parent)
        return target.parent


def _fsync_directory(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
