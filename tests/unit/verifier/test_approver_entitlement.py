"""Whom an ``approver-enrolment`` may name as its ``approver`` (docs/authority.md, principle 2): the did:key of the
enrolled passkey's own key (a), the namespace's owner itself (b), or a did:web at or under the owner's own did:web (c);
anything else is ``approver-not-entitled``, and the state is left as it was. Known answers, accepted and refused."""

from __future__ import annotations

import base64
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from schemas.statement import parse_statement
from tests.unit.verifier.identity_world import T0, World, snapshot
from tests.webauthn_authenticator import SoftwareAuthenticator
from verifier.claims import check_approver_named
from verifier.did_web import did_web_url
from verifier.fold import Fold, key_digest
from verifier.refusals import Refused
from verifier.webauthn import ALG_ES256, ALG_RS256, credential_did

# w3c-ccg/did-method-key test-vectors/nist-curves.json: P-256 DIDs and their JWK coordinates (as in test_did_key).
P256_VECTORS = [
    ("did:key:zDnaerx9CtbPJ1q36T5Ln5wYt3MQYeGRG5ehnPAmxcf5mDZpv",
     "igrFmi0whuihKnj9R3Om1SoMph72wUGeFaBbzG2vzns", "efsX5b10x8yjyrj4ny3pGfLcY7Xby1KzgqOdqnsrJIM"),
    ("did:key:zDnaerDaTF5BXEavCrfRZEk316dpbLsfPDZ3WJ5hRTPFU2169",
     "fyNYMN0976ci7xqiSdag3buk-ZCwgXU4kz9XNkBlNUI", "hW2ojTNfH7Jbi8--CJUo3OCbH3y5n91g-IMA9MLMbTU"),
]
# w3c-ccg/did-method-key test-vectors/ed25519-x25519.json: seed -> DID.
ED25519_VECTORS = [
    ("00" * 32, "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"),
    ("00" * 31 + "01", "did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG"),
]
OWNER = "did:web:acme.example"


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- (a) the passkey's own did:key ------------------------------------------------------------------------------


@pytest.mark.parametrize(("did", "x", "y"), P256_VECTORS)
def test_an_es256_credential_is_the_p256_did_key_of_its_compressed_point(did: str, x: str, y: str) -> None:
    cose_key = cbor2.dumps({1: 2, 3: -7, -1: 1, -2: _b64url(x), -3: _b64url(y)})
    assert credential_did(cose_key) == did


@pytest.mark.parametrize(("seed", "did"), ED25519_VECTORS)
def test_an_eddsa_credential_is_the_ed25519_did_key_of_its_key(seed: str, did: str) -> None:
    raw = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed)).public_key().public_bytes(Encoding.Raw,
                                                                                              PublicFormat.Raw)
    assert credential_did(cbor2.dumps({1: 1, 3: -8, -1: 6, -2: raw})) == did


def test_an_rs256_credential_has_no_did_key() -> None:
    assert credential_did(SoftwareAuthenticator(alg=ALG_RS256).cose_public_key()) is None


# --- (b) the signer itself, (c) a did:web at or under the signer's own did:web -----------------------------------

ENTITLED = [
    ("did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
     "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"),  # (b) a did:key owner names itself
    (OWNER, OWNER),  # (b)
    ("did:web:acme.example:people:alice", OWNER),  # (c)
    ("did:web:hosting.example:u:alice:people:bob", "did:web:hosting.example:u:alice"),  # (c) under the signer's path
    ("did:web:ACME.Example:people:alice", OWNER),  # (c) a host is compared case-insensitively
    ("did:web:acme.example:people:alice", "did:web:Acme.EXAMPLE"),
    ("did:web:acme.example%3A8443:people:alice", "did:web:acme.example%3a8443"),  # the same port, hex in any case
]
NOT_ENTITLED = [
    ("did:web:bank.example:people:ceo", OWNER),  # another organisation's human
    ("did:web:acme.example.evil:people:alice", OWNER),  # a look-alike host
    ("did:web:evil.acme.example:people:alice", OWNER),  # a subdomain is another host
    ("did:web:acme.example%3A8443:people:alice", OWNER),  # another port is another host
    ("did:web:acme.example", "did:web:acme.example%3A8443"),
    ("did:web:hosting.example:u:bob", "did:web:hosting.example:u:alice"),  # another user's path on a shared host
    ("did:web:hosting.example:people:ceo", "did:web:hosting.example:u:alice"),  # the host above the signer's path
    ("did:web:hosting.example:u:alicexyz", "did:web:hosting.example:u:alice"),  # a segment, not a string, prefix
    ("did:web:hosting.example:u:Alice", "did:web:hosting.example:u:alice"),  # a path segment is compared exactly
    ("did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG", OWNER),  # a did:key the owner is not
    ("did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG",
     "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"),  # another did:key (an agent, a stranger)
    ("did:web:acme.example:people:alice", "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"),
    ("did:web:acme.example:..", OWNER),  # not a did:web that resolves
    ("did:web:acme.example:people%2Falice", OWNER),
    ("did:example:acme.example", OWNER),
    ("did:webs:acme.example:people:alice", OWNER),
]


