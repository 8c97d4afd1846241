"""C2SP tlog-policy files (https://c2sp.org/tlog-policy): which logs and witnesses a party knows, and the
quorum of witness cosignatures that makes a checkpoint valid. Parsing only; the evaluation is
``verifier.policy``.

    log <vkey> [<url>]
    witness <name> <vkey> [<url>]
    group <name> all|any|<k> <member>...
    quorum <name>|none

The rules, as the specification gives them and as applied here:

- a line ends with a newline; items are separated by runs of spaces and tabs only; leading and trailing
  whitespace is allowed; empty lines and lines whose first non-blank character is ``#`` are ignored;
- the only control characters allowed are tab and newline (octets 0x09, 0x0A, 0x20-0x7E, 0x80-0xFF); octets
  with the high bit set are opaque: names are compared as octet strings (read with ``surrogateescape``, so
  a name that is not UTF-8 is kept byte for byte and never equals a different byte string);
- a log's vkey is a checkpoint key (Ed25519, type 0x01) whose name is the log's origin; two logs with the
  same public key are refused;
- a witness's vkey is a cosignature key: Ed25519 tlog-cosignature/v1 (type 0x04), the only kind Tabellion
  verifies (an ML-DSA-44 key, type 0x06, is refused as unsupported); two witnesses with the same public key
  are refused;
- witnesses and groups share one namespace, in which ``none`` is predefined: it may be the quorum but not a
  member or a new name; a group or the quorum may only name what earlier lines defined (so no cycles);
- a group has at least one member, each named at most once; ``any`` is k = 1, ``all`` is k = n, and a
  numeric k is decimal digits with 1 <= k <= n;
- exactly one ``quorum`` line.

Choices where the specification is silent (docs/witnessing.md): the last line may end without a newline; a
URL is any further item, kept as given (it must be ``http://`` or ``https://`` for the parties that use it:
the log's submissions and the monitor); a numeric threshold with leading zeroes is read as decimal. The limits
are far above the 32 logs, witnesses and groups the specification asks implementations to support.
"""

from __future__ import annotations

import re
from collections.abc import Sized
from dataclasses import dataclass, field
from typing import Final

from schemas.errors import MalformedKey, MalformedPolicy
from schemas.note import SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_ED25519, VerifierKey, parse_vkey

NONE: Final = "none"
MAX_POLICY_BYTES: Final = 1024 * 1024
MAX_ENTRIES: Final = 1024  # logs, witnesses and groups, each
SIG_TYPE_MLDSA44_COSIGNATURE: Final = 0x06
_WHITESPACE = re.compile(r"[ \t]+")
_ALLOWED = re.compile(rb"[\t\n\x20-\x7e\x80-\xff]*")


@dataclass(frozen=True)
class PolicyLog:
    vkey: VerifierKey
    url: str | None = None


@dataclass(frozen=True)
class PolicyWitness:
    name: str
    vkey: VerifierKey
    url: str | None = None


@dataclass(frozen=True)
class PolicyGroup:
    name: str
    threshold: int
    members: tuple[str, ...]


@dataclass(frozen=True)
class Policy:
    """A parsed policy. ``witnesses`` and ``groups`` are keyed by their policy names (one namespace)."""

    logs: tuple[PolicyLog, ...]
    witnesses: dict[str, PolicyWitness] = field(hash=False)
    groups: dict[str, PolicyGroup] = field(hash=False)
    quorum: str

    def log_keys(self) -> tuple[VerifierKey, ...]:
        return tuple(log.vkey for log in self.logs)

    def describe_quorum(self) -> str:
        """The quorum in words, for messages: ``2 of (w1, w2, w3)``, nested for groups."""
        return self._describe(self.quorum)

    def _describe(self, name: str) -> str:
        if name == NONE:
            return "no cosignature"
        group = self.groups.get(name)
        if group is None:
            return name
        inner = ", ".join(self._describe(m) for m in group.members)
        return f"{group.threshold} of ({inner})"


def parse_policy(data: bytes | str) -> Policy:
    """Parse a tlog-policy file; raise ``MalformedPolicy`` naming the line for any breach of its rules."""
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    if len(raw) > MAX_POLICY_BYTES:
        raise MalformedPolicy(f"the policy is larger than {MAX_POLICY_BYTES} bytes")
    if not _ALLOWED.fullmatch(raw):
        bad = next(b for b in raw if not (b in (0x09, 0x0A) or 0x20 <= b <= 0x7E or b >= 0x80))
        raise MalformedPolicy(f"the policy holds the control octet 0x{bad:02x}; only tab and newline are allowed")
    builder = _Builder()
    for number, line in enumerate(raw.decode("utf-8", "surrogateescape").split("\n"), start=1):
        items = [item for item in _WHITESPACE.split(line.strip(" \t")) if item]
        if not items or items[0].startswith("#"):
            continue
        try:
            builder.line(items)
        except (MalformedPolicy, MalformedKey) as exc:
            raise MalformedPolicy(f"line {number}: {exc.detail}") from exc
    return builder.build()


