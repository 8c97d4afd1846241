"""The log's integrity checks, one function per thing that must hold, each raising the ``LogCorrupted``
subclass that names the class of corruption (``schemas.errors``: statement, entry id, missing entry, entry
metadata, truncation, tree head, tree node, entry-id index).

The start-up runs the cheap ones on what it loads anyway (``Sequencer._open_log``, ``IdentityFollower.catch_up``);
``transparency.log.fsck`` runs all of them on everything. They recompute with the verifier's code (leaves with
``schemas.leaf``, checkpoints with ``verifier.checkpoints``, receipt signatures with ``verifier.cose``), never
with the writer's (pymerkle, ``transparency.receipts``), so the writer does not vouch for itself.

Each entry is recorded three times: its statement (whose hash is its id), its stored id, and the leaf hash
the tree holds (under the signed heads). When one of the three disagrees with the other two, it is the one
named (``check_leaf``); the signed heads have the last word (``check_signed_head``, ``check_head_root``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from schemas import cose_labels as L
from schemas.cose_sign1 import decode_protected_header
from schemas.errors import (
    BadInput,
    EntryIdCorrupted,
    EntryMissing,
    LogCorrupted,
    LogTruncated,
    StatementCorrupted,
    TreeHeadCorrupted,
    TreeNodeCorrupted,
    VerificationError,
)
from schemas.leaf import leaf_hash, statement_leaf_data
from schemas.note import VerifierKey, ed25519_vkey, parse_note
from transparency.log.reader import TreeHead
from verifier.checkpoints import verify_checkpoint
from verifier.cose import sig_structure_of, verify_over
from verifier.keys import KeySet


def short(digest: bytes, other: bytes = b"") -> str:
    """A hash as a problem line shows it: in hex, cut after its first 8 bytes, or after the first byte where
    it differs from ``other`` (the hash it is compared with) if that is later."""
    differs = next((i for i, (a, b) in enumerate(zip(digest, other, strict=False)) if a != b), 0)
    shown = max(8, differs + 1)
    return digest.hex() if shown >= len(digest) else digest[:shown].hex() + ".."


@dataclass(frozen=True)
class HeadKeys:
    """What a stored tree head is checked with: the log's origin and its keys (current and retired), as
    receipt keys (by kid) and as signed-note keys (name = origin)."""

    origin: str
    receipts: KeySet
    notes: tuple[VerifierKey, ...]


def head_keys(origin: str, keys: KeySet) -> HeadKeys:
    notes = tuple(
        ed25519_vkey(origin, pk.public_bytes(Encoding.Raw, PublicFormat.Raw))
        for pk in keys.keys.values() if isinstance(pk, Ed25519PublicKey)
    )
    if not notes:
        raise LogCorrupted("the log has no Ed25519 key to check its checkpoints with")
    return HeadKeys(origin, keys, notes)


def statement_id(statement: bytes) -> tuple[bytes | None, str]:
    """The entry id recomputed from a logged statement (``schemas.leaf``), or ``None`` and why it does not
    decode."""
    try:
        return statement_leaf_data(statement, "logged statement"), ""
    except BadInput as exc:
        return None, exc.detail


def check_leaf(index: int, stored: bytes, recomputed: bytes | None, tree_leaf: bytes | None, why: str = "") -> None:
    """The three records of entry ``index`` agree: the id ``recomputed`` from its statement (``None``: it does
    not decode, ``why``), its ``stored`` id and the leaf hash the tree holds (``tree_leaf``; ``None``: not
    looked at). The one that disagrees with the other two is named; with no majority, the entry id."""
    tree_holds_stored = tree_leaf is not None and leaf_hash(stored) == tree_leaf
    if recomputed == stored and (tree_leaf is None or tree_holds_stored):
        return
    if recomputed is None:
        raise StatementCorrupted(f"entry {index}: its statement does not decode: {why}")
    if recomputed == stored:
        assert tree_leaf is not None
        raise TreeNodeCorrupted(
            f"tree node (0, {index}): stored leaf hash {short(tree_leaf, leaf_hash(stored))} is not that of "
            f"entry {index} ({short(leaf_hash(stored), tree_leaf)})"
        )
    if tree_holds_stored:
        raise StatementCorrupted(
            f"entry {index}: its statement hashes to {short(recomputed, stored)}, not to its entry id "
            f"{short(stored, recomputed)} (the id the tree holds)"
        )
    neither = "" if tree_leaf is None or leaf_hash(recomputed) == tree_leaf else "; the tree holds neither"
    raise EntryIdCorrupted(
        f"entry {index}: stored entry_id {short(stored, recomputed)} != recomputed {short(recomputed, stored)}{neither}"
    )


def missing_entries(first: int, end: int) -> str:
    """``entry 4 is missing`` or ``entries 4..9 are missing`` for the range ``[first, end)``."""
    return f"entry {first} is missing" if end - first == 1 else f"entries {first}..{end - 1} are missing"


def check_contiguous(expected: int, index: int) -> None:
    """The next stored entry is ``index`` where entry ``expected`` should come: rows were deleted."""
    if index != expected:
        raise EntryMissing(f"{missing_entries(expected, index)} (the next stored entry is {index})")


def check_entries_end(head_size: int, entries_end: int) -> None:
    """The entries end where the latest signed tree head does (``entries_end``: 1 + the last entry's index).
    Fewer is a truncation; more are entries that no signed head covers."""
    if entries_end < head_size:
        raise LogTruncated(
            f"the latest signed tree head covers {head_size} entries but the entries end at {entries_end}: "
            f"{missing_entries(entries_end, head_size)}"
        )
    if entries_end > head_size:
        raise TreeHeadCorrupted(
            f"entries {head_size}..{entries_end - 1} are covered by no signed tree head "
            f"(the latest is of size {head_size})"
        )


def check_signed_head(head: TreeHead, keys: HeadKeys) -> None:
    """The stored head is one the log signed, and says one thing: its checkpoint is signed by a log key
    (``verifier.checkpoints``) and names its size and root column; its receipt header names a log key, RFC 9162
    proofs, the origin and the head's time, and its receipt signature covers its root (``verifier.cose``)."""
    where = f"tree head {head.tree_size}"
    try:
        vkey = keys.notes[0]
        if len(keys.notes) > 1:  # retired keys too: the one that signed (the note is parsed again to verify)
            signers = {(s.name, s.key_id) for s in parse_note(head.checkpoint).signatures}
            vkey = next((k for k in keys.notes if (k.name, k.key_id) in signers), vkey)
        checkpoint = verify_checkpoint(head.checkpoint, vkey, keys.origin)
    except (BadInput, VerificationError) as exc:
        raise TreeHeadCorrupted(f"{where}: its checkpoint: {exc.detail}") from exc
    if checkpoint.size != head.tree_size:
        raise TreeHeadCorrupted(f"{where}: its checkpoint is of tree size {checkpoint.size}")
    if checkpoint.root_hash != head.root:
        raise TreeHeadCorrupted(
            f"{where}: stored root {short(head.root, checkpoint.root_hash)} != the root its checkpoint signs "
            f"{short(checkpoint.root_hash, head.root)}"
        )
    try:
        header = decode_protected_header(head.receipt_protected, "receipt protected header")
    except BadInput as exc:
        raise TreeHeadCorrupted(f"{where}: its receipt header: {exc.detail}") from exc
    try:
        kid, alg, claims = header.get(L.KID), header.get(L.ALG), header.get(L.CWT_CLAIMS)
        if not isinstance(kid, bytes) or not isinstance(alg, int):
            raise TreeHeadCorrupted(f"{where}: its receipt header has no kid or alg")
        key = keys.receipts.get(kid)
        if header.get(L.VDS) != L.VDS_RFC9162_SHA256 or not isinstance(claims, Mapping) or (
            claims.get(L.CWT_ISS), claims.get(L.CWT_IAT)
        ) != (keys.origin, head.timestamp):
            raise TreeHeadCorrupted(
                f"{where}: its receipt header is not the log's (RFC 9162 receipts of {keys.origin!r} issued at "
                f"{head.timestamp})"
            )
        verify_over(alg, key, head.receipt_signature, sig_structure_of(head.receipt_protected, head.root))
    except (BadInput, VerificationError) as exc:
        raise TreeHeadCorrupted(f"{where}: its receipt signature: {exc.detail}") from exc


def check_head_root(head: TreeHead, recomputed: bytes, source: str) -> None:
    """The signed root of ``head`` is the root ``recomputed`` from ``source`` (the entries, the stored tree)."""
    if head.root != recomputed:
        raise LogCorrupted(
            f"tree head {head.tree_size}: its signed root {short(head.root, recomputed)} is not the root of the "
            f"first {head.tree_size} leaves recomputed from {source} ({short(recomputed, head.root)})"
        )


def check_leaves_held(start: int, rows: Sequence[tuple[int, bytes]], tree_leaves: Sequence[bytes]) -> list[int]:
    """Entries ``start``, ``start + 1``, … (``rows``: index and stored id) are contiguous and each id is the leaf
    the tree holds (``tree_leaves``: level-0 hashes from ``start``). The indices whose id is not, for the caller
    to settle with ``check_leaf`` (which reads their statements); a gap raises ``EntryMissing``."""
    mismatched = []
    for offset, (index, stored) in enumerate(rows):
        check_contiguous(start + offset, index)
        if offset >= len(tree_leaves):
            raise TreeNodeCorrupted(f"tree node (0, {index}) is missing")
        if leaf_hash(stored) != tree_leaves[offset]:
            mismatched.append(index)
    return mismatched
