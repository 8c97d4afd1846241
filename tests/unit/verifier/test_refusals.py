"""docs/authority.md lists every refusal code the fold has, and no code it does not have."""

from __future__ import annotations

import re
from pathlib import Path

from transparency.problem_details import problem_status
from verifier.refusals import Refusal, Refused

DOC = Path(__file__).resolve().parents[3] / "docs" / "authority.md"


def _listed_codes() -> set[str]:
    """The codes of the doc's code tables: the first cell of rows like ``| `code` | meaning |``."""
    text = DOC.read_text("utf-8")
    codes_section = text[text.index("## Codes"):]
    return set(re.findall(r"^\| `([a-z0-9-]+)` \|", codes_section, re.MULTILINE))


def test_every_refusal_code_is_documented_and_every_documented_code_exists() -> None:
    assert _listed_codes() == {refusal.value for refusal in Refusal}


def test_codes_are_unique_and_carried_by_the_error() -> None:
    assert len({r.value for r in Refusal}) == len(Refusal)
    error = Refused(Refusal.CONSENT_MISSING, "detail")
    assert (error.code, error.type_uri, problem_status(error)) == (
        "consent-missing", "urn:tabellion:error:consent-missing", 403)
