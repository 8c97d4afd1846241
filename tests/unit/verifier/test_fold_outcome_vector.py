"""The fold's outcomes on a fixed log, as the fold of main at 692e1b0 (before its overhead was taken down) computed
them: every entry's id, type, acceptance, reason and refusal code, byte for byte.

``tests/vectors/fold-outcomes/log.cbor`` is a generated lifecycle log (``tools.bench.identity_fold.generate``: an
operator's registration and key rotation, agents' consents, passports, delegations, claims and approvals,
revocations) with statements replayed, moved and bit-flipped among them, so that about one entry in twelve is
refused for one of several reasons; ``outcomes.json`` is what that fold made of it. A faster check that changed an
outcome, or the words of a refusal, fails here."""

from __future__ import annotations

import json

import cbor2

from tests.vectors import vectors_dir
from verifier.fold import Fold, FoldEntry

FOLDER = vectors_dir() / "fold-outcomes"


def test_outcomes_are_those_of_the_reference_fold() -> None:
    log = cbor2.loads((FOLDER / "log.cbor").read_bytes())
    expected = json.loads((FOLDER / "outcomes.json").read_text("utf-8"))
    fold = Fold()
    got = [[o.index, o.entry, o.statement_type, o.accepted, o.reason, o.code]
           for o in (fold.apply(FoldEntry(i, statement)) for i, statement in enumerate(log))]
    assert len(got) == len(expected) == len(log)
    for mine, theirs in zip(got, expected, strict=True):
        assert mine == theirs
    refused = {o[5] for o in expected if not o[3]}
    assert len(refused) >= 5, "the vector must refuse entries for several reasons"
