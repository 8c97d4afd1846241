"""Signed statements (RFC 9943): resolve the signer's key, verify the signature.

Who may sign is a policy decision of the consumer; it plugs in a ``KeyResolver``. The offline default,
``DidKeyResolver``, resolves did:key signers from the statement alone (docs/architecture.md §2): the ``kid`` is
the signer's verification method ``did:key:z…#z…`` (or the bare DID) and must name the CWT ``iss``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from schemas.errors import SignerUnresolvable
from schemas.statement import SignedStatement, parse_statement
from verifier.cose import STATEMENT_SIGNATURES, verify_sign1
from verifier.did_key import resolve_did_key
from verifier.keys import PublicKey


class KeyResolver(Protocol):
    """Finds the public key that must have signed a statement, or raises ``SignerUnresolvable``."""

    def resolve(self, statement: SignedStatement) -> PublicKey: ...


@dataclass(frozen=True)
class DidKeyResolver:
    """Resolves did:key signers offline. x5chain signers need trust anchors, which this resolver lacks."""

    def resolve(self, statement: SignedStatement) -> PublicKey:
        if statement.kid is None:
            if statement.x5chain:
                raise SignerUnresolvable("no trust anchors configured for x5chain: the statement names its "
                                         "signer only by an x5chain (33) certificate chain")
            raise SignerUnresolvable("the statement names no signing key (no kid (4))")
        kid = statement.kid_text
        if kid is None:
            raise SignerUnresolvable(f"kid (4) {statement.kid[:40].hex()} is not UTF-8 text naming a did:key")
        did = kid.partition("#")[0]
        if did != statement.issuer:
            raise SignerUnresolvable(
                f"kid (4) names signer {did[:200]!r} but the CWT iss (1) is {statement.issuer[:200]!r}; "
                "a did:key signer must be its own issuer"
            )
        return resolve_did_key(kid)


def verify_statement(data: bytes | SignedStatement, resolver: KeyResolver) -> SignedStatement:
    """Parse (when given bytes), resolve the signer and verify the signature; return the statement."""
    statement = data if isinstance(data, SignedStatement) else parse_statement(data)
    key = resolver.resolve(statement)
    verify_sign1(statement.message, statement.alg, key, memo=STATEMENT_SIGNATURES)
    return statement
