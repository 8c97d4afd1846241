"""A tlog witness's key is also a rotation witness (docs/witnessing.md): the key file ``tabellion witness``
creates signs an operator's key rotation as one of its k-of-n witnesses, under the did:key that
``tabellion witness --vkey`` prints; and the two kinds of signature by that one key cannot stand in for each
other."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cli.witness import witness_identity
from issuer.statements import Signer, key_rotation, operator_registration
from schemas.base64url import b64url, b64url_decode
from schemas.cose_sign1 import decode_sign1
from schemas.errors import NoteSignatureInvalid
from schemas.identity_statements import parse_payload
from schemas.leaf import entry_id, leaf_data
from schemas.note import Note, NoteSignature, parse_vkey
from schemas.statement import parse_statement
from tests.witnessing import TestLog, write_witness_config
from transparency.client import did_of, load_private_key
from verifier.did_key import resolve_did_key
from verifier.fold import Fold, FoldEntry, witness_message
from verifier.keys import public_key_bytes
from verifier.notes import cosignature_message, verify_cosignature
from witness.cosigner import Cosigner


def _witness_key(tmp_path: Path, i: int) -> tuple[Ed25519PrivateKey, str]:
    """A witness's key file, made as `tabellion witness --config FILE --vkey` makes it; its did:key."""
    config = write_witness_config(tmp_path / f"w{i}", f"witness{i}.test/w", [TestLog().vkey], 8380 + i)
    vkey_text, did = witness_identity(config)
    key = load_private_key(config.parent / "witness-key.pem")
    assert isinstance(key, Ed25519PrivateKey)
    assert did == did_of(key)
    assert parse_vkey(vkey_text).public_key == public_key_bytes(resolve_did_key(did))  # one key, two names
    return key, did


def test_witness_keys_sign_a_rotation_two_of_three(tmp_path: Path) -> None:
    witnesses = [_witness_key(tmp_path, i) for i in range(3)]
    k0, k1, k2 = (Ed25519PrivateKey.generate() for _ in range(3))
    operator = Signer(k0)
    registration = operator_registration(operator, "acme", k1, [did for _, did in witnesses], 2)
    inception = entry_id(leaf_data(decode_sign1(registration)))
    rotation = key_rotation(operator.identity, k1, sequence=1, previous=inception, next_key=k2,
                            witness_keys=[witnesses[0][0], witnesses[2][0]])
    state = Fold().apply_all([FoldEntry(0, registration), FoldEntry(1, rotation)])
    assert [o.accepted for o in state.outcomes] == [True, True], state.outcomes[1].reason
    one_short = key_rotation(operator.identity, k1, sequence=1, previous=inception, next_key=k2,
                             witness_keys=[witnesses[1][0]])
    state = Fold().apply_all([FoldEntry(0, registration), FoldEntry(1, one_short)])
    assert state.outcomes[1].code == "witness-quorum-not-met"


def test_a_cosignature_is_not_a_rotation_signature_and_back(tmp_path: Path) -> None:
    key, did = _witness_key(tmp_path, 0)
    k0, k1, k2 = (Ed25519PrivateKey.generate() for _ in range(3))
    operator = Signer(k0)
    registration = operator_registration(operator, "acme", k1, [did], 1)
    inception = entry_id(leaf_data(decode_sign1(registration)))
    honest = key_rotation(operator.identity, k1, sequence=1, previous=inception, next_key=k2, witness_keys=[key])
    payload = parse_payload("key-rotation", parse_statement(honest).payload)
    message = witness_message(payload)
    assert message.startswith(b"{") and cosignature_message("log.test\n1\n" + "A" * 43 + "=\n", 1).startswith(
        b"cosignature/v1\n")

    # a cosignature the witness made over a checkpoint, put where the rotation's witness signature goes
    log = TestLog("log.test/x")
    log.append(2)
    text = log.checkpoint().body()
    cosignature = key.sign(cosignature_message(text, 1_700_000_000))
    payload["witness_signatures"] = [{"witness": did, "signature": b64url(cosignature)}]
    forged = Signer(k1, operator.identity).sign("key-rotation", payload)
    state = Fold().apply_all([FoldEntry(0, registration), FoldEntry(1, forged)])
    assert state.outcomes[1].code == "witness-signature-invalid"

    # the rotation witness's signature, presented as a cosignature of some checkpoint
    signed = b64url_decode(parse_payload("key-rotation", parse_statement(honest).payload)["witness_signatures"][0][
        "signature"], "signature")
    vkey = Cosigner("witness0.test/w", key).vkey
    line = NoteSignature(vkey.name, vkey.key_id, (1_700_000_000).to_bytes(8, "big") + signed)
    with pytest.raises(NoteSignatureInvalid):
        verify_cosignature(Note(text, (line,)), vkey)
