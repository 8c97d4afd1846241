"""An auditor's full read of a log from its tiles (``tabellion follow``): the service, or a ``--publish-dir``
folder behind any static web server.

With nothing but the log's two public keys it follows the whole log (``LogFollower`` over ``TileLogClient``):
every checkpoint is signed and consistent with the previous one (and with a checkpoint the auditor kept),
every entry's receipt verifies for its statement and its tree. Then it checks what other tlog-tiles clients
read: each level-0 hash tile holds the RFC 9162 leaf hashes of the statements, each entry bundle their
``leaf_data``, and the root hashed up from the tiles of every level is the checkpoint's root.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from schemas.checkpoint import Checkpoint
from schemas.cose_sign1 import decode_sign1
from schemas.errors import CheckpointInconsistent
from schemas.leaf import leaf_data, leaf_hash
from schemas.note import VerifierKey
from schemas.tiles import TILE_WIDTH, entries_path, tile_width
from transparency.client.follower import FollowedEntry, LogFollower
from transparency.client.tiles import TileLogClient
from verifier.checkpoints import verify_checkpoint
from verifier.keys import KeySet
from verifier.merkle import EMPTY_ROOT

Progress = Callable[[int, int], None]
"""Called now and then with the entries followed and the checkpoint's size."""


@dataclass(frozen=True)
class LogAudit:
    checkpoint: Checkpoint
    checkpoint_text: str
    entries: int
    since: int | None  # the size of the checkpoint the auditor kept, if any


def audit_log(
    client: TileLogClient, log_key: VerifierKey, receipt_keys: KeySet, *, since: str | None = None,
    progress: Progress | None = None,
) -> LogAudit:
    """Follow and check the log ``client`` reads (see the module docstring); raise the first problem found."""
    leaves: list[bytes] = []  # the leaf hashes of one bundle at a time

    def apply(entries: Sequence[FollowedEntry]) -> None:
        for entry in entries:
            leaves.append(leaf_data(decode_sign1(entry.statement)))
            if len(leaves) == TILE_WIDTH:
                _check_bundle(client, entry.index // TILE_WIDTH, leaves)
                leaves.clear()
        if progress is not None and entries:
            progress(entries[-1].index + 1, client.size)

    follower = LogFollower(client, log_key, receipt_keys, apply, page=TILE_WIDTH)
    kept = None
    if since is not None:
        kept = verify_checkpoint(since, log_key).size
        follower.resume(since, 0)
    checkpoint = follower.poll()
    if leaves:
        _check_bundle(client, checkpoint.size // TILE_WIDTH, leaves)
    root = client.subtree_root(0, checkpoint.size) if checkpoint.size else EMPTY_ROOT
    if root != checkpoint.root_hash:
        raise CheckpointInconsistent(
            f"the hash tiles of the tree of {checkpoint.size} hash up to {root.hex()}, not to the checkpoint's root "
            f"{checkpoint.root_hash.hex()}"
        )
    return LogAudit(checkpoint, follower.checkpoint_text, follower.size, kept)


def _check_bundle(client: TileLogClient, index: int, datas: list[bytes]) -> None:
    """Level-0 hash tile ``index`` and entry bundle ``index`` are those of the statements followed."""
    first = index * TILE_WIDTH
    for offset, data in enumerate(datas):
        if client.node(0, first + offset) != leaf_hash(data):
            raise CheckpointInconsistent(f"hash tile 0/{index} does not hold the leaf hash of entry {first + offset}")
    width = tile_width(client.size, 0, index)
    bundle = client.entry_bundle(index, width)
    if bundle[:len(datas)] != datas:
        raise CheckpointInconsistent(f"entry bundle {entries_path(index, width)} does not hold the entries' ids")

