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
    assert state.outcomes[2].code == "signer-key-mismatch"  # the old key no longer signs for the operator
    assert state.outcomes[4].code == "did-revocation-not-entitled"
    current = state.controllers[operator]
    assert current.key == _mk(keys["k1"]) and current.sequence == 1
    assert [e.key for e in current.history] == [_mk(keys["k0"]), _mk(keys["k1"])]
    assert state.revoked[_mk(keys["k0"])].reason == "superseded"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"new": "other"}, "rotation-key-not-committed"),
        ({"witnesses": ("w1",)}, "witness-quorum-not-met"),
        ({"witnesses": ("w1", "other")}, "witness-unknown"),
        ({"sequence": 2}, "rotation-sequence-invalid"),
        ({"previous": "00" * 32}, "rotation-previous-mismatch"),
    ],
)
def test_invalid_rotations_are_kept_as_rejected(
    keys: dict[str, Ed25519PrivateKey], change: dict[str, Any], code: str
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
    assert state.outcomes[1].code == code, state.outcomes[1].reason
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
    assert not outcome.accepted and outcome.code == "witness-signature-invalid"


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
    codes = [o.code for o in state.outcomes]
    assert [o.accepted for o in state.outcomes] == [True, False, False, True, False]
    assert codes[1:3] == ["operator-already-registered", "namespace-taken"]
    assert codes[4] == "signer-revoked" and state.revoked[agent].index == 3


def test_general_statements_pass_through_uninterpreted(keys: dict[str, Ed25519PrivateKey]) -> None:
    statement = sign_statement(keys["k0"], b"{}", subject="urn:x", content_type="application/json")
    state = Fold().apply_all([FoldEntry(0, statement)])
    assert state.outcomes[0].accepted and state.outcomes[0].statement_type is None


def test_bad_payload_is_rejected_not_skipped(keys: dict[str, Ed25519PrivateKey]) -> None:
    operator = did_key(keys["k0"])
    statement = sign_statement(keys["k0"], b'{"operator": 1}', subject=operator,
                               content_type=content_type("operator-registration"))
    state = Fold().apply_all([FoldEntry(0, statement)])
    assert not state.outcomes[0].accepted and state.outcomes[0].code == "payload-invalid"
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
    with pytest.raises(TransitionInvalid) as refused:
        Fold(rebuilt).apply(log.entries[0])
    assert refused.value.code == "entry-out-of-order"


def test_unknown_tabellion_type_is_rejected_and_check_changes_nothing(keys: dict[str, Ed25519PrivateKey]) -> None:
    bogus = sign_statement(keys["k0"], b"{}", subject="urn:x", content_type="application/vnd.tabellion.bogus+json")
    state = Fold().apply_all([FoldEntry(0, bogus)])
    assert not state.outcomes[0].accepted and state.outcomes[0].code == "payload-invalid"

    operator = did_key(keys["k0"])
    log = Log()
    log.add(keys["k0"], "operator-registration", _registration(keys, operator), operator)
    fold = Fold()
    fold.check(parse_statement(log.entries[0].statement))  # would be accepted
    assert fold.state == IdentityState()
    fold.apply(log.entries[0])
    with pytest.raises(TransitionInvalid) as refused:
        fold.check(parse_statement(log.entries[0].statement))
    assert refused.value.code == "operator-already-registered"


# --- who may register what, recovery, statements of the log service ----------------------------------------------


def test_a_did_key_operator_registers_only_its_own_key(keys: dict[str, Ed25519PrivateKey]) -> None:
    operator = did_key(keys["k0"])
    log = Log()
    log.add(keys["k2"], "operator-registration", _registration(keys, operator) | {"key": _mk(keys["k2"])}, operator)
    log.add(keys["k0"], "operator-registration", _registration(keys, operator), operator)
    state = Fold().apply_all(log.entries)
    assert [(o.accepted, o.code) for o in state.outcomes] == [(False, "registration-key-not-did-key"), (True, "")]
    assert state.controllers[operator].key == _mk(keys["k0"])


@pytest.mark.parametrize("operator", ["did:example:acme", "did:plc:abc123", "did:ion:xyz"])
def test_operators_of_other_did_methods_are_refused(keys: dict[str, Ed25519PrivateKey], operator: str) -> None:
    log = Log()
    log.add(keys["k0"], "operator-registration", _registration(keys, operator), operator)
    state = Fold().apply_all(log.entries)
    assert not state.outcomes[0].accepted and state.outcomes[0].code == "registration-did-method-unsupported"
    assert state.controllers == {} and state.namespaces == {}


def test_a_did_web_operator_needs_the_services_evidence(keys: dict[str, Ed25519PrivateKey]) -> None:
    """Without evidence that the domain lists the key, a did:web name cannot be taken (tests/unit/verifier/
    test_did_web.py has the registrations with evidence)."""
    operator = "did:web:acme.example"
    log = Log()
    log.add(keys["k0"], "operator-registration", _registration(keys, operator), operator)
    state = Fold().apply_all(log.entries)
    assert [(o.accepted, o.code) for o in state.outcomes] == [(False, "did-web-evidence-missing")]
    assert operator not in state.controllers


def test_a_controller_recovers_by_revoking_itself_with_its_next_key(keys: dict[str, Ed25519PrivateKey]) -> None:
    """The pre-committed next key (k1) may revoke its controller's DID, even once the current key is compromised
    and revoked; no other key can."""
    operator = did_key(keys["k0"])
    log = Log()
    log.add(keys["k0"], "operator-registration", _registration(keys, operator), operator)
    log.add(keys["other"], "revocation", {"target": operator, "reason": "keyCompromise"}, operator)  # a random key
    log.add(keys["k2"], "revocation", {"target": operator, "reason": "keyCompromise"}, operator)  # not committed
    log.add(keys["k0"], "revocation", {"target": _mk(keys["k0"]), "reason": "keyCompromise"}, operator)
    log.add(keys["k0"], "revocation", {"target": operator, "reason": "keyCompromise"}, operator)  # the revoked key
    log.add(keys["other"], "revocation", {"target": operator, "reason": "keyCompromise"}, operator)
    log.add(keys["k1"], "revocation", {"target": operator, "reason": "keyCompromise"}, operator)  # the next key
    state = Fold().apply_all(log.entries)
    assert [(o.accepted, o.code) for o in state.outcomes] == [
        (True, ""), (False, "signer-key-mismatch"), (False, "signer-key-mismatch"), (True, ""),
        (False, "signer-key-revoked"), (False, "signer-key-revoked"), (True, ""),
    ]
    assert state.revoked[operator].index == 6 and state.revoked[operator].by == operator


def test_the_next_key_may_revoke_only_its_own_controller(keys: dict[str, Ed25519PrivateKey]) -> None:
    """Recovery is a controller revoking itself: the next key signs nothing else for it."""
    operator = did_key(keys["k0"])
    log = Log()
    log.add(keys["k0"], "operator-registration", _registration(keys, operator), operator)
    log.add(keys["k1"], "revocation", {"target": _mk(keys["k0"]), "reason": "keyCompromise"}, operator)
    log.add(keys["k1"], "revocation", {"target": did_key(keys["other"]), "reason": "keyCompromise"}, operator)
    state = Fold().apply_all(log.entries)
    assert [o.code for o in state.outcomes] == ["", "signer-key-mismatch", "signer-key-mismatch"]
    assert state.revoked == {}


@pytest.mark.parametrize(
    ("stype", "payload"),
    [
        ("registration-policy", {"policy_id": "default", "version": 1, "accepted_content_types": ["application/json"]}),
        ("trust-anchor", {"anchor": "did:web:registry.example", "kind": "did"}),
    ],
)
def test_service_statements_count_only_from_the_service(
    keys: dict[str, Ed25519PrivateKey], stype: str, payload: dict[str, Any]
) -> None:
    service, stranger = did_key(keys["k0"]), did_key(keys["other"])
    log = Log()
    log.add(keys["k0"], stype, payload, service)
    log.add(keys["other"], stype, payload, stranger)
    state = Fold(service_signers=frozenset({service})).apply_all(log.entries)
    assert [(o.accepted, o.code) for o in state.outcomes] == [(True, ""), (False, "service-statement-untrusted")]
    untrusting = Fold().apply_all(log.entries)  # a fold given no service signer trusts no such statement
    assert [o.code for o in untrusting.outcomes] == ["service-statement-untrusted"] * 2
