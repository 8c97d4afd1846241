"""The enrolment gates' refusals, a known-answer table: each gate's stable code, title and HTTP status as
docs/tpm.md publishes them, answered as problem details; and docs/tpm.md names every code of the table."""

from __future__ import annotations

import pytest

from tests.server import REPO
from transparency.problem_details import problem_document, problem_status
from transparency.tpm.errors import EnrolmentRefused, Gate

PUBLISHED = [
    (Gate.G1, "enrolment-ek-chain-untrusted", "G1: EK certificate not chained to a pinned root"),
    (Gate.G2, "enrolment-fingerprint-mismatch", "G2: machine fingerprint is not the EK's"),
    (Gate.G3, "enrolment-quote-invalid", "G3: quote does not carry this enrolment's fresh nonce"),
    (Gate.G4, "enrolment-credential-not-activated", "G4: AK not bound to the EK"),
    (Gate.G5, "enrolment-key-not-attested", "G5: agent key not attested as TPM-resident and non-exportable"),
    (Gate.G6, "enrolment-operator-approval-invalid", "G6: operator approval missing or invalid"),
]


@pytest.mark.parametrize(("gate", "code", "title"), PUBLISHED)
def test_each_gate_refuses_with_its_published_code_title_and_status(gate: Gate, code: str, title: str) -> None:
    refused = EnrolmentRefused(gate, "what failed inside the gate")
    assert (refused.gate, refused.code, refused.title) == (gate, code, title)
    assert problem_status(refused) == 403
    assert problem_document(refused, "/v1/enrol/submit") == {
        "type": f"urn:tabellion:error:{code}", "title": title, "status": 403,
        "detail": "what failed inside the gate", "instance": "/v1/enrol/submit"}
    assert str(refused) == f"{title}: what failed inside the gate"


def test_the_table_is_every_gate_and_docs_name_every_code() -> None:
    assert [g for g, _, _ in PUBLISHED] == list(Gate)
    doc = (REPO / "docs" / "tpm.md").read_text()
    for gate, code, _ in PUBLISHED:
        assert f"| {gate.name} |" in doc and f"`{code}`" in doc, code
