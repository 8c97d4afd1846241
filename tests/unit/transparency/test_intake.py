"""The intake checks registrations in its own thread, hands exactly those that passed to the sequencer (from that
thread, then says it handed them over) and refuses the others with exactly what the check raised."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.errors import Overloaded, PolicyRefused, SignatureInvalid
from schemas.statement import SignedStatement
from transparency.client import sign_statement
from transparency.intake import Intake, Registration
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


@dataclass
class _Sequencer:
    """Stands for the sequencer: settles each submitted future with the check's answer, on its loop; notes the
    threads it was called in and the hand-overs."""

    threads: set[str] = field(default_factory=set)
    submitted: list[bytes] = field(default_factory=list)
    handed_over: int = 0
    full_after: int | None = None  # refuse submissions beyond this many, as a full queue does

    def submit(self, checked: Checked, future: asyncio.Future[Checked]) -> None:
        self.threads.add(threading.current_thread().name)
        if self.full_after is not None and len(self.submitted) >= self.full_after:
            raise Overloaded("the queue is full", 1)
        self.submitted.append(checked.logged)
        future.get_loop().call_soon_threadsafe(future.set_result, checked)

    def hand_over(self) -> None:
        self.threads.add(threading.current_thread().name)
        self.handed_over += 1


def _intake(policies: list[_Threads], sequencer: _Sequencer) -> Intake[Checked]:
    return Intake(Registrar(DidKeyResolver(), AllPolicies(policies)).check, sequencer.submit, sequencer.hand_over)


async def _answers(intake: Intake[Checked], bodies: list[bytes]) -> list[Checked | BaseException]:
    return await asyncio.gather(*(intake.register(b).future for b in bodies), return_exceptions=True)


def test_checks_run_off_the_loop_and_answer_each_submitter() -> None:
    policy, sequencer = _Threads(), _Sequencer()
    intake = _intake([policy], sequencer)
    good = [_body(f"s{i}") for i in range(40)]
    forged = bytearray(_body("forged"))
    forged[-1] ^= 1  # the signature's last byte
    try:
        answers = asyncio.run(_answers(intake, [*good, _body("refused"), bytes(forged)]))
    finally:
        intake.close()
    assert policy.names == sequencer.threads == {"tabellion-intake"}
    assert sorted(sequencer.submitted) == sorted(good)  # the refused ones never reach the sequencer
    assert sequencer.handed_over >= 1
    assert [a.statement.subject for a in answers[:40] if isinstance(a, Checked)] == [f"s{i}" for i in range(40)]
    assert [a.logged for a in answers[:40] if isinstance(a, Checked)] == good
    assert isinstance(answers[40], PolicyRefused)
    assert isinstance(answers[41], SignatureInvalid)


def test_a_closed_intake_stops_its_thread() -> None:
    intake = _intake([], _Sequencer())
    intake.close()
    intake.close()  # twice is harmless
    assert not intake._thread.is_alive()


@pytest.mark.parametrize("count", [1, 200])
def test_answers_reach_every_waiter(count: int) -> None:
    intake = _intake([], _Sequencer())
    try:
        answers = asyncio.run(_answers(intake, [_body(f"n{i}") for i in range(count)]))
    finally:
        intake.close()
    assert len(answers) == count and all(isinstance(a, Checked) for a in answers)


def test_a_full_queue_refuses_what_it_cannot_take() -> None:
    sequencer = _Sequencer(full_after=3)
    intake = _intake([], sequencer)
    try:
        answers = asyncio.run(_answers(intake, [_body(f"n{i}") for i in range(8)]))
    finally:
        intake.close()
    assert sum(isinstance(a, Checked) for a in answers) == 3
    assert sum(isinstance(a, Overloaded) for a in answers) == 5


def test_waiting_for_the_check_ends_when_it_passed_or_was_refused() -> None:
    intake = _intake([_Threads()], _Sequencer())

    async def main() -> tuple[Registration[Checked], Registration[Checked]]:
        passed, refused = intake.register(_body("ok")), intake.register(_body("refused"))
        await asyncio.wait_for(passed.wait_checked(), 10)
        await asyncio.wait_for(refused.wait_checked(), 10)
        await asyncio.gather(passed.future, refused.future, return_exceptions=True)
        return passed, refused

    try:
        passed, refused = asyncio.run(main())
    finally:
        intake.close()
    assert passed.checked is not None and passed.checked.statement.subject == "ok"
    assert refused.checked is None and isinstance(refused.future.exception(), PolicyRefused)


def test_the_bodies_of_one_loop_iteration_are_handed_over_together() -> None:
    """Registered in one iteration of the loop: one put, so one group checked and one hand-over to the
    sequencer, not one per body."""
    sequencer = _Sequencer()
    intake = _intake([], sequencer)
    bodies = [_body(f"n{i}") for i in range(10)]
    try:
        answers = asyncio.run(_answers(intake, bodies))  # gather registers them all before the loop goes on
    finally:
        intake.close()
    assert all(isinstance(a, Checked) for a in answers)
    assert sequencer.submitted == bodies and sequencer.handed_over == 1
