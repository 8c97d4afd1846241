"""Property: folding a random lifecycle (valid and invalid statements mixed) one entry at a time, with ``check``
before each and the state persisted between entries, equals a rebuild with ``apply_all``; ``check`` raises
exactly when ``apply`` rejects, with the stable code the outcome keeps, and a rejected entry leaves every derived
dict unchanged. Agents consent to operators (or not, or in another's name) and withdraw consent along the way."""

from __future__ import annotations

import pickle
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.errors import AssertionInvalid, TabellionError
from schemas.statement import parse_statement
from tests.unit.verifier.identity_world import HOUR, SCOPE, T0, World, snapshot
from verifier.fold import Fold
from verifier.refusals import Refusal


def _subclasses(cls: type[TabellionError]) -> list[type[TabellionError]]:
    return [cls, *(sub for child in cls.__subclasses__() for sub in _subclasses(child))]


NAMES = ("op", "op+1", "op+2", "op2", "a1", "a2", "a3", "human", "w1", "w2", "w3")
KEYS = {name: Ed25519PrivateKey.generate() for name in NAMES}
OPERATORS = ("op", "op2")
AGENTS = ("a1", "a2", "a3")
NARROW = {"services": ["mail"], "actions": ["read"], "resources": ["mail/inbox/*"]}
WIDE = {"services": ["mail", "calendar"], "actions": ["read"], "resources": ["mail/*"]}
KINDS = ("register", "rotate", "consent", "withdraw-consent", "passport", "root", "child", "submit", "approve",
         "reject", "revoke-claim", "revoke-entry", "revoke-did", "revoke-key")
WEIGHTED = (*KINDS, "passport", "root", "child", "child", "submit", "approve", "approve")

CODES = frozenset(Refusal) | {"payload-invalid"} | {cls.code for cls in _subclasses(AssertionInvalid)}
"""What a refusal in these lifecycles may be kept as: a fold refusal, a payload the schema refuses, a WebAuthn
assertion that does not hold."""

Step = tuple[str, int, int, int]


def _pick(options: tuple[str, ...] | list[str], n: int) -> str:
    return options[n % len(options)] if options else "00" * 32


def _build(steps: list[Step]) -> World:
    world = World(keys=dict(KEYS))
    ids: list[str] = []
    by_kind: dict[str, list[str]] = {}
    for i, (kind, x, y, z) in enumerate(steps):
        iat = T0 + i * 600
        operator, agent, other = _pick(OPERATORS, x), _pick(AGENTS, y), _pick(AGENTS, z)
        earlier = _pick(ids, x + y + z)
        delegation = _pick(by_kind.get("root", []) + by_kind.get("child", []), x + z)
        claim = _pick(by_kind.get("submit", []), x + z)
        if kind in ("approve", "reject", "revoke-claim") and "submit" not in by_kind:
            kind = "submit"  # decide only once something was submitted
        if kind == "child" and "root" not in by_kind:
            kind = "root"
        if kind == "withdraw-consent" and "consent" not in by_kind:
            kind = "consent"
        if kind == "register":
            ident = world.register(operator, "acme" if z % 3 else "beta")
        elif kind == "rotate":
            ident = world.rotate("op", _pick(ids, z))
        elif kind == "consent":  # now and then signed by another agent than the one consenting
            ident = world.consent(agent, operator, signer=other if z % 5 == 0 else None)
        elif kind == "withdraw-consent":  # by the agent, or by an operator (not entitled)
            ident = world.revoke(_pick((agent, operator), z), _pick(by_kind["consent"], x + z))
        elif kind == "passport":  # the agent consents to the operator first unless it did last (or z % 5 == 0)
            signer = "op+1" if operator == "op" and z % 2 else operator
            ident = world.passport(agent, operator, signer=signer, proof_key=signer, index=z % 4,
                                   lifetime=(1 + z % 30) * HOUR, iat=iat, consent=bool(z % 5))
        elif kind == "root":
            ident = world.delegate(operator, agent, scope=SCOPE, max_depth=z % 3, not_after=iat + z * 60, iat=iat,
                                   consent=bool(z % 5))
        elif kind == "child":
            ident = world.delegate(agent, other, delegation, scope=NARROW if z % 4 else WIDE, max_depth=z % 2,
                                   not_after=iat + 3 * HOUR, iat=iat)
        elif kind == "submit":
            ident = world.submit(agent, f"c{z % 3}", "beta" if x % 4 == 0 else "acme")
        elif kind in ("approve", "reject", "revoke-claim"):
            decide: Any = {"approve": world.approve, "reject": world.reject, "revoke-claim": world.revoke_claim}[kind]
            ident = decide(claim, signer="op2" if z % 4 == 0 else "op")
        elif kind == "revoke-entry":
            ident = world.revoke(_pick((*OPERATORS, *AGENTS), z), earlier if z % 2 else delegation)
        elif kind == "revoke-did":
            ident = world.revoke(_pick((operator, agent), z), world.did(agent if z % 2 else operator))
        else:
            ident = world.revoke(agent, world.mk(agent), "keyCompromise")
        ids.append(ident)
        by_kind.setdefault(kind, []).append(ident)
    return world


steps = st.lists(
    st.tuples(st.sampled_from(WEIGHTED), st.integers(0, 30), st.integers(0, 30), st.integers(0, 30)),
    min_size=1, max_size=24,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.tuples(st.just(("register", 0, 0, 1)), st.just(("register", 1, 0, 0))).map(list), steps)
def test_incremental_fold_equals_rebuild(prefix: list[Step], rest: list[Step]) -> None:
    world = _build(prefix + rest)
    fold = Fold()
    for entry in world.entries:
        before = snapshot(fold.state)
        try:
            fold.check(parse_statement(entry.statement))
            would_accept, code = True, ""
        except TabellionError as exc:
            would_accept, code = False, exc.code
        assert snapshot(fold.state) == before, "check changed the state"
        outcome = fold.apply(entry)
        assert outcome.accepted == would_accept, outcome.reason
        assert outcome.code == code, outcome.reason  # the same stable code from check and from apply
        if not outcome.accepted:
            assert outcome.code in CODES, outcome.code
            assert outcome.reason and snapshot(fold.state) == before
        fold = Fold(pickle.loads(pickle.dumps(fold.state)))  # a follower that persists between entries
    assert fold.state == Fold().apply_all(world.entries)
