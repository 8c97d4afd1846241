"""The state fold: verified log entries, in log order, -> identity state (ARCHITECTURE.md §4).

Pure, offline and deterministic: every follower that folds the same log computes the same state. An entry
whose transition is invalid is kept as *rejected* with its reason, never silently skipped.

This module covers the key state of identities: operator/namespace registration with a pre-rotation
commitment, KERI-style key rotation (reveal the committed key, commit to the next, k-of-n witness
signatures) and revocation of identities and keys, plus the rule that every Tabellion statement is signed
by the key current for its signer at that log position and that nothing acts after its revocation.
Passports, delegations and claims build on this state.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from schemas.errors import BadInput, TabellionError, TransitionInvalid, VerificationError
from schemas.identity_statements import canonical_json, parse_payload, statement_type_of
from schemas.leaf import entry_id, leaf_data
from schemas.statement import SignedStatement, parse_statement
from verifier.cose import verify_sign1
from verifier.did_key import resolve_did_key
from verifier.keys import PublicKey

DID_KEY = "did:key:"


def key_digest(multikey: str) -> str:
    """The pre-rotation commitment to a key: base64url(SHA-256(UTF-8 multikey)), unpadded."""
    return base64.urlsafe_b64encode(hashlib.sha256(multikey.encode()).digest()).rstrip(b"=").decode()


def _key(multikey: str) -> PublicKey:
    return resolve_did_key(DID_KEY + multikey)


@dataclass(frozen=True)
class KeyEvent:
    sequence: int
    key: str
    entry: str
    index: int


@dataclass(frozen=True)
class KeyState:
    """The current key of a registered controller and what it has committed to."""

    controller: str
    namespace: str
    key: str
    next_key_digest: str
    witnesses: tuple[str, ...]
    witness_threshold: int
    history: tuple[KeyEvent, ...]

    @property
    def sequence(self) -> int:
        return self.history[-1].sequence

    @property
    def last_event(self) -> str:
        return self.history[-1].entry


@dataclass(frozen=True)
class Revocation:
    index: int
    entry: str
    reason: str
    by: str


@dataclass(frozen=True)
class Outcome:
    """What the fold made of one log entry."""

    index: int
    entry: str
    statement_type: str | None  # None: a general SCITT statement, not interpreted
    accepted: bool
    reason: str = ""


@dataclass
class IdentityState:
    controllers: dict[str, KeyState] = field(default_factory=dict)
    namespaces: dict[str, str] = field(default_factory=dict)
    revoked: dict[str, Revocation] = field(default_factory=dict)  # DIDs and multikeys
    outcomes: list[Outcome] = field(default_factory=list)
    size: int = 0

    def current_key(self, did: str) -> PublicKey:
        """The key that must sign for ``did`` now: its registered current key, else its did:key."""
        state = self.controllers.get(did)
        if state is not None:
            return _key(state.key)
        if did.startswith(DID_KEY):
            return resolve_did_key(did)
        raise TransitionInvalid(f"{did[:200]} is neither registered on this log nor a did:key")


@dataclass(frozen=True)
class FoldEntry:
    index: int
    statement: bytes


class Fold:
    """Applies entries one at a time (a follower) or all at once (a rebuild); both give the same state."""

    def __init__(self, state: IdentityState | None = None) -> None:
        self.state = state or IdentityState()

    def apply_all(self, entries: Iterable[FoldEntry]) -> IdentityState:
        for entry in entries:
            self.apply(entry)
        return self.state

    def apply(self, entry: FoldEntry) -> Outcome:
        if entry.index != self.state.size:
            raise TransitionInvalid(f"entry {entry.index} arrived, the fold expected entry {self.state.size}")
        statement = parse_statement(entry.statement)
        ident = entry_id(leaf_data(statement.message))
        stype: str | None = None
        try:
            stype = _statement_type(statement)
            if stype is not None:
                self._transition(stype, statement, ident, entry.index)()
            outcome = Outcome(entry.index, ident, stype, True)
        except (TransitionInvalid, BadInput, VerificationError) as exc:
            outcome = Outcome(entry.index, ident, stype, False, f"{exc.title}: {exc.detail}")
        self.state.outcomes.append(outcome)
        self.state.size += 1
        return outcome

    def check(self, statement: SignedStatement) -> None:
        """Would ``statement`` be accepted as the next entry? Raises the reason if not; changes nothing."""
        stype = _statement_type(statement)
        if stype is not None:
            self._transition(stype, statement, entry_id(leaf_data(statement.message)), self.state.size)

    # --- transitions ------------------------------------------------------------------------------

    def _transition(self, stype: str, statement: SignedStatement, ident: str, index: int) -> Commit:
        """Check a transition against the state; return the change, to be applied only if it is accepted."""
        payload = parse_payload(stype, statement.payload)
        if stype == "operator-registration":
            return self._register(statement, payload, ident, index)
        if stype == "key-rotation":
            return self._rotate(statement, payload, ident, index)
        self._check_signer(statement, index)
        if stype == "revocation":
            return self._revoke(statement, payload, ident, index)
        return _nothing

    def _check_signer(self, statement: SignedStatement, index: int) -> None:
        signer = statement.issuer
        revoked = self.state.revoked.get(signer)
        if revoked is not None:
            raise TransitionInvalid(f"signer {signer[:200]} was revoked at entry {revoked.index} ({revoked.reason})")
        _verify(statement, self.state.current_key(signer), f"the key current for {signer[:200]} at entry {index}")

    def _register(self, statement: SignedStatement, p: dict[str, Any], ident: str, index: int) -> Commit:
        operator, namespace = p["operator"], p["namespace"]
        if statement.issuer != operator:
            raise TransitionInvalid(f"iss {statement.issuer[:200]} does not match the registered operator")
        if operator in self.state.controllers:
            raise TransitionInvalid(f"{operator[:200]} is already registered; rotate its key instead")
        if operator in self.state.revoked:
            raise TransitionInvalid(f"{operator[:200]} was revoked at entry {self.state.revoked[operator].index}")
        owner = self.state.namespaces.get(namespace)
        if owner is not None:
            raise TransitionInvalid(f"namespace {namespace!r} already belongs to {owner[:200]}")
        if p["witness_threshold"] > len(p["witnesses"]):
            raise TransitionInvalid("witness_threshold is larger than the number of witnesses")
        _verify(statement, _key(p["key"]), "the key it registers")
        registered = KeyState(
            operator, namespace, p["key"], p["next_key_digest"], tuple(p["witnesses"]), p["witness_threshold"],
            (KeyEvent(0, p["key"], ident, index),),
        )

        def commit() -> None:
            self.state.controllers[operator] = registered
            self.state.namespaces[namespace] = operator

        return commit

    def _rotate(self, statement: SignedStatement, p: dict[str, Any], ident: str, index: int) -> Commit:
        controller = p["controller"]
        current = self.state.controllers.get(controller)
        if current is None:
            raise TransitionInvalid(f"{controller[:200]} is not registered on this log")
        if statement.issuer != controller:
            raise TransitionInvalid(f"iss {statement.issuer[:200]} does not match the rotating controller")
        if controller in self.state.revoked:
            raise TransitionInvalid(f"{controller[:200]} was revoked at entry {self.state.revoked[controller].index}")
        if p["sequence"] != current.sequence + 1:
            raise TransitionInvalid(f"rotation sequence {p['sequence']} does not follow {current.sequence}")
        if p["previous"] != current.last_event:
            raise TransitionInvalid(f"rotation names previous event {p['previous']}, not {current.last_event}")
        if key_digest(p["key"]) != current.next_key_digest:
            raise TransitionInvalid("the rotation reveals a key that was not committed to by the previous event")
        if p["key"] in self.state.revoked:
            raise TransitionInvalid("the revealed key was revoked")
        _verify(statement, _key(p["key"]), "the revealed (pre-committed) key")
        _check_witnesses(p, current)
        rotated = replace(
            current, key=p["key"], next_key_digest=p["next_key_digest"],
            history=(*current.history, KeyEvent(p["sequence"], p["key"], ident, index)),
        )
        return lambda: self.state.controllers.__setitem__(controller, rotated)

    def _revoke(self, statement: SignedStatement, p: dict[str, Any], ident: str, index: int) -> Commit:
        target, signer = p["target"], statement.issuer
        if target in self.state.revoked:
            raise TransitionInvalid(f"{target[:200]} is already revoked (entry {self.state.revoked[target].index})")
        if target.startswith("did:"):
            if target != signer:
                raise TransitionInvalid("an identity can only be revoked by itself here")
        elif not any(target == e.key for e in self.state.controllers.get(signer, _NO_KEYS).history):
            raise TransitionInvalid("a key can only be revoked by the controller it belonged to")
        revocation = Revocation(index, ident, p["reason"], signer)
        return lambda: self.state.revoked.__setitem__(target, revocation)


_NO_KEYS = KeyState("", "", "", "", (), 0, ())
Commit = Callable[[], None]


def _nothing() -> None:
    return None


def _statement_type(statement: SignedStatement) -> str | None:
    """The Tabellion statement type, or ``None`` for a general SCITT statement (incl. hash envelopes)."""
    if statement.payload_hash_alg is not None:
        return None
    return statement_type_of(statement.content_type)


def _verify(statement: SignedStatement, key: PublicKey, what: str) -> None:
    try:
        verify_sign1(statement.message, statement.alg, key)
    except TabellionError as exc:
        raise TransitionInvalid(f"the statement is not signed by {what}: {exc.detail}") from exc


def witness_message(payload: dict[str, Any]) -> bytes:
    """What witnesses sign: the rotation payload without ``witness_signatures``, RFC 8785 canonical."""
    return canonical_json({k: v for k, v in payload.items() if k != "witness_signatures"})


def _check_witnesses(p: dict[str, Any], current: KeyState) -> None:
    message = witness_message(p)
    valid = set()
    for item in p["witness_signatures"]:
        witness = item["witness"]
        if witness not in current.witnesses:
            raise TransitionInvalid(f"{witness[:200]} is not a witness of this controller")
        key = resolve_did_key(witness)
        signature = base64.urlsafe_b64decode(item["signature"] + "==")
        if not isinstance(key, Ed25519PublicKey):
            raise TransitionInvalid(f"witness {witness[:200]} is not an Ed25519 did:key")
        try:
            key.verify(signature, message)
        except InvalidSignature as exc:
            raise TransitionInvalid(f"the signature of witness {witness[:200]} does not verify") from exc
        valid.add(witness)
    if len(valid) < current.witness_threshold:
        raise TransitionInvalid(
            f"{len(valid)} witness signatures; the controller requires {current.witness_threshold} of "
            f"{len(current.witnesses)}"
        )
