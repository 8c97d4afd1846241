"""Offline receipt verifications per second vs bare Ed25519 verifications per second, interleaved.

    .venv/bin/python -m tools.bench.receipt_verification [--size 100000] [--rounds 10] [--per-round 2000]

A log of ``--size`` entries is built without HTTP (the builder of ``inclusion_proofs``) with one real
signed statement (Ed25519 did:key signer, JSON payload) registered at about a third of the way in; its
receipt is issued against the latest tree head, so the inclusion path has ~log2(size) hashes, as a
receipt fetched from a log of that size would.

Timed, as an auditor would: ``verifier.receipts.verify_receipt(receipt_bytes, statement_bytes, key_set)``
(parse the receipt, decode the statement, compute its leaf, recompute the root from the path, verify the
log's Ed25519 signature over the Sig_structure), against ``Ed25519PublicKey.verify`` of a 64-byte
signature over a 32-byte message. The two alternate in rounds in the same process; the ratio is
receipt rate / bare rate per round, and its median is reported.
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

from schemas.leaf import leaf_data, logged_statement
from schemas.receipt import parse_receipt
from tools.bench.inclusion_proofs import fill, integrate, log_directory, open_log, receipt_for
from transparency.client.signing import did_of, sign_statement
from transparency.keys import published_key_set
from transparency.log.merkle_tree import PersistentMerkleTree
from transparency.log.store import LogReader, TreeHead
from verifier.keys import KeySet
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
        receipt = receipt_for(reader, PersistentMerkleTree(sequencer.db.conn), row.index, head.tree_size)
        return receipt, head, published_key_set(sequencer.key, [])
    finally:
        sequencer.stop()


def rate(fn: Callable[[], object], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - t0)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000, help="entries in the log (default 10^5)")
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds of each")
    parser.add_argument("--per-round", type=int, default=2000, help="verifications per round and kind")
    args = parser.parse_args(argv)

    statement = real_statement()
    with log_directory(None) as directory:
        receipt, head, keys = build_with_statement(directory, args.size, statement)

    verified = verify_receipt(receipt, statement, keys)
    if verified.root != head.root or verified.tree_size != head.tree_size:
        raise SystemExit("the receipt does not verify to the signed head; refusing to time it")
    print(f"receipt: leaf {verified.leaf_index:,} of a tree of {head.tree_size:,} ({len(receipt)} bytes, "
          f"{len(parse_receipt(receipt).inclusion[0].path)} path hashes); statement {len(statement)} bytes")

    bare_key = Ed25519PrivateKey.generate()
    bare_public = bare_key.public_key()
    message = bytes(range(32))
    signature = bare_key.sign(message)

    def one_receipt() -> object:
        return verify_receipt(receipt, statement, keys)

    def one_bare() -> None:
        bare_public.verify(signature, message)

    rate(one_receipt, 200)  # warm-up
    rate(one_bare, 200)
    receipt_rates: list[float] = []
    bare_rates: list[float] = []
    for r in range(args.rounds):
        if r % 2 == 0:
            receipt_rates.append(rate(one_receipt, args.per_round))
            bare_rates.append(rate(one_bare, args.per_round))
        else:
            bare_rates.append(rate(one_bare, args.per_round))
            receipt_rates.append(rate(one_receipt, args.per_round))
        print(f"  round {r + 1}/{args.rounds}: receipt {receipt_rates[-1]:,.0f}/s  bare {bare_rates[-1]:,.0f}/s",
              file=sys.stderr, flush=True)
    ratios = [a / b for a, b in zip(receipt_rates, bare_rates, strict=True)]
    receipt_med = statistics.median(receipt_rates)
    bare_med = statistics.median(bare_rates)
    print(f"verify_receipt (bytes in, as an auditor):  {receipt_med:9,.0f}/s  ({1e6 / receipt_med:5.1f} µs each)")
    print(f"bare Ed25519 verify (32-byte message):     {bare_med:9,.0f}/s  ({1e6 / bare_med:5.1f} µs each)")
    print(f"overhead beyond the signature check:        {1e6 / receipt_med - 1e6 / bare_med:5.1f} µs")
    print(f"ratio receipt/bare: median {statistics.median(ratios):.2f} (rounds: {min(ratios):.2f}..{max(ratios):.2f});"
          " aim >= 0.7")


if __name__ == "__main__":
    main()
