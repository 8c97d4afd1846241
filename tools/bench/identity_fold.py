"""State fold throughput and rebuild time for 10^5 lifecycle entries; passport and authority verify latency.

    .venv/bin/python -m tools.bench.identity_fold [--entries 100000] [--samples 2000]

A synthetic but fully signed log of identity statements is generated first (not timed), in the mix an
operator platform produces: per operator one registration and, per agent, a passport (VC with an
eddsa-jcs-2022 proof), a root delegation, a sub-delegation to a sub-agent, a claim submission and its
approval; every 10th agent is revoked, every operator rotates its key once half-way. Then:

- **incremental fold** — what a follower (or the log's own registration policy) does: for each entry,
  ``Fold.check`` the statement, then ``Fold.apply`` it; entries/s;
- **rebuild** — ``Fold().apply_all`` from the first entry; total seconds and entries/s, in chunks of 1,000
  entries alternating with 300 bare Ed25519 verifications and with the *floor* of the same 1,000 entries, and
  the ratio of the rebuild's rate to the bare rate;
- **the floor** (``floor_work``) — the least per-statement work that any pure-Python fold making the fold's
  checks does besides the signatures: decode the COSE_Sign1 and its protected header (cbor2), decode the
  payload (``json.loads``), re-encode it canonically and compare, hash the statement (its entry id), encode the
  Sig_structure. With the signatures (the measured bare rate times the signatures per entry) it gives the
  *ceiling*: the ratio a fold would reach if it did nothing else. The gap between the ceiling and 1/signatures
  per entry is the language's; the gap between the real ratio and the ceiling is the fold's own work (schema
  validation, key resolution, the passport's Data Integrity canonicalisation, the state);
- **verify latency** at that size — ``passport_status`` and ``authorise`` (passport, delegation chain,
  scope, approved claim) for random agents, mean/p50/p99 µs.

The fold verifies every statement's signature (Ed25519) and every passport's Data Integrity proof, so
the figure to compare against is the bare Ed25519 verify rate, printed alongside (same run).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import sys
import time
import uuid
from collections.abc import Sequence

import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from issuer import statements as st
from schemas.leaf import entry_id, leaf_data
from schemas.statement import parse_statement
from verifier.authority import authorise
from verifier.cose import STATEMENT_SIGNATURES
from verifier.fold import Fold, FoldEntry
from verifier.passports import passport_status

SCOPE = {"services": ["mail"], "actions": ["read", "write"], "resources": ["mail/*"]}
SUB_SCOPE = {"services": ["mail"], "actions": ["read"], "resources": ["mail/inbox/*"]}
AGENTS_PER_OPERATOR = 50
CHUNK = 1000  # entries folded between two runs of bare verifications
BARE_PER_CHUNK = 300


def _id(statement: bytes) -> str:
    return entry_id(leaf_data(parse_statement(statement).message))


def generate(target: int, now: int) -> tuple[list[bytes], list[str]]:
    """Signed lifecycle statements (about ``target`` of them) and the DIDs of the agents with a claim."""
    statements: list[bytes] = []
    agents: list[str] = []
    started = time.perf_counter()
    op_number = 0
    while len(statements) < target:
        op_number += 1
        key, next_key, next_next = (Ed25519PrivateKey.generate() for _ in range(3))
        operator = st.Signer(key)
        registration = st.operator_registration(operator, f"ns{op_number}", next_key)
        statements.append(registration)
        for i in range(AGENTS_PER_OPERATOR):
            if i == AGENTS_PER_OPERATOR // 2:
                statements.append(st.key_rotation(operator.identity, next_key, sequence=1,
                                                  previous=_id(registration), next_key=next_next))
                operator = st.Signer(next_key, operator.identity)
            agent, sub = st.Signer(Ed25519PrivateKey.generate()), st.Signer(Ed25519PrivateKey.generate())
            request = st.PassportRequest(agent.identity, "software", "sha256:" + "ab" * 32, "EU",
                                         "sha256:" + "cd" * 32, f"https://issuer.example/status/{op_number}", i)
            statements.append(st.agent_consent(agent, operator.identity))
            statements.append(st.agent_passport(operator, request, now=now))
            root = st.delegation(operator, agent.identity, SCOPE, not_after=now + 86_400, max_depth=1)
            statements.append(root)
            statements.append(st.delegation(agent, sub.identity, SUB_SCOPE, not_after=now + 3600, max_depth=0,
                                            parent=_id(root)))
            claim = st.claim_submission(agent, f"c-{uuid.uuid4().hex[:12]}", f"ns{op_number}", "mail", SCOPE)
            statements.append(claim)
            statements.append(st.claim_approval(operator, _id(claim), note="ok"))
            if i % 10 == 9:
                statements.append(st.revocation(operator, agent.identity, "privilegeWithdrawn"))
            else:
                agents.append(agent.identity)
        if op_number % 20 == 0:
            rate = len(statements) / (time.perf_counter() - started)
            print(f"  generated {len(statements):,}/{target:,} signed statements ({rate:,.0f}/s)", file=sys.stderr,
                  flush=True)
    return statements, agents


def floor_work(statement: bytes) -> None:
    """The per-statement work below which no pure-Python fold that makes the fold's checks can go (signatures
    aside): one C decode of the COSE_Sign1 and one of its protected header, the payload decoded and re-encoded in
    the canonical form and compared with itself, one SHA-256 of the statement (its entry id) and the
    Sig_structure encoded. No schema, no key resolution, no state."""
    protected, _unprotected, payload, _signature = cbor2.loads(statement).value
    cbor2.loads(protected)
    value = json.loads(payload)
    if json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode() != payload:
        raise SystemExit("a generated payload is not canonical")
    hashlib.sha256(statement).digest()
    cbor2.dumps(["Signature1", protected, b"", payload])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    now = int(time.time())
    statements, agents = generate(args.entries, now)
    entries = [FoldEntry(i, s) for i, s in enumerate(statements)]

    fold = Fold()
    t0 = time.perf_counter()
    for entry in entries:
        fold.check(parse_statement(entry.statement))
        fold.apply(entry)
        if entry.index % 20_000 == 19_999:
            print(f"  incremental: {entry.index + 1:,} folded", file=sys.stderr, flush=True)
    incremental = time.perf_counter() - t0
    rejected = [o for o in fold.state.outcomes if not o.accepted]
    if rejected:
        raise SystemExit(f"{len(rejected)} entries rejected, e.g. {rejected[0].reason}")

    # the rebuild and bare Ed25519 verifications, alternating in chunks on the same core, so that a burst of load
    # on the shared machine falls on both alike; the ratio is the figure to read
    key = Ed25519PrivateKey.generate()
    public, signature = key.public_key(), key.sign(b"x" * 32)
    rebuilding = Fold()
    # the incremental fold above left the last 4,096 signatures in the process's memo; a rebuild at start-up has
    # none, and this one must verify every signature too
    STATEMENT_SIGNATURES.clear()
    rebuild = bare_time = floor_time = 0.0
    bare_count = 0
    for start in range(0, len(entries), CHUNK):
        t0 = time.perf_counter()
        rebuilding.apply_all(entries[start:start + CHUNK])
        rebuild += time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(BARE_PER_CHUNK):
            public.verify(signature, b"x" * 32)
        bare_time += time.perf_counter() - t0
        bare_count += BARE_PER_CHUNK
        t0 = time.perf_counter()
        for statement in statements[start:start + CHUNK]:
            floor_work(statement)
        floor_time += time.perf_counter() - t0
    rebuilt = rebuilding.state
    bare = bare_count / bare_time
    if rebuilt.outcomes != fold.state.outcomes or rebuilt.delegations != fold.state.delegations:
        raise SystemExit("rebuild and incremental fold differ")

    rng = random.Random(args.seed)
    sample = [rng.choice(agents) for _ in range(args.samples)]
    state = rebuilt
    passport_us, authorise_us = [], []
    for agent in sample:
        t = time.perf_counter()
        status = passport_status(state, agent, now + 60)
        passport_us.append((time.perf_counter() - t) * 1e6)
        t = time.perf_counter()
        decision = authorise(state, agent, "mail", "read", "mail/inbox/1", now + 60)
        authorise_us.append((time.perf_counter() - t) * 1e6)
        if status.verdict.value == "block" or decision.root_principal is None:
            raise SystemExit(f"agent {agent} unexpectedly refused")

    n = len(entries)
    print(f"lifecycle entries: {n:,} ({len(state.controllers):,} operators, {len(state.passports):,} passports, "
          f"{len(state.delegations):,} delegations, {len(state.claims):,} claims, {len(state.revoked):,} revocations)")
    print(f"incremental fold (check + apply):  {n / incremental:8,.0f} entries/s  ({incremental:6.1f} s)")
    print(f"rebuild (apply_all from entry 0):  {n / rebuild:8,.0f} entries/s  ({rebuild:6.1f} s)")
    print(f"bare Ed25519 verify, same run:     {bare:8,.0f} /s (each entry verifies >= 1 signature)")
    signatures = len(entries) + len(state.passport_entries)  # a passport's COSE signature and its VC proof
    print(f"ratio rebuild / bare verify: {n / rebuild / bare:.2f} (aim >= 0.7; {signatures / n:.2f} signatures per "
          f"entry, so at most {n / signatures:.2f} if nothing but the signatures cost)")
    per_entry, per_signature, floor = rebuild / n * 1e6, 1e6 / bare, floor_time / n * 1e6
    signing = signatures / n * per_signature
    ceiling = per_signature / (signing + floor)
    print(f"floor (decode, canonical check, hash, Sig_structure), same run: {floor:5.1f} µs/entry -> ceiling ratio "
          f"{ceiling:.2f} for a pure-Python fold that does nothing more")
    print(f"per entry: {per_entry:.0f} µs = signatures {signing:.0f} + floor {floor:.0f} + beyond the floor "
          f"{per_entry - signing - floor:.0f} µs (schemas, keys, Data Integrity, state)")
    for name, values in (("passport_status", passport_us), ("authorise (passport+chain+claim)", authorise_us)):
        print(f"{name:34s} mean {statistics.mean(values):7.1f} µs  p50 {percentile(values, 0.5):7.1f} µs  "
              f"p99 {percentile(values, 0.99):7.1f} µs  (n={len(values):,}, state of {n:,} entries)")


if __name__ == "__main__":
    main()
