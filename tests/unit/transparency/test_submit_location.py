"""``HttpLogClient.submit`` takes from the log's answer only the entry the statement makes: a malicious log that
names another entry (a receipt for another statement) or sends the client's polling to another origin (an internal
address) is refused (``log-request-refused``, 502) before anything else is read — against a real server."""

from __future__ import annotations

import pytest

from schemas.cose_sign1 import decode_sign1
from schemas.errors import LogRequestRefused
from schemas.leaf import entry_id, leaf_data
from tests.hostile_server import Answer, hostile_server
from transparency.client import HttpLogClient
from transparency.client.signing import generate_key, sign_statement

STATEMENT = sign_statement(generate_key(), b"{}", subject="s", content_type="application/json")
OWN = entry_id(leaf_data(decode_sign1(STATEMENT)))
OTHER = "ab" * 32


@pytest.mark.parametrize(("status", "location"), [
    (201, f"/entries/{OTHER}"),
    (202, f"/entries/{OTHER}"),
    (202, f"http://169.254.169.254/entries/{OWN}"),
    (201, f"https://elsewhere.example/entries/{OWN}"),
], ids=["201 another entry", "202 another entry", "202 another origin", "201 another origin"])
def test_another_entry_or_origin_is_refused(status: int, location: str) -> None:
    answers: dict[str, Answer] = {"/log/entries": (status, b"", {"Location": location, "Retry-After": "0"})}
    with hostile_server(answers) as url, HttpLogClient(f"{url}/log", wait=1) as log, \
            pytest.raises(LogRequestRefused) as refused:
        log.submit(STATEMENT)
    assert refused.value.answer_status == 502


def test_the_statements_own_entry_is_taken() -> None:
    answers: dict[str, Answer] = {"/log/entries": (201, b"receipt", {"Location": f"/entries/{OWN}"})}
    with hostile_server(answers) as url, HttpLogClient(f"{url}/log") as log:
        done = log.submit(STATEMENT)
    assert done.entry_id == OWN and done.receipt == b"receipt"
