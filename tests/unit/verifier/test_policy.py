"""C2SP tlog-policy: the specification's example, every rule of the file format refused when broken, the quorum
against an independent reference (hypothesis), and cosigned checkpoints verified against a policy."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.errors import CheckpointSignatureInvalid, CheckpointUnwitnessed, MalformedPolicy, NoteSignatureInvalid
from schemas.note import Note, NoteSignature, VerifierKey, ed25519_vkey, key_id, parse_note
from schemas.policy import Policy, parse_policy
from tests.vectors import vectors_dir
from tests.witnessing import TestLog
from verifier.policy import quorum_met, verify_witnessed_checkpoint
from witness.cosigner import Cosigner

EXAMPLES: dict[str, Any] = json.loads((vectors_dir() / "c2sp-witness" / "c2sp_examples.json").read_text())
LOG = TestLog("example.test/log")
LOG.append(9)
COSIGNERS = {name: Cosigner(f"{name.lower()}.witness.test", Ed25519PrivateKey.generate())
             for name in ("X1", "X2", "X3", "Y1", "Y2", "Y3")}


def _example() -> Policy:
    text: str = EXAMPLES["policy_example"]["text"]
    text = text.replace("log <vkey>", f"log {LOG.vkey.encode()}", 1)
    for name, cosigner in COSIGNERS.items():
        text = text.replace(f"witness {name} <vkey>", f"witness {name} {cosigner.vkey.encode()}", 1)
    assert "<vkey>" not in text
    return parse_policy(text)


def test_the_specification_example() -> None:
    policy = _example()
    assert policy.quorum == EXAMPLES["policy_example"]["quorum"]
    assert policy.log_keys() == (LOG.vkey,)
    assert policy.groups["X-witnesses"].threshold == 2
    assert policy.groups["Y-witnesses"].threshold == 1
    assert policy.groups["X-and-Y"].threshold == 2
    assert policy.describe_quorum() == "2 of (2 of (X1, X2, X3), 1 of (Y1, Y2, Y3))"
    # two X and one Y witness, and nothing less
    assert quorum_met(policy, {"X1", "X3", "Y2"})
    assert quorum_met(policy, {"X1", "X2", "X3", "Y1", "Y2", "Y3"})
    assert not quorum_met(policy, {"X1", "Y1", "Y2", "Y3"})
    assert not quorum_met(policy, {"X1", "X2", "X3"})
    assert not quorum_met(policy, set())


def test_whitespace_comments_urls_and_a_last_line_without_newline() -> None:
    x = COSIGNERS["X1"].vkey.encode()
    policy = parse_policy(f"  # a comment\n\t\nlog\t{LOG.vkey.encode()}  https://log.test/\n"
                          f" witness  w1 {x} https://w1.test/ \t\n\n# another\nquorum w1")
    assert policy.logs[0].url == "https://log.test/"
    assert policy.witnesses["w1"].url == "https://w1.test/"
    assert policy.quorum == "w1"


def test_quorum_none_and_no_logs() -> None:
    policy = parse_policy("quorum none\n")
    assert policy.logs == () and quorum_met(policy, set())


def test_names_are_octet_strings() -> None:
    """'K' and the Kelvin sign are two names; a name that is not UTF-8 is kept byte for byte."""
    x, y = COSIGNERS["X1"].vkey.encode(), COSIGNERS["X2"].vkey.encode()
    policy = parse_policy(f"witness K {x}\nwitness \u212a {y}\ngroup g all K \u212a\nquorum g\n".encode())
    assert set(policy.witnesses) == {"K", "\u212a"}
    raw = parse_policy(b"witness \xff\xfe " + x.encode() + b"\nquorum \xff\xfe\n")
    assert len(raw.witnesses) == 1 and raw.quorum.encode("utf-8", "surrogateescape") == b"\xff\xfe"


X1, X2 = COSIGNERS["X1"].vkey.encode(), COSIGNERS["X2"].vkey.encode()
X1_RENAMED = Cosigner("renamed.witness.test", COSIGNERS["X1"].private).vkey.encode()  # same key, another name
LOGKEY = LOG.vkey.encode()
LOGKEY_RENAMED = ed25519_vkey("renamed.test/log", LOG.vkey.public_key).encode()


@pytest.mark.parametrize(
    ("what", "text"),
    [
        ("no quorum", f"witness a {X1}\n"),
        ("two quorums", f"witness a {X1}\nquorum a\nquorum a\n"),
        ("quorum of an undefined name", "quorum a\n"),
        ("quorum before its definition", f"quorum a\nwitness a {X1}\n"),
        ("quorum with two names", f"witness a {X1}\nwitness b {X2}\nquorum a b\n"),
        ("unknown keyword", f"witnes a {X1}\nquorum a\n"),
        ("keyword in capitals", f"WITNESS a {X1}\nquorum a\n"),
        ("a control character", f"witness a {X1}\r\nquorum a\n"),
        ("a NUL", f"witness a {X1}\nquorum a\x00\n"),
        ("a vertical tab as whitespace", f"witness\x0ba {X1}\nquorum a\n"),
        ("a witness named none", f"witness none {X1}\nquorum none\n"),
        ("a name defined twice", f"witness a {X1}\nwitness a {X2}\nquorum a\n"),
        ("a group named as a witness", f"witness a {X1}\ngroup a any a\nquorum a\n"),
        ("two witnesses with one key", f"witness a {X1}\nwitness b {X1_RENAMED}\nquorum a\n"),
        ("two logs with one key", f"log {LOGKEY}\nlog {LOGKEY_RENAMED}\nquorum none\n"),
        ("a witness with a log key", f"witness a {LOGKEY}\nquorum a\n"),
        ("a log with a cosigner key", f"log {X1}\nquorum none\n"),
        ("a witness without a key", "witness a\nquorum a\n"),
        ("a witness with two urls", f"witness a {X1} http://a http://b\nquorum a\n"),
        ("a log with two urls", f"log {LOGKEY} http://a http://b\nquorum none\n"),
        ("a bad vkey", "witness a a+00000000+BAAA\nquorum a\n"),
        ("a group without members", f"witness a {X1}\ngroup g any\nquorum g\n"),
        ("a group naming an undefined member", f"witness a {X1}\ngroup g any a b\nquorum g\n"),
        ("a group naming a later member", f"witness a {X1}\ngroup g any a b\nwitness b {X2}\nquorum g\n"),
        ("a group naming none", f"witness a {X1}\ngroup g any a none\nquorum g\n"),
        ("a group naming a member twice", f"witness a {X1}\ngroup g any a a\nquorum g\n"),
        ("a group naming itself", f"witness a {X1}\ngroup g any a g\nquorum g\n"),
        ("k of 0", f"witness a {X1}\ngroup g 0 a\nquorum g\n"),
        ("k above n", f"witness a {X1}\ngroup g 2 a\nquorum g\n"),
        ("k negative", f"witness a {X1}\ngroup g -1 a\nquorum g\n"),
        ("k not a number", f"witness a {X1}\ngroup g some a\nquorum g\n"),
        ("k in capitals", f"witness a {X1}\ngroup g ANY a\nquorum g\n"),
    ],
)
def test_broken_rules_refused(what: str, text: str) -> None:
    with pytest.raises(MalformedPolicy):
        parse_policy(text)


def test_duplicates_are_by_public_key() -> None:
    """Two vkeys wrapping one public key are duplicates, whatever their names; the renamed keys parse alone."""
    parse_policy(f"witness b {X1_RENAMED}\nquorum b\n")
    parse_policy(f"log {LOGKEY_RENAMED}\nquorum none\n")


def test_mldsa_witness_refused_as_unsupported() -> None:
    public = bytes(1312)
    vkey = VerifierKey("m.test", key_id("m.test", 0x06, public), 0x06, public).encode()
    with pytest.raises(MalformedPolicy, match="ML-DSA-44"):
        parse_policy(f"witness m {vkey}\nquorum m\n")


# --- the quorum against an independent reference ---------------------------------------------------


@st.composite
def _policies(draw: st.DrawFn) -> tuple[Policy, set[str]]:
    """A random policy: witnesses w0..wn, then groups over earlier names, then a quorum; and who cosigned."""
    n = draw(st.integers(1, 6))
    keys = [Cosigner(f"w{i}.test", Ed25519PrivateKey.generate()).vkey for i in range(n)]
    lines = [f"witness w{i} {k.encode()}" for i, k in enumerate(keys)]
    names = [f"w{i}" for i in range(n)]
    for g in range(draw(st.integers(0, 5))):
        members = draw(st.lists(st.sampled_from(names), min_size=1, max_size=len(names), unique=True))
        k = draw(st.one_of(st.just("any"), st.just("all"), st.integers(1, len(members)).map(str)))
        lines.append(f"group g{g} {k} {' '.join(members)}")
        names.append(f"g{g}")
    quorum = draw(st.sampled_from([*names, "none"]))
    lines.append(f"quorum {quorum}")
    cosigned = set(draw(st.lists(st.sampled_from([f"w{i}" for i in range(n)]), unique=True)))
    return parse_policy("\n".join(lines)), cosigned


def _reference(policy: Policy, cosigned: set[str]) -> bool:
    """Bottom-up over the definition order: the set of every name that has witnessed, then the quorum."""
    witnessed = set(cosigned) & set(policy.witnesses)
    for group in policy.groups.values():  # dicts keep the file's order, and groups only name earlier names
        if len([m for m in group.members if m in witnessed]) >= group.threshold:
            witnessed.add(group.name)
    return policy.quorum == "none" or policy.quorum in witnessed


@settings(max_examples=200, deadline=None)
@given(_policies())
def test_quorum_matches_the_reference(case: tuple[Policy, set[str]]) -> None:
    policy, cosigned = case
    assert quorum_met(policy, cosigned) == _reference(policy, cosigned)


# --- checkpoints verified against a policy --------------------------------------------------------------


def _cosigned(*names: str, timestamp: int = 1_700_000_000, size: int = 9) -> str:
    note = parse_note(LOG.signed(size))
    lines = tuple(COSIGNERS[n].cosign(note.text, timestamp) for n in names)
    return Note(note.text, (*note.signatures, *lines)).encode()


def test_witnessed_checkpoint_verifies() -> None:
    policy = _example()
    verified = verify_witnessed_checkpoint(_cosigned("X1", "X3", "Y2"), policy)
    assert verified.checkpoint == LOG.checkpoint(9)
    assert dict(verified.cosigners) == {"X1": 1_700_000_000, "X3": 1_700_000_000, "Y2": 1_700_000_000}
    stranger = Cosigner("stranger.test", Ed25519PrivateKey.generate())
    note = parse_note(_cosigned("X1", "X2", "Y1"))
    noisy = Note(note.text, (*note.signatures, stranger.cosign(note.text, 5))).encode()
    assert verify_witnessed_checkpoint(noisy, policy).checkpoint.size == 9  # unknown cosigners ignored


def test_quorum_not_met_refused() -> None:
    policy = _example()
    for names in (("X1", "Y1", "Y2"), ("X1", "X2"), ()):
        with pytest.raises(CheckpointUnwitnessed, match="2 of"):
            verify_witnessed_checkpoint(_cosigned(*names), policy)


def test_bad_cosignature_by_a_policy_witness_refuses_the_note() -> None:
    policy = _example()
    note = parse_note(_cosigned("X1", "X2", "Y1"))
    bad = NoteSignature(note.signatures[1].name, note.signatures[1].key_id, bytes(72))
    tampered = Note(note.text, (*note.signatures, bad)).encode()
    with pytest.raises(NoteSignatureInvalid):
        verify_witnessed_checkpoint(tampered, policy)
    other_size = parse_note(_cosigned("X1", "X2", "Y1", size=8))  # cosignatures of another checkpoint
    moved = Note(note.text, (note.signatures[0], *other_size.signatures[1:])).encode()
    with pytest.raises(NoteSignatureInvalid):
        verify_witnessed_checkpoint(moved, policy)


def test_the_log_signature_is_required() -> None:
    policy = _example()
    impostor = TestLog(LOG.origin)
    impostor.leaves = list(LOG.leaves)
    note = parse_note(impostor.signed(9))
    cosigned = Note(note.text, (*note.signatures, *(COSIGNERS[n].cosign(note.text, 1) for n in ("X1", "X2", "Y1"))))
    with pytest.raises(CheckpointSignatureInvalid):
        verify_witnessed_checkpoint(cosigned.encode(), policy)
    only_witnesses = Note(note.text, cosigned.signatures[1:]).encode()
    with pytest.raises(CheckpointSignatureInvalid):
        verify_witnessed_checkpoint(only_witnesses, policy)


def test_a_given_log_key_must_be_in_the_policy() -> None:
    policy = _example()
    assert verify_witnessed_checkpoint(_cosigned("X1", "X2", "Y1"), policy, LOG.vkey).checkpoint.size == 9
    other = TestLog("other.test/log")
    with pytest.raises(MalformedPolicy):
        verify_witnessed_checkpoint(_cosigned("X1", "X2", "Y1"), policy, other.vkey)
    no_logs = parse_policy("\n".join(line for line in _policy_lines() if not line.startswith("log ")))
    with pytest.raises(MalformedPolicy):
        verify_witnessed_checkpoint(_cosigned("X1", "X2", "Y1"), no_logs)
    assert verify_witnessed_checkpoint(_cosigned("X1", "X2", "Y1"), no_logs, LOG.vkey).checkpoint.size == 9


def _policy_lines() -> list[str]:
    policy = _example()
    lines = [f"log {LOG.vkey.encode()}"]
    lines += [f"witness {n} {w.vkey.encode()}" for n, w in policy.witnesses.items()]
    for g in policy.groups.values():
        lines.append(f"group {g.name} {g.threshold} {' '.join(g.members)}")
    return [*lines, f"quorum {policy.quorum}"]


def test_every_subset_of_the_example() -> None:
    """All 64 subsets of the six witnesses, as real cosignatures: valid exactly when 2 X and 1 Y cosigned."""
    policy = _example()
    for r in range(7):
        for subset in itertools.combinations(COSIGNERS, r):
            expected = sum(n.startswith("X") for n in subset) >= 2 and any(n.startswith("Y") for n in subset)
            if expected:
                verify_witnessed_checkpoint(_cosigned(*subset), policy)
            else:
                with pytest.raises(CheckpointUnwitnessed):
                    verify_witnessed_checkpoint(_cosigned(*subset), policy)
