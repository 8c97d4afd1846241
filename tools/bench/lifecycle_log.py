"""Build a large, fully signed identity log directly through the log's own sequencer, for start-up benchmarks.

    .venv/bin/python -m tools.bench.lifecycle_log --dir /tmp/log1m --entries 1000000 [--actions-per-agent 40]

Registering 10^6 statements over HTTP would take hours on this machine; this writes the same log the service
would, through the library: every statement is really signed, its entry id computed with ``schemas.leaf``, and
the batches go through ``Sequencer._integrate`` (the service's integration step: entry rows, entry-id index,
Merkle nodes, a signed tree head per batch, one transaction each) in batches of ``--batch``. What it skips is
what the service does before the sequencer: the registration checks, which the fold below repeats anyway.

The mix is an operator platform's (``tools.bench.identity_fold``): per operator one registration and, per agent,
its consent, a passport (a VC with an eddsa-jcs-2022 proof), a root delegation, a sub-delegation, a claim and its
approval; every 10th agent is revoked; every operator rotates its key once half-way; and, per agent,
``--actions-per-agent`` action records signed by a gateway's key (``gateway.actions``: what a gateway let through
is logged too, and on a busy platform it is most of the log).

Then (unless ``--no-fold``) the log's identity follower folds the whole log, as a start with no snapshot does,
and the stop saves its snapshot and outcome store into ``<dir>/state``: the rebuild time is printed, and the next
``tabellion serve --data DIR`` starts from that snapshot. Progress goes to stderr every two seconds. At 10^6
entries: signing and sequencing take some minutes, the fold some more (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.actions import record_statement
from issuer import statements as st
from schemas.leaf import entry_id, leaf_data, logged_statement
from schemas.statement import parse_statement
from transparency.identity import IdentityFollower
from transparency.keys import load_or_create_log_key, published_key_set, retired_public_keys
from transparency.log.reader import LogReader
from transparency.log.sequencer import Integrated, Sequencer, _Pending
from transparency.log.storage import open_database
from transparency.settings import Settings
from verifier.did_web import service_signers

ORIGIN = "tabellion.localhost/log"
SCOPE = {"services": ["mail"], "actions": ["read", "write"], "resources": ["mail/*"]}
SUB_SCOPE = {"services": ["mail"], "actions": ["read"], "resources": ["mail/inbox/*"]}
AGENTS_PER_OPERATOR = 50


def _id(statement: bytes) -> str:
    return entry_id(leaf_data(parse_statement(statement).message))


def lifecycle(actions_per_agent: int, now: int) -> Iterator[bytes]:
    """Signed statements, without end, in the mix described above."""
    gateway = Ed25519PrivateKey.generate()
    seq = 0
    op_number = 0
    while True:
        op_number += 1
        key, next_key, next_next = (Ed25519PrivateKey.generate() for _ in range(3))
        operator = st.Signer(key)
        registration = st.operator_registration(operator, f"ns{op_number}", next_key)
        yield registration
        for i in range(AGENTS_PER_OPERATOR):
            if i == AGENTS_PER_OPERATOR // 2:
                yield st.key_rotation(operator.identity, next_key, sequence=1, previous=_id(registration),
                                      next_key=next_next)
                operator = st.Signer(next_key, operator.identity)
            agent, sub = st.Signer(Ed25519PrivateKey.generate()), st.Signer(Ed25519PrivateKey.generate())
            request = st.PassportRequest(agent.identity, "software", "sha256:" + "ab" * 32, "EU",
                                         "sha256:" + "cd" * 32, f"https://issuer.example/status/{op_number}", i)
            yield st.agent_consent(agent, operator.identity)
            passport = st.agent_passport(operator, request, now=now)
            yield passport
            root = st.delegation(operator, agent.identity, SCOPE, not_after=now + 86_400 * 365, max_depth=1)
            yield root
            sub_delegation = st.delegation(agent, sub.identity, SUB_SCOPE, not_after=now + 86_400 * 365,
                                           max_depth=0, parent=_id(root))
            yield sub_delegation
            claim = st.claim_submission(agent, f"c-{uuid.uuid4().hex[:12]}", f"ns{op_number}", "mail", SCOPE)
            yield claim
            yield st.claim_approval(operator, _id(claim), note="ok")
            record = {"agent": sub.identity, "delegation_chain": [_id(root), _id(sub_delegation)], "action": "read",
                      "decision": "ALLOW", "policy_id": "default", "connection": "mail", "service": "mail",
                      "root_principal": operator.identity, "passport": _id(passport), "claim": _id(claim)}
            for n in range(actions_per_agent):
                seq += 1
                yield record_statement(gateway, seq, {**record, "resource": f"mail/inbox/{n}", "at": now + n,
                                                      "request_digest": f"sha-256=:{seq:043d}=:"})
            if i % 10 == 9:
                yield st.revocation(operator, agent.identity, "privilegeWithdrawn")


def integrate(sequencer: Sequencer, statements: Sequence[bytes]) -> None:
    batch: list[_Pending] = []
    for statement in statements:
        message = parse_statement(statement).message
        batch.append(_Pending(leaf_data(message), logged_statement(message), Future[Integrated]()))
    sequencer._integrate(batch)
    for pending in batch:
        pending.future.result()  # re-raises if the batch failed


def build(directory: Path, entries: int, actions_per_agent: int, batch: int) -> int:
    settings = Settings(data_dir=directory, origin=ORIGIN)
    key = load_or_create_log_key(settings.key_path)
    sequencer = Sequencer(settings.db_path, key, ORIGIN)
    try:
        if sequencer.size:
            print(f"{directory} already holds a log of {sequencer.size:,} entries; extending it", file=sys.stderr)
        source = lifecycle(actions_per_agent, int(time.time()))
        began, reported, start = time.perf_counter(), 0.0, sequencer.size
        while sequencer.size < entries:
            integrate(sequencer, [next(source) for _ in range(min(batch, entries - sequencer.size))])
            now = time.perf_counter()
            if now - reported > 2.0 or sequencer.size == entries:
                reported = now
                rate = (sequencer.size - start) / (now - began)
                print(f"  signed and sequenced {sequencer.size:>9,}/{entries:,} entries ({rate:,.0f}/s)",
                      file=sys.stderr, flush=True)
        return sequencer.size
    finally:
        sequencer.stop()


def fold(directory: Path) -> None:
    """Fold the whole log as a start with no snapshot does, then save the snapshot and outcomes as a stop does."""
    settings = Settings(data_dir=directory, origin=ORIGIN)
    keys = published_key_set(load_or_create_log_key(settings.key_path), retired_public_keys(settings.retired_keys_dir))
    db = open_database(settings.db_path, create=False)

    follower = IdentityFollower(service_signers(keys), state_dir=settings.state_dir, origin=ORIGIN,
                                head_of=lambda size: LogReader(db).head(size), snapshot_every=10**12)
    began = time.perf_counter()
    follower.start(LogReader(db))
    folded = time.perf_counter() - began
    began = time.perf_counter()
    follower.close()
    saved = time.perf_counter() - began
    db.close()
    print(f"folded {follower.size:,} entries from the first in {folded:,.1f} s ({follower.size / folded:,.0f}/s); "
          f"snapshot and outcomes saved in {saved:.1f} s to {settings.state_dir}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, required=True, help="the data folder to build the log in")
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--actions-per-agent", type=int, default=40)
    parser.add_argument("--batch", type=int, default=256, help="entries per integrated batch (one signed head)")
    parser.add_argument("--no-fold", action="store_true", help="do not fold the log and save its snapshot")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    size = build(args.dir, args.entries, args.actions_per_agent, args.batch)
    print(f"log of {size:,} entries in {args.dir} ({time.perf_counter() - began:,.0f} s)")
    if not args.no_fold:
        fold(args.dir)


if __name__ == "__main__":
    main()
