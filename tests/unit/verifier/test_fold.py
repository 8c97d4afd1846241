"""The state fold: registration, pre-rotation with witnesses, revocation; every refusal kept with its reason;
a fold rebuilt from the log equals the one kept incrementally."""

from __future__ import annotations

import base64
import copy
import pickle
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.errors import TransitionInvalid
from schemas.identity_statements import canonical_json, content_type
from schemas.statement import parse_statement
from tests.cose_builder import did_key
from transparency.client import sign_statement
from verifier.did_key import multibase_of
from verifier.fold import Fold, FoldEntry, IdentityState, key_digest, witness_message


def _mk(key: Ed25519PrivateKey) -> str:
    return multibase_of(key.public_key())


class Log:
    """A list of logged statements, as a follower would read them."""

    def __init__(self) -> None:
        self.entries: list[FoldEntry] = []

    def add(self, key: Ed25519PrivateKey, stype: str, payload: dict[str, Any], issuer: str) -> None:
        statement = sign_statement(key, canonical_json(payload), subject=issuer, content_type=content_type(stype),
                                   issuer=issuer)
        self.entries.append(FoldEntry(len(self.entries), statement))


@pytest.fixture
def keys() -> dict[str, Ed25519PrivateKey]:
    return {name: Ed25519PrivateKey.generate() for name in ("k0", "k1", "k2", "w1", "w2", "w3", "other")}


def _registration(keys: dict[str, Ed25519PrivateKey], operator: str, namespace: str = "acme") -> dict[str, Any]:
    return {"operator": operator, "namespace": namespace, "key": _mk(keys["k0"]),
            "next_key_digest": key_digest(_mk(keys["k1"])),
            "witnesses": [did_key(keys[w]) for w in ("w1", "w2", "w3")], "witness_threshold": 2}


def _rotation(keys: dict[str, Ed25519PrivateKey], operator: str, previous: str, new: str, nxt: str,
              witnesses: tuple[str, ...] = ("w1", "w3"), sequence: int = 1) -> dict[str, Any]:
    payload: dict[str, Any] = {"controller": operator, "sequence": sequence, "previous": previous,
                               "key": _mk(keys[new]), "next_key_digest": key_digest(_mk(keys[nxt])),
                               "witness_signatures": []}
    message = witness_message(payload)
    payload["witness_signatures"] = [
        {"witness": did_key(keys[w]),
         "signature": base64.urlsafe_b64encode(keys[w].sign(message)).rstrip(b"=").decode()}
        for w in witnesses
    ]
    return payload


def test_register_rotate_and_old_key_refused(keys: dict[str, Ed25519PrivateKey]) -> None:
    operator = did_key(keys["k0"])
    log = Log()
    log.add(keys["k0"], "operator-registration", _registration(keys, operator), operator)
    state = Fold().apply_all(log.entries)
    assert [o.accepted for o in state.outcomes] == [True]
    inception = state.outcomes[0].entry
    log.add(keys["k1"], "key-rotation", _rotation(keys, operator, inception, "k1", "k2"), operator)
    revoke = {"target": did_key(keys["other"]), "reason": "keyCompromise"}
    log.add(keys["k0"], "revocation", {"target": _mk(keys["k0"]), "reason": "superseded"}, operator)  # old key
    log.add(keys["k1"], "revocation", {"target": _mk(keys["k0"]), "reason": "superseded"}, operator)  # current key
    log.add(keys["k1"], "revocation", revoke, operator)  # an identity that is not the signer
    state = Fold().apply_all(log.entries)
    accepted = [o.accepted for o in state.outcomes]
    assert accepted == [True, True, False, True, False]
    assert "not signed by the key current for" in state.outcomes[2].reason
    assert "only be revoked by itself" in state.outcomes[4].reason
    current = state.controllers[operator]
    assert current.key == _mk(keys["k1"]) and current.sequence == 1
    assert [e.key for e in current.history] == [_mk(keys["k0"]), _mk(keys["k1"])]
    assert state.revoked[_mk(keys["k0"])].reason == "superseded"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"new": "other"}, "not committed to"),
        ({"witnesses": ("w1",)}, "1 witness signatures; the controller requires 2 of 3"),
        ({"witnesses": ("w1", "other")}, "is not a witness"),
        ({"sequence": 2}, "does not follow"),
        ({"previous": "00" * 32}, "names previous event"),
    ],
)
def test_invalid_rotations_are_kept_as_rejected(
    keys: dict[str, Ed25519PrivateKey], change: dict[str, Any], reason: str
) -> None:
    operator = did_key(keys["k0"])
    log = Log()
    log.add(keys["k0"], "operator-registration", _registration(keys, operator), operator)
    inception = Fold().apply_all(log.entries).outcomes[0].entry
    args: dict[str, Any] = {"previous": inception, "new": "k1", "nxt": "k2"} | change
    signer = keys[args["new"]]
    log.add(signer, "key-rotation", _rotation(keys, operator, **args), operator)
    state = Fold().apply_all(log.entries)
    assert not state.outcomes[1].accepted
    assert reason in state.outcomes[1].reason
    assert state.controllers[operator].key == _mk(keys["k0"]), "a refused rotation changed the key state"


