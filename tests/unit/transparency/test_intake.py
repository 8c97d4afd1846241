"""The intake checks registrations in its own thread and answers each submitter with exactly what the check
returned or raised."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.errors import PolicyRefused, SignatureInvalid
from schemas.statement import SignedStatement
from transparency.client import sign_statement
from transparency.intake import Intake
from transparency.registration import AllPolicies, Checked, Registrar
from verifier.statements import DidKeyResolver


@dataclass
class _Threads:
    """A policy that notes the thread it runs in and refuses one subject."""

    names: set[str] = field(default_factory=set)

    def check(self, statement: SignedStatement) -> None:
        self.names.add(threading.current_thread().name)
        if statement.subject == "refused":
            raise PolicyRefused("refused by the test's policy")


def _body(subject: str) -> bytes:
    return sign_statement(Ed25519PrivateKey.generate(), b"{}", subject=subject, content_type="application/json")


def test_checks_run_off_the_loop_and_answer_each_submitter() -> None:
    policy = _Threads()
    intake = Intake(Registrar(DidKeyResolver(), AllPolicies([policy])).check)
    good = [_body(f"s{i}") for i in range(40)]
    forged = bytearray(_body("forged"))
    forged[-1] ^= 1  # the signature's last byte

    async def main() -> list[Checked | BaseException]:
        return await asyncio.gather(*(intake.check(b) for b in [*good, _body("refused"), bytes(forged)]),
                                    return_exceptions=True)

    try:
        answers = asyncio.run(main())
    finally:
        intake.close()
    assert policy.names == {"tabellion-intake"}
    assert [a.statement.subject for a in answers[:40] if isinstance(a, Checked)] == [f"s{i}" for i in range(40)]
    assert [a.logged for a in answers[:40] if isinstance(a, Checked)] == good
    assert isinstance(answers[40], PolicyRefused)
    assert isinstance(answers[41], SignatureInvalid)


def test_a_closed_intake_stops_its_thread() -> None:
    intake = Intake(Registrar(DidKeyResolver(), AllPolicies([])).check)
    intake.close()
    intake.close()  # twice is harmless
    assert not intake._thread.is_alive()


@pytest.mark.parametrize("count", [1, 200])
def test_answers_reach_every_waiter(count: int) -> None:
    intake = Intake(Registrar(DidKeyResolver(), AllPolicies([])).check)

    async def main() -> int:
        return len(await asyncio.gather(*(intake.check(_body(f"n{i}")) for i in range(count))))

    try:
        assert asyncio.run(main()) == count
    finally:
        intake.close()
