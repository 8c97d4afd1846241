"""A world for task-bound tokens: a registry key, a nonce cache and a delegation chain op -> a -> b -> c to mint on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from issuer.registry_keys import RegistryKey, RegistryKeys
from issuer.tokens import MintedToken, NonceCache, mint_token, new_nonce, sign_jws, sign_request
from tests.unit.verifier.identity_world import HOUR, T0, World
from verifier.fold import IdentityState
from verifier.tokens import verify_token

NOW = T0 + 60
ISS = "did:web:registry.example"
ROOT = {"services": ["mail", "files"], "actions": ["read", "list", "write"], "resources": ["mail/*", "files/*"]}
MIDDLE = {"services": ["mail"], "actions": ["read", "list", "write"], "resources": ["mail/*"]}
LEAF = {"services": ["mail"], "actions": ["read", "list"], "resources": ["mail/inbox/*"]}


@dataclass
class Setup:
    world: World
    keys: RegistryKeys
    chain: tuple[str, str, str]  # op -> a, a -> b, b -> c
    nonces: NonceCache

    @property
    def key(self) -> RegistryKey:
        return self.keys.current

    @property
    def state(self) -> IdentityState:
        return self.world.fold()

    def request(self, agent: str = "c", signer: str | None = None, **fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "agent": self.world.did(agent), "task_id": "task-42", "tools": ["read", "list"], "service": "mail",
            "resource": "mail/inbox/7", "delegation": self.chain[2], "ttl": 120, "created": NOW,
            "nonce": new_nonce(),
        }
        body.update(fields)
        return sign_request(self.world.key(signer or agent), body)

    def mint(self, body: dict[str, Any] | None = None, *, now: int = NOW, state: IdentityState | None = None,
             **fields: Any) -> MintedToken:
        return mint_token(body or self.request(**fields), state=state or self.state, key=self.key,
                          nonces=self.nonces, now=now, issuer=ISS, checkpoint=len(self.world.entries))

    def verify(self, token: str, *, now: int = NOW, state: IdentityState | None = None, **checks: Any) -> Any:
        expected: dict[str, Any] = {"audience": "mail", "tool": "read", "resource": "mail/inbox/7", "issuer": ISS}
        expected.update(checks)
        return verify_token(token, self.keys.jwk_set(), state or self.state, now, **expected)

    def forge(self, claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
        """A token with these claims, correctly signed by the registry key (to reach the checks after the signature)."""
        return sign_jws(header or {"alg": "EdDSA", "kid": self.key.kid, "typ": "JWT"}, claims, self.key.private)


def make_setup(tmp_path: Path) -> Setup:
    """Operator op; agents a, b, c (and x) with passports; delegations op -> a -> b -> c, the leaf LEAF."""
    w = World()
    w.register("op")
    for agent in ("a", "b", "c", "x"):
        w.passport(agent)
    root = w.delegate("op", "a", scope=ROOT, max_depth=2)
    ab = w.delegate("a", "b", root, scope=MIDDLE, max_depth=1, not_after=T0 + 5 * HOUR)
    bc = w.delegate("b", "c", ab, scope=LEAF, max_depth=0, not_after=T0 + 2 * HOUR)
    assert all(o.accepted for o in w.fold().outcomes), [o.reason for o in w.fold().outcomes]
    return Setup(w, RegistryKeys.open(tmp_path / "registry-keys"), (root, ab, bc), NonceCache())