@pytest.mark.parametrize(("approver", "signer"), ENTITLED)
def test_the_signer_names_itself_or_a_did_web_of_its_own_host(approver: str, signer: str) -> None:
    check_approver_named(approver, signer=signer)


@pytest.mark.parametrize(("approver", "signer"), NOT_ENTITLED)
def test_any_other_approver_is_not_entitled(approver: str, signer: str) -> None:
    with pytest.raises(Refused) as refused:
        check_approver_named(approver, signer=signer)
    assert refused.value.code == "approver-not-entitled"


# --- the fold: an enrolment by a did:web owner ------------------------------------------------------------------


def _did_web_owner() -> World:
    """``op`` registered as did:web:acme.example (namespace acme) on the log's evidence."""
    world = World()
    evidence = {"did": OWNER, "url": did_web_url(OWNER), "document_sha256": "ab" * 32, "fetched_at": T0,
                "key": world.mk("op"), "method": f"{OWNER}#key-1", "relationship": "assertionMethod"}
    world.add("log", "did-web-evidence", evidence, iat=T0)
    registration = {"operator": OWNER, "namespace": "acme", "key": world.mk("op"),
                    "next_key_digest": key_digest(world.mk("op+1")), "witnesses": [], "witness_threshold": 0}
    world.add("op", "operator-registration", registration, iss=OWNER)
    return world


def _enrol(world: World, approver: str | None, **passkey: Any) -> None:
    """``human``'s passkey enrolled in acme by the did:web owner, for ``approver`` (None: the passkey's did:key)."""
    key = world.passkey("human", **passkey)
    named = credential_did(key.cose_public_key()) if approver is None else approver
    payload = world.enrolment("human", "acme", signer_did=OWNER, approver=named)
    world.add("op", "approver-enrolment", payload, iss=OWNER)


def _fold(world: World) -> Fold:
    return Fold(service_signers=frozenset({world.did("log")}))


@pytest.mark.parametrize(
    "approver",
    [None, OWNER, "did:web:acme.example:people:alice", "did:web:ACME.example:people:alice"],
    ids=["a-passkey-did-key", "b-owner", "c-same-host", "c-uppercase-host"],
)
def test_a_did_web_owner_enrols_an_approver_it_is_entitled_to(approver: str | None) -> None:
    world = _did_web_owner()
    _enrol(world, approver, alg=ALG_ES256)
    state = _fold(world).apply_all(world.entries)
    assert [o.accepted for o in state.outcomes] == [True, True, True], state.outcomes[-1].reason
    enrolled = next(iter(state.approvers.values()))
    expected = credential_did(world.passkey("human").cose_public_key()) if approver is None else approver
    assert enrolled.approver == expected and expected is not None


@pytest.mark.parametrize(
    "approver",
    ["did:web:bank.example:people:ceo", "did:web:acme.example.evil:people:alice",
     "did:web:acme.example%3A8443:people:alice", "did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG"],
    ids=["another-host", "look-alike-host", "another-port", "another-did-key"],
)
def test_a_did_web_owner_cannot_name_another_approver(approver: str) -> None:
    world = _did_web_owner()
    _enrol(world, approver, alg=ALG_ES256)
    fold = _fold(world)
    fold.apply_all(world.entries[:-1])
    before = snapshot(fold.state)
    with pytest.raises(Refused) as refused:
        fold.check(parse_statement(world.entries[-1].statement))
    assert refused.value.code == "approver-not-entitled"
    outcome = fold.apply(world.entries[-1])
    assert (outcome.accepted, outcome.code) == (False, "approver-not-entitled")
    assert snapshot(fold.state) == before


def test_a_passkey_enrolled_as_its_own_did_key_consented_to_that_did_only() -> None:
    """A registration made for the passkey's own did:key (its request without ``approver``) does not enrol it as
    another DID, even one the owner may name: the consent assertion signed the approver."""
    world = _did_web_owner()
    passkey = world.passkey("human", alg=ALG_ES256)
    own = world.enrolment("human", "acme", signer_did=OWNER, approver=credential_did(passkey.cose_public_key()))
    world.add("op", "approver-enrolment", own | {"approver": OWNER}, iss=OWNER)
    state = _fold(world).apply_all(world.entries)
    assert (state.outcomes[-1].accepted, state.outcomes[-1].code) == (False, "webauthn-challenge-mismatch")