def test_forged_witness_signature_is_refused(keys: dict[str, Ed25519PrivateKey]) -> None:
    operator = did_key(keys["k0"])
    log = Log()
    log.add(keys["k0"], "operator-registration", _registration(keys, operator), operator)
    inception = Fold().apply_all(log.entries).outcomes[0].entry
    payload = _rotation(keys, operator, inception, "k1", "k2")
    payload["witness_signatures"][1]["signature"] = payload["witness_signatures"][0]["signature"]
    log.add(keys["k1"], "key-rotation", payload, operator)
    outcome = Fold().apply_all(log.entries).outcomes[1]
    assert not outcome.accepted and "does not verify" in outcome.reason


def test_revoked_signer_cannot_act_and_namespaces_are_unique(keys: dict[str, Ed25519PrivateKey]) -> None:
    agent = did_key(keys["other"])
    operator = did_key(keys["k0"])
    log = Log()
    log.add(keys["k0"], "operator-registration", _registration(keys, operator), operator)
    log.add(keys["k0"], "operator-registration", _registration(keys, operator), operator)  # twice
    second = did_key(keys["k2"])
    reg2 = _registration(keys, second) | {"key": _mk(keys["k2"])}
    log.add(keys["k2"], "operator-registration", reg2, second)  # namespace taken
    log.add(keys["other"], "revocation", {"target": agent, "reason": "cessationOfOperation"}, agent)
    log.add(keys["other"], "revocation", {"target": _mk(keys["other"]), "reason": "keyCompromise"}, agent)
    state = Fold().apply_all(log.entries)
    reasons = [o.reason for o in state.outcomes]
    assert [o.accepted for o in state.outcomes] == [True, False, False, True, False]
    assert "already registered" in reasons[1]
    assert "namespace 'acme' already belongs" in reasons[2]
    assert "was revoked at entry 3" in reasons[4]


def test_general_statements_pass_through_uninterpreted(keys: dict[str, Ed25519PrivateKey]) -> None:
    statement = sign_statement(keys["k0"], b"{}", subject="urn:x", content_type="application/json")
    state = Fold().apply_all([FoldEntry(0, statement)])
    assert state.outcomes[0].accepted and state.outcomes[0].statement_type is None


def test_bad_payload_is_rejected_not_skipped(keys: dict[str, Ed25519PrivateKey]) -> None:
    operator = did_key(keys["k0"])
    statement = sign_statement(keys["k0"], b'{"operator": 1}', subject=operator,
                               content_type=content_type("operator-registration"))
    state = Fold().apply_all([FoldEntry(0, statement)])
    assert not state.outcomes[0].accepted and "canonical" in state.outcomes[0].reason
    assert state.size == 1


def test_rebuild_equals_incremental(keys: dict[str, Ed25519PrivateKey]) -> None:
    operator = did_key(keys["k0"])
    log = Log()
    log.add(keys["k0"], "operator-registration", _registration(keys, operator), operator)
    inception = Fold().apply_all(log.entries).outcomes[0].entry
    log.add(keys["k1"], "key-rotation", _rotation(keys, operator, inception, "k1", "k2"), operator)
    log.add(keys["k0"], "revocation", {"target": _mk(keys["k0"]), "reason": "superseded"}, operator)
    log.add(keys["other"], "revocation", {"target": did_key(keys["other"]), "reason": "superseded"},
            did_key(keys["other"]))
    rebuilt = Fold().apply_all(log.entries)
    state: IdentityState | None = None
    for entry in log.entries:  # a follower that persists its state between entries
        fold = Fold(pickle.loads(pickle.dumps(state)) if state is not None else None)
        fold.apply(entry)
        state = copy.deepcopy(fold.state)
    assert state == rebuilt
    with pytest.raises(TransitionInvalid, match="expected entry 4"):
        Fold(rebuilt).apply(log.entries[0])


def test_unknown_tabellion_type_is_rejected_and_check_changes_nothing(keys: dict[str, Ed25519PrivateKey]) -> None:
    bogus = sign_statement(keys["k0"], b"{}", subject="urn:x", content_type="application/vnd.tabellion.bogus+json")
    state = Fold().apply_all([FoldEntry(0, bogus)])
    assert not state.outcomes[0].accepted and "bogus" in state.outcomes[0].reason

    operator = did_key(keys["k0"])
    log = Log()
    log.add(keys["k0"], "operator-registration", _registration(keys, operator), operator)
    fold = Fold()
    fold.check(parse_statement(log.entries[0].statement))  # would be accepted
    assert fold.state == IdentityState()
    fold.apply(log.entries[0])
    with pytest.raises(TransitionInvalid, match="already registered"):
        fold.check(parse_statement(log.entries[0].statement))