class _Builder:
    def __init__(self) -> None:
        self.logs: list[PolicyLog] = []
        self.witnesses: dict[str, PolicyWitness] = {}
        self.groups: dict[str, PolicyGroup] = {}
        self.quorum: str | None = None

    def line(self, items: list[str]) -> None:
        keyword, args = items[0], items[1:]
        if keyword == "log":
            self._log(args)
        elif keyword == "witness":
            self._witness(args)
        elif keyword == "group":
            self._group(args)
        elif keyword == "quorum":
            self._quorum(args)
        else:
            raise MalformedPolicy(f"unknown keyword {keyword[:40]!r} (log, witness, group or quorum)")

    def _log(self, args: list[str]) -> None:
        if not 1 <= len(args) <= 2:
            raise MalformedPolicy("a log line is 'log <vkey> [<url>]'")
        vkey = parse_vkey(args[0])
        if vkey.sig_type != SIG_TYPE_ED25519:
            raise MalformedPolicy(f"the log key {vkey.name!r} has signature type 0x{vkey.sig_type:02x}; a checkpoint "
                                  "key is Ed25519 (0x01)")
        if any(log.vkey.public_key == vkey.public_key for log in self.logs):
            raise MalformedPolicy(f"the log key {vkey.name!r} duplicates the public key of another log")
        _limit(self.logs, "logs")
        self.logs.append(PolicyLog(vkey, args[1] if len(args) == 2 else None))

    def _witness(self, args: list[str]) -> None:
        if not 2 <= len(args) <= 3:
            raise MalformedPolicy("a witness line is 'witness <name> <vkey> [<url>]'")
        name = self._new_name(args[0])
        vkey = parse_vkey(args[1])
        if vkey.sig_type == SIG_TYPE_MLDSA44_COSIGNATURE:
            raise MalformedPolicy(f"the witness {name!r} has an ML-DSA-44 cosignature key (0x06), which Tabellion "
                                  "does not verify; only Ed25519 cosignature/v1 keys (0x04)")
        if vkey.sig_type != SIG_TYPE_COSIGNATURE_V1:
            raise MalformedPolicy(f"the witness {name!r} has signature type 0x{vkey.sig_type:02x}, not an Ed25519 "
                                  "cosignature/v1 key (0x04)")
        if any(w.vkey.public_key == vkey.public_key for w in self.witnesses.values()):
            raise MalformedPolicy(f"the witness {name!r} duplicates the public key of another witness")
        _limit(self.witnesses, "witnesses")
        self.witnesses[name] = PolicyWitness(name, vkey, args[2] if len(args) == 3 else None)

    def _group(self, args: list[str]) -> None:
        if len(args) < 3:
            raise MalformedPolicy("a group line is 'group <name> all|any|<k> <member>...' with at least one member")
        name = self._new_name(args[0])
        members = tuple(args[2:])
        for member in members:
            if member == NONE:
                raise MalformedPolicy(f"'none' cannot be a member of the group {name!r}")
            if member not in self.witnesses and member not in self.groups:
                raise MalformedPolicy(f"the group {name!r} names {member[:80]!r}, which no earlier line defines")
        if len(set(members)) != len(members):
            raise MalformedPolicy(f"the group {name!r} names a member more than once")
        k_text, n = args[1], len(members)
        if k_text == "any":
            k = 1
        elif k_text == "all":
            k = n
        elif k_text.isascii() and k_text.isdigit():
            k = int(k_text)
            if not 1 <= k <= n:
                raise MalformedPolicy(f"the group {name!r} needs 1 <= k <= {n}; k is {k_text[:20]}")
        else:
            raise MalformedPolicy(f"the threshold of the group {name!r} is {k_text[:20]!r}: all, any or a number")
        _limit(self.groups, "groups")
        self.groups[name] = PolicyGroup(name, k, members)

    def _quorum(self, args: list[str]) -> None:
        if len(args) != 1:
            raise MalformedPolicy("a quorum line is 'quorum <name>'")
        if self.quorum is not None:
            raise MalformedPolicy("a policy has exactly one quorum line; this is the second")
        name = args[0]
        if name != NONE and name not in self.witnesses and name not in self.groups:
            raise MalformedPolicy(f"the quorum names {name[:80]!r}, which no earlier line defines")
        self.quorum = name

    def _new_name(self, name: str) -> str:
        if name == NONE:
            raise MalformedPolicy("'none' is predefined; it cannot name a witness or a group")
        if name in self.witnesses or name in self.groups:
            raise MalformedPolicy(f"the name {name[:80]!r} is already defined")
        return name

    def build(self) -> Policy:
        if self.quorum is None:
            raise MalformedPolicy("the policy has no quorum line")
        return Policy(tuple(self.logs), dict(self.witnesses), dict(self.groups), self.quorum)


def _limit(items: Sized, what: str) -> None:
    if len(items) >= MAX_ENTRIES:
        raise MalformedPolicy(f"more than {MAX_ENTRIES} {what}")
