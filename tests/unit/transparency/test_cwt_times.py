"""The registration policy's CWT ``exp`` and ``nbf``: a NumericDate no clock reaches — an integer past 2^63 either
way (CBOR bignums), an infinity or a NaN — is refused (``cwt-time-invalid``, 403 by the one mapper), where a huge
negative ``exp`` or an infinite ``nbf`` answered 500 (its refusal message could not print it) and a NaN ``nbf``
was accepted. Real statements signed by a fresh key; a plausible time is still judged as before."""

from __future__ import annotations

import math
import time

import pytest

from schemas.errors import CwtTimeInvalid, PolicyRefused
from schemas.statement import parse_statement
from transparency.client.signing import generate_key, sign_statement
from transparency.problem_details import problem_status
from transparency.registration import DefaultPolicy, IssuedInFuture

KEY = generate_key()


def _statement(claims: dict[int, object]) -> bytes:
    return sign_statement(KEY, b"{}", subject="s", content_type="application/json", extra_claims=claims)


@pytest.mark.parametrize("claims", [
    {4: -10**5000}, {4: 2**63}, {4: -math.inf}, {4: math.nan}, {5: 10**5000}, {5: math.inf}, {5: math.nan},
    {5: -2**64},
], ids=["exp -10^5000", "exp 2^63", "exp -inf", "exp nan", "nbf 10^5000", "nbf inf", "nbf nan", "nbf -2^64"])
def test_an_unreachable_numeric_date_is_refused(claims: dict[int, object]) -> None:
    with pytest.raises(CwtTimeInvalid) as refused:
        DefaultPolicy().check(parse_statement(_statement(claims)))
    assert refused.value.code == "cwt-time-invalid" and problem_status(refused.value) == 403


def test_plausible_times_are_judged_as_before() -> None:
    now = int(time.time())
    DefaultPolicy().check(parse_statement(_statement({4: now + 60, 5: now - 60})))
    DefaultPolicy().check(parse_statement(_statement({4: now + 60.5})))
    with pytest.raises(PolicyRefused) as expired:
        DefaultPolicy().check(parse_statement(_statement({4: now - 3600})))
    assert not isinstance(expired.value, CwtTimeInvalid)


@pytest.mark.parametrize("iat", [2**63, 10**30, -2**63 - 1], ids=["2^63", "10^30", "-2^63-1"])
def test_an_unreachable_iat_is_refused(iat: int) -> None:
    with pytest.raises(CwtTimeInvalid) as refused:
        DefaultPolicy().check(parse_statement(_statement({6: iat})))
    assert problem_status(refused.value) == 403


def test_a_statement_issued_in_the_future_is_refused() -> None:
    """A signer's clock years ahead would lock its own identity (a later consent or namespace policy needs a later
    iat), and no statement was issued after the log's clock; within the skew it is a clock's drift."""
    now = int(time.time())
    with pytest.raises(IssuedInFuture) as refused:
        DefaultPolicy().check(parse_statement(_statement({6: now + 3600})))
    assert refused.value.code == "cwt-iat-in-future" and problem_status(refused.value) == 403
    DefaultPolicy().check(parse_statement(_statement({6: now + 60})))
    DefaultPolicy().check(parse_statement(_statement({6: now - 10 * 365 * 86400})))
    DefaultPolicy().check(parse_statement(_statement({6: float(now) + 0.5})))
