"""RFC 8693 §4.1 ``act`` nesting of task-bound tokens (verifier.tokens): known answers from the RFC's Figures 4 and
5, the nesting order, and the strict form of an ``act`` claim. Minted tokens and the refusal of an inverted one are
in test_tokens.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.errors import TokenChainMismatch, TokenMalformed
from tests.unit.verifier.identity_world import HOUR, T0
from verifier.delegation import Chain
from verifier.identity_state import Delegation, Scope
from verifier.tokens import actor_claim, actors_of, delegation_claims

# RFC 8693 §4.1, Figure 4 ("Actor Claim") and Figure 5 ("Nested Actor Claim"), verbatim
RFC8693_FIGURE_4 = json.loads("""
    {
      "aud":"https://consumer.example.com",
      "iss":"https://issuer.example.com",
      "exp":1443904177,
      "nbf":1443904077,
      "sub":"user@example.com",
      "act":
      {
        "sub":"admin@example.com"
      }
    }""")
RFC8693_FIGURE_5 = json.loads("""
    {
      "aud":"https://service16.example.com",
      "iss":"https://issuer.example.com",
      "exp":1443904100,
      "nbf":1443904000,
      "sub":"user@example.com",
      "act":
      {
        "sub":"https://service16.example.com",
        "act":
        {
          "sub":"https://service77.example.com"
        }
      }
    }""")


def _chain(*hops: tuple[str, str]) -> Chain:
    """A chain of (principal, agent) hops, root first, as the fold would link them (only the names matter here)."""
    links, parent = [], None
    for depth, (principal, agent) in enumerate(hops):
        entry = f"{depth:064x}"
        links.append(Delegation(entry=entry, index=depth, principal=principal, agent=agent, parent=parent,
                                scope=Scope(("s",), ("a",), ("r",)), not_after=T0 + HOUR, max_depth=8, depth=depth,
                                root_principal=hops[0][0]))
        parent = entry
    return Chain(tuple(links))


def test_rfc8693_figure_4_one_delegation() -> None:
    """user@example.com delegates to admin@example.com, who acts: sub is the user, act the admin."""
    claims = delegation_claims(_chain(("user@example.com", "admin@example.com")))
    assert claims == {"sub": RFC8693_FIGURE_4["sub"], "act": RFC8693_FIGURE_4["act"]}
    assert actors_of(RFC8693_FIGURE_4["act"]) == ("admin@example.com",)


def test_rfc8693_figure_5_nested_actors() -> None:
    """"the current actor is service16, and service77 was a prior actor": user -> service77 -> service16."""
    chain = _chain(("user@example.com", "https://service77.example.com"),
                   ("https://service77.example.com", "https://service16.example.com"))
    assert delegation_claims(chain) == {"sub": RFC8693_FIGURE_5["sub"], "act": RFC8693_FIGURE_5["act"]}
    assert actors_of(RFC8693_FIGURE_5["act"]) == ("https://service77.example.com", "https://service16.example.com")
    assert actor_claim(actors_of(RFC8693_FIGURE_5["act"])) == RFC8693_FIGURE_5["act"]


def test_actor_claim_nests_the_least_recent_actor_deepest() -> None:
    assert actor_claim(["first", "then", "now"]) == {"sub": "now", "act": {"sub": "then", "act": {"sub": "first"}}}
    with pytest.raises(TokenChainMismatch):
        actor_claim([])


@pytest.mark.parametrize(
    "act",
    [[], "did:key:z", {}, {"sub": ""}, {"sub": 7}, {"sub": "a", "iss": "x"}, {"sub": "a", "act": None},
     {"sub": "a", "act": {"act": {"sub": "b"}}}, {"sub": "a", "act": ["b"]}],
)
def test_act_claims_outside_the_nesting_form_are_malformed(act: Any) -> None:
    with pytest.raises(TokenMalformed, match="act"):
        actors_of(act)
