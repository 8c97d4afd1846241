"""Offline receipt verifications per second vs bare Ed25519 verifications per second, interleaved.

    .venv/bin/python -m tools.bench.receipt_verification [--size 100000] [--rounds 10] [--per-round 2000]

A log of ``--size`` entries is built without HTTP (the builder of ``inclusion_proofs``) with one real
signed statement (Ed25519 did:key signer, JSON payload) registered at about a third of the way in; its
receipt is issued against the latest tree head, so the inclusion path has ~log2(size) hashes, as a
receipt fetched from a log of that size would.

Timed, as an auditor would: ``verifier.receipts.verify_receipt(receipt_bytes, statement_bytes, key_set)``
(parse the receipt, check the statement and compute its leaf, recompute the root from the path, verify the
log's Ed25519 signature over the Sig_structure), against ``Ed25519PublicKey.verify`` of a 64-byte
signature over a 32-byte message. The headline is receipt rate / bare rate per round, and its median.
Within a round the two alternate in chunks of ``--chunk`` calls, so a burst of load on a shared machine
falls on both alike; nothing else runs between them.

A second set of rounds (after the headline's, so that it does not disturb them) says where the rest goes:

- each part of the work besides the signature check, timed on its own (in chunks, alternating with the
  others and a bare verify), and all of it in one call;
- "mixed": the bare verify interleaved with that same non-crypto work (one of each in turn). The bare
  loop keeps OpenSSL's code and tables in the caches; between two receipts the Python work has pushed
  them out (and the other way round), so a verify costs more there than in the tight loop. This line
  measures that cost without any receipt-specific crypto, to tell it apart from the Python work itself.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.leaf import leaf_data, leaf_hash, logged_statement, statement_leaf_data
from schemas.receipt import receipt_to_verify
from tools.bench.inclusion_proofs import fill, integrate, log_directory, open_log, receipt_for
from transparency.client.signing import did_of, sign_statement
from transparency.keys import published_key_set
from transparency.log.merkle_tree import PersistentMerkleTree
from transparency.log.reader import LogReader, TreeHead
from verifier.cose import sig_structure_of, verify_over
from verifier.keys import KeySet
from verifier.merkle import root_from_inclusion_proof
from verifier.receipts import verify_receipt
from verifier.statements import DidKeyResolver, verify_statement


def real_statement() -> bytes:
    """A signed statement like the ones the log carries: did:key signer, small canonical JSON payload."""
    key = Ed25519PrivateKey.generate()
    payload = json.dumps(
        {"agent": "did:example:agent-42", "action": "delegate", "scope": ["read:inbox", "send:mail"],
         "ttl": 3600, "operator": did_of(key)},
        separators=(",", ":"), sort_keys=True,
    ).encode()
    return sign_statement(key, payload, subject="did:example:agent-42", content_type="application/json")


def build_with_statement(directory: Path, size: int, statement: bytes) -> tuple[bytes, TreeHead, KeySet]:
    """Build a log of ``size`` entries holding ``statement`` near size/3; the statement's receipt against
    the latest signed head, that head, and the log's key set.

    The statement is checked as registration checks a did:key signer (structure, signature); the log's
    own registrar is not used, so this does not depend on which resolvers a served log chains.
    """
    message = verify_statement(statement, DidKeyResolver()).message
    sequencer = open_log(directory)
    try:
        print(f"building a log of {size:,} entries with one real statement", file=sys.stderr, flush=True)
        fill(sequencer, size // 3)
        integrate(sequencer, [(leaf_data(message), logged_statement(message))])
        fill(sequencer, size)
        reader = LogReader(sequencer.db)
        head = reader.latest_head()
        if head is None:
            raise SystemExit("the log has no signed tree head")
        row = reader.entry_by_id(leaf_data(message))
        if row is None:
            raise SystemExit("the real statement is not in the log")
        receipt = receipt_for(reader, PersistentMerkleTree(sequencer.db), row.index, head.tree_size)
        return receipt, head, published_key_set(sequencer.key, [])
    finally:
        sequencer.stop()


def timed(fn: Callable[[], object], n: int) -> float:
    """Seconds for ``n`` calls of ``fn``."""
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - t0


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000, help="entries in the log (default 10^5)")
    parser.add_argument("--rounds", type=int, default=10, help="rounds, each timing every kind")
    parser.add_argument("--per-round", type=int, default=2000, help="verifications per round and kind")
    parser.add_argument("--chunk", type=int, default=100, help="calls of one kind before switching")
    args = parser.parse_args(argv)

    statement = real_statement()
    with log_directory(None) as directory:
        receipt, head, keys = build_with_statement(directory, args.size, statement)

    verified = verify_receipt(receipt, statement, keys)
    if verified.root != head.root or verified.tree_size != head.tree_size:
        raise SystemExit("the receipt does not verify to the signed head; refusing to time it")
    fields = receipt_to_verify(receipt)
    tree_size, leaf_index, path = fields.inclusion
    print(f"receipt: leaf {leaf_index:,} of a tree of {tree_size:,} ({len(receipt)} bytes, {len(path)} path "
          f"hashes); statement {len(statement)} bytes")

    bare_key = Ed25519PrivateKey.generate()
    bare_public = bare_key.public_key()
    message = bytes(range(32))
    signature = bare_key.sign(message)
    log_key = keys.get(fields.kid)
    statement_leaf = statement_leaf_data(statement)
    leaf = leaf_hash(statement_leaf)

    def one_receipt() -> object:
        return verify_receipt(receipt, statement, keys)

    def one_bare() -> None:
        bare_public.verify(signature, message)

    def work() -> object:
        """What ``verify_receipt`` does besides the signature check (its steps)."""
        f = receipt_to_verify(receipt)
        keys.get(f.kid)
        size, index, nodes = f.inclusion
        root = root_from_inclusion_proof(index, size, leaf_hash(statement_leaf_data(statement)), nodes)
        return sig_structure_of(f.protected_bytes, root)

    def one_mixed() -> None:
        work()
        bare_public.verify(signature, message)

    parts: dict[str, Callable[[], object]] = {
        "parse receipt": lambda: receipt_to_verify(receipt),
        "check statement, its leaf": lambda: statement_leaf_data(statement),
        "leaf hash": lambda: leaf_hash(statement_leaf),
        "root from path": lambda: root_from_inclusion_proof(leaf_index, tree_size, leaf, path),
        "Sig_structure": lambda: sig_structure_of(fields.protected_bytes, verified.root),
        "signature check": lambda: verify_over(fields.alg, log_key, fields.signature,
                                               sig_structure_of(fields.protected_bytes, verified.root)),
    }
    headline = run_rounds({"receipt": one_receipt, "bare": one_bare}, args, "headline")
    ratios = [b / a for a, b in zip(headline["receipt"], headline["bare"], strict=True)]
    where = run_rounds({"bare": one_bare, "work": work, "mixed": one_mixed, **parts}, args, "where it goes")

    us = {kind: statistics.median(v) * 1e6 for kind, v in (*where.items(), *headline.items())}
    print(f"verify_receipt (bytes in, as an auditor):  {1e6 / us['receipt']:9,.0f}/s  ({us['receipt']:5.1f} µs each)")
    print(f"bare Ed25519 verify (32-byte message):     {1e6 / us['bare']:9,.0f}/s  ({us['bare']:5.1f} µs each)")
    print(f"overhead beyond the signature check:        {us['receipt'] - us['bare']:5.1f} µs")
    print("where it goes (the second set of rounds):")
    print("  its parts, each timed on its own (µs): " + ", ".join(f"{name} {us[name]:.1f}" for name in parts
                                                               if name != "signature check"))
    print(f"  all that work in one call: {us['work']:.1f} µs; the log's signature check on its own "
          f"(verify_over, Sig_structure included): {us['signature check']:.1f} µs")
    bare_there = statistics.median(where["bare"]) * 1e6
    print(f"  mixed: bare verify interleaved with that work: {us['mixed']:.1f} µs a pair, "
          f"{us['mixed'] - us['work'] - bare_there:+.1f} µs over the two timed apart (caches, both ways)")
    print(f"ratio receipt/bare: median {statistics.median(ratios):.2f} (rounds: {min(ratios):.2f}..{max(ratios):.2f});"
          " aim >= 0.7")


def run_rounds(kinds: dict[str, Callable[[], object]], args: argparse.Namespace, title: str) -> dict[str, list[float]]:
    """Seconds per call of each kind, one entry per round. Within a round the kinds alternate in chunks of
    ``args.chunk`` calls, in an order that flips every chunk."""
    for fn in kinds.values():  # warm-up
        timed(fn, 200)
    seconds: dict[str, list[float]] = {kind: [] for kind in kinds}
    for r in range(args.rounds):
        spent = dict.fromkeys(kinds, 0.0)
        done = 0
        while done < args.per_round:
            n = min(args.chunk, args.per_round - done)
            order = list(kinds) if (r + done // args.chunk) % 2 == 0 else list(reversed(kinds))
            for kind in order:
                spent[kind] += timed(kinds[kind], n)
            done += n
        for kind in kinds:
            seconds[kind].append(spent[kind] / args.per_round)
        print(f"  {title}, round {r + 1}/{args.rounds}: " + "  ".join(
            f"{kind} {1 / seconds[kind][-1]:,.0f}/s" for kind in list(kinds)[:2]), file=sys.stderr, flush=True)
    return seconds

if __name__ == "__main__":
    main()
