"""The log's own follower of identity state, used by the registration policy (docs/architecture.md §4).

It folds the log with the verifier's fold — at start-up from the stored entries, then after every
integrated batch, in the sequencer thread, before any submitter of that batch hears back — so a statement
is checked against the identity state of everything logged before it:

- as a key resolver, it answers the key currently registered for a controller DID, and refuses (403) a
  signer that was revoked or that signs with a key rotated out of its key state;
- as a registration policy, it refuses (403) a Tabellion statement whose transition the fold would reject.

The state is derived only from the log; it is rebuilt at every start.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from schemas.errors import BadInput, SignerUnresolvable
from schemas.identity_statements import statement_type_of
from schemas.statement import SignedStatement
from transparency.log.checks import check_contiguous, check_leaf
from transparency.log.reader import LogReader
from verifier.did_key import resolve_did_key
from verifier.fold import Fold, FoldEntry, IdentityState, KeyState, key_digest, kid_multikey
from verifier.keys import PublicKey
from verifier.refusals import Refusal, Refused

log = logging.getLogger(__name__)
DID_KEY = "did:key:"

PAGE = 1000


class IdentityFollower:
    def __init__(self, service_signers: frozenset[str] = frozenset()) -> None:
        """``service_signers``: the log service's own DIDs, whose statements the fold trusts (see
        ``verifier.did_web.service_signers``)."""
        self._fold = Fold(service_signers=service_signers)
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        return self._fold.state.size

    def snapshot(self) -> IdentityState:
        return self._fold.state

    @contextmanager
    def locked(self) -> Iterator[IdentityState]:
        """The state, not changed by the sequencer's fold while the block runs."""
        with self._lock:
            yield self._fold.state

    def catch_up(self, reader: LogReader) -> None:
        """Fold every committed entry not folded yet (at start-up: the whole log), checking what it reads on the
        way (``transparency.log.checks``, at no extra cost): the entries follow each other with no gap, and each
        statement's id, which the fold computes anyway, is the stored id."""
        while True:
            rows = reader.entries(self.size, PAGE)
            if not rows:
                return
            for row in rows:
                check_contiguous(self.size, row.index)
                try:
                    with self._lock:
                        outcome = self._fold.apply(FoldEntry(row.index, row.statement))
                except BadInput as exc:  # the statement does not even parse
                    check_leaf(row.index, row.leaf_data, None, _tree_leaf(reader, row.index), exc.detail)
                    raise
                if outcome.entry != row.leaf_data.hex():
                    recomputed = bytes.fromhex(outcome.entry)
                    check_leaf(row.index, row.leaf_data, recomputed, _tree_leaf(reader, row.index))
            if self.size % (100 * PAGE) < PAGE:
                log.info("identity state: folded %d entries", self.size)

    def integrated(self, entries: Sequence[tuple[int, bytes]]) -> None:
        with self._lock:
            for index, statement in entries:
                self._fold.apply(FoldEntry(index, statement))

    # --- KeyResolver ------------------------------------------------------------------------------

    def resolve(self, statement: SignedStatement) -> PublicKey:
        with self._lock:
            state = self._fold.state
            signer = statement.issuer
            revoked = state.revoked.get(signer)
            if revoked is not None:
                raise Refused(
                    Refusal.SIGNER_REVOKED,
                    f"signer {signer[:200]} was revoked at entry {revoked.index} ({revoked.reason}); "
                    "it can no longer register statements"
                )
            controller = state.controllers.get(signer)
            stype = statement_type_of(statement.content_type)
            if controller is None and stype == "operator-registration" and not signer.startswith(DID_KEY):
                # self-certifying: signed by the key it registers (the policy checks that); a did:web operator
                # also needs evidence that its domain's did.json lists that key (verifier.did_web,
                # transparency.did_web)
                return resolve_did_key(DID_KEY + kid_multikey(statement))
            if controller is None:
                raise SignerUnresolvable(f"{signer[:200]} is not a controller registered on this log")
            if stype == "key-rotation":
                # signed by the key it reveals; the policy (the fold) checks that it is the committed one
                return resolve_did_key(DID_KEY + kid_multikey(statement))
            if stype == "revocation" and key_digest(kid_multikey(statement)) == controller.next_key_digest:
                # recovery: a controller revokes itself with the next key it committed to (the fold checks the
                # target is the signer itself)
                return resolve_did_key(DID_KEY + kid_multikey(statement))
            _refuse_retired_key(statement, controller, state)
            return state.current_key(signer)

    # --- RegistrationPolicy -----------------------------------------------------------------------

    def check(self, statement: SignedStatement) -> None:
        with self._lock:
            self._fold.check(statement)


def _tree_leaf(reader: LogReader, index: int) -> bytes | None:
    """The leaf hash the tree holds for entry ``index``: one read, only when its records disagree."""
    found = reader.node_hashes(0, index, index + 1)
    return found[0] if found else None


def _refuse_retired_key(statement: SignedStatement, controller: KeyState, state: IdentityState) -> None:
    """A kid naming another key than the controller's current one gets a precise refusal (an earlier key, or
    one that was never its key) instead of a bad signature."""
    multikey = kid_multikey(statement)
    if multikey == controller.key:
        return
    for event in controller.history:
        if event.key == multikey:
            revoked = state.revoked.get(multikey)
            why = f"revoked at entry {revoked.index} ({revoked.reason})" if revoked else "no longer current"
            raise Refused(
                Refusal.SIGNER_KEY_MISMATCH,
                f"{statement.issuer[:200]} signed with key {multikey[:60]}, which was rotated out "
                f"(current since entry {controller.history[-1].index}) and is {why}"
            )
    if (statement.kid_text or "").startswith(DID_KEY):
        raise Refused(
            Refusal.SIGNER_KEY_MISMATCH,
            f"{statement.issuer[:200]} is registered on this log with key {controller.key[:60]}; the statement's "
            f"kid names {multikey[:60]}, which was never one of its keys"
        )
