"""The issuer's client (the CLI's) reads an issuer's answers within a bound, like the log's clients: an endless
answer is refused (``answer-too-large``) against a real hostile server on 127.0.0.1."""

from __future__ import annotations

import pytest

from issuer.client import IssuerClient
from schemas.errors import AnswerTooLarge
from tests.hostile_server import hostile_server


def test_an_endless_issuer_answer_is_refused_at_the_bound() -> None:
    with hostile_server() as url, IssuerClient(f"{url}/endless", max_answer_bytes=1024 * 1024) as issuer, \
            pytest.raises(AnswerTooLarge):
        issuer.claim("0" * 64)
