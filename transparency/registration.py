"""Registration: everything a statement must pass *before* it is queued for the sequencer.

Parse (structure and protected headers), resolve the signer's key, verify the signature, apply the
registration policy. Each step raises a precise error; nothing is written until all have passed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from schemas import cose_labels as L
from schemas.errors import CwtTimeInvalid, PolicyRefused, SignerUnresolvable
from schemas.leaf import leaf_data, logged_statement
from schemas.statement import SignedStatement
from transparency.did_web import DidWebClock
from transparency.identity import IdentityFollower
from verifier.keys import PublicKey
from verifier.statements import DidKeyResolver, KeyResolver, verify_statement


class RegistrationPolicy(Protocol):
    def check(self, statement: SignedStatement) -> None:
        """Raise ``PolicyRefused`` (or a subclass) to refuse the statement."""


MAX_NUMERIC_DATE = 2**63
"""CWT ``exp`` and ``nbf`` lie in ``[-2^63, 2^63)`` seconds (RFC 8392 NumericDate; CBOR bignums and non-finite
floats are refused, ``cwt-time-invalid``)."""


class IssuedInFuture(PolicyRefused):
    """A CWT ``iat`` later than the log's clock (beyond its skew): no statement was issued in the future. The fold
    takes a statement's ``iat`` as the time of its transition, and several rules ask for a later ``iat`` than the
    last (an agent's consent, a namespace's policy), so a signer's clock set years ahead would lock its own
    identity until then."""

    code = "cwt-iat-in-future"
    title = "Issued in the future"


@dataclass(frozen=True)
class DefaultPolicy:
    """Accept any content type from a signer that resolved; refuse statements outside their CWT validity, and
    statements issued (CWT ``iat``) after the log's clock, both within ``clock_skew_s``."""

    clock_skew_s: int = 300

    def check(self, statement: SignedStatement) -> None:
        claims = statement.message.protected.get(L.CWT_CLAIMS, {})
        now = int(time.time())
        exp, nbf = claims.get(L.CWT_EXP), claims.get(L.CWT_NBF)
        for name, value in (("exp", exp), ("nbf", nbf)):
            if isinstance(value, int | float) and not isinstance(value, bool) and not (
                (isinstance(value, int) or math.isfinite(value)) and -MAX_NUMERIC_DATE <= value < MAX_NUMERIC_DATE
            ):
                raise CwtTimeInvalid(f"CWT {name} is not a NumericDate a clock reaches (a {type(value).__name__} "
                                     "that is infinite, NaN or past 2^63)")
        iat = statement.issued_at
        if iat is not None and not -MAX_NUMERIC_DATE <= iat < MAX_NUMERIC_DATE:
            raise CwtTimeInvalid("CWT iat is not a NumericDate a clock reaches (an integer past 2^63)")
        if iat is not None and iat - self.clock_skew_s > now:
            raise IssuedInFuture(f"the statement says it was issued at {iat} (CWT iat), after the time, {now}")
        if isinstance(exp, int | float) and exp + self.clock_skew_s < now:
            raise PolicyRefused(f"the statement expired at {int(exp)} (CWT exp); the time is {now}")
        if isinstance(nbf, int | float) and nbf - self.clock_skew_s > now:
            raise PolicyRefused(f"the statement is not valid before {int(nbf)} (CWT nbf); the time is {now}")


class LogKeyRetired(PolicyRefused):
    code = "log-key-retired"
    title = "Signed by a retired log key"


@dataclass(frozen=True)
class RetiredLogKeys:
    """A retired log key signs nothing new. Its did:key stays one of the fold's service signers, so that the entries
    it signed while it was the log's key fold as they did (trust anchors, agent enrolments, did:web evidence); a
    statement it signs now is refused before it is logged, so a retired key that leaks cannot pin a root, enrol an
    agent or vouch for a did:web (docs/authority.md)."""

    signers: frozenset[str]  # the did:key of each retired log key

    def check(self, statement: SignedStatement) -> None:
        if statement.issuer in self.signers:
            raise LogKeyRetired(f"{statement.issuer[:200]} is a retired key of this log: it signs nothing new; the "
                                "log's statements are signed with its current key")


@dataclass(frozen=True)
class ChainResolver:
    """Tries resolvers in order; the first that knows the signer answers. Later issues add log-registered keys."""

    resolvers: Sequence[KeyResolver]

    def resolve(self, statement: SignedStatement) -> PublicKey:
        reasons = []
        for resolver in self.resolvers:
            try:
                return resolver.resolve(statement)
            except SignerUnresolvable as exc:
                reasons.append(exc.detail)
        raise SignerUnresolvable("; ".join(reasons) or f"no resolver knows signer {statement.issuer!r}")


@dataclass(frozen=True)
class AllPolicies:
    """Every policy must accept the statement; the first refusal is the answer."""

    policies: Sequence[RegistrationPolicy]

    def check(self, statement: SignedStatement) -> None:
        for policy in self.policies:
            policy.check(statement)


@dataclass(frozen=True)
class Checked:
    """A statement that passed registration, ready for the sequencer. ``as_logged``: the statement, if the body
    is byte for byte what is logged (no unprotected header, deterministic encoding), so that it is also what
    parsing the logged bytes gives (the log's fold then need not parse them again)."""

    statement: SignedStatement
    leaf_data: bytes
    logged: bytes
    as_logged: SignedStatement | None = None


@dataclass(frozen=True)
class Registrar:
    resolver: KeyResolver
    policy: RegistrationPolicy

    def check(self, body: bytes) -> Checked:
        statement = verify_statement(body, self.resolver)
        self.policy.check(statement)
        logged = logged_statement(statement.message)
        return Checked(statement, leaf_data(statement.message), logged, statement if logged == body else None)


def default_registrar(identity: IdentityFollower, retired: frozenset[str] = frozenset()) -> Registrar:
    """Signers registered on the log resolve through the log's identity state; others as did:key. ``retired``: the
    did:key of each retired log key (``RetiredLogKeys``)."""
    return Registrar(
        ChainResolver([identity, DidKeyResolver()]),
        AllPolicies([DefaultPolicy(), RetiredLogKeys(retired), DidWebClock(), identity]),
    )
