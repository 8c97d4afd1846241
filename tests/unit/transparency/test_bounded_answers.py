"""A malicious log, witness or peer cannot exhaust a client's memory: an endless body, a length announced larger
than the bound, or a compressed bomb is refused (``answer-too-large``, ``answer-encoding-refused``) once the bound is
passed, against a real hostile server on 127.0.0.1."""

from __future__ import annotations

import resource
import time
from pathlib import Path

import httpx
import pytest

from schemas.errors import AnswerEncodingRefused, AnswerTooLarge, LogUnreachable
from schemas.note import ed25519_vkey
from tests.hostile_server import hostile_server
from tests.server import running_server
from transparency.client import HttpLogClient
from transparency.client.signing import generate_key, sign_statement
from transparency.client.tiles import TileLogClient
from transparency.client.witness import WitnessClient

LIMIT = 1024 * 1024
VKEY = ed25519_vkey("witness.example/w1", bytes(32))


def test_an_endless_checkpoint_is_refused_at_the_bound() -> None:
    with hostile_server() as url:
        for kind in ("endless", "declared"):
            with HttpLogClient(f"{url}/{kind}", max_answer_bytes=LIMIT) as log:
                started = time.monotonic()
                with pytest.raises(AnswerTooLarge) as refused:
                    log.checkpoint()
                assert refused.value.code == "answer-too-large"
                assert isinstance(refused.value, LogUnreachable)  # callers that retry an unreachable log retry
                assert time.monotonic() - started < 10


def test_the_default_bound_holds_without_exhausting_memory() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with hostile_server() as url, HttpLogClient(f"{url}/endless") as log, pytest.raises(AnswerTooLarge):
        log.entries(0, 100)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 512 * 1024  # the 64 MiB bound, read chunk by chunk, is far below half a GiB


def test_a_compressed_answer_is_refused_not_inflated() -> None:
    with hostile_server() as url, HttpLogClient(f"{url}/bomb") as log:
        with pytest.raises(AnswerEncodingRefused) as refused:
            log.checkpoint()
        assert refused.value.code == "answer-encoding-refused"


def test_witness_and_tile_clients_are_bounded_too() -> None:
    with hostile_server() as url:
        with WitnessClient(f"{url}/endless", VKEY, max_answer_bytes=LIMIT) as witness, \
                pytest.raises(AnswerTooLarge):
            witness.checkpoint("example.com/log")
        with TileLogClient(f"{url}/endless", max_answer_bytes=LIMIT) as tiles, pytest.raises(AnswerTooLarge):
            tiles.checkpoint()



def test_a_page_of_large_statements_is_read_in_smaller_pages(tmp_path: Path) -> None:
    """Anyone may log statements up to the log's bound; a page of them past the client's bound is asked for again at
    half the limit, so a legitimate log is still followed (a stranger's large statements cannot stop followers)."""
    key = generate_key()
    with running_server(tmp_path) as url, httpx.Client(base_url=url, timeout=30) as http:
        for n in range(4):
            statement = sign_statement(key, bytes([n]) * 40_000, subject="s", content_type="application/octet-stream")
            assert http.post("/entries", content=statement, headers={"content-type": "application/cose"}).is_success
        deadline = time.monotonic() + 30
        while int(http.get("/checkpoint").text.split("\n")[1]) < 4:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        with HttpLogClient(url, max_answer_bytes=60_000) as log:
            got: list[int] = []
            while len(got) < 4:
                page = log.entries(len(got), 100)
                assert 1 <= len(page) <= 1  # one 40 kB entry fits the 60 kB bound, two do not
                got += [e.leaf_index for e in page]
        assert got == [0, 1, 2, 3]
        with HttpLogClient(url, max_answer_bytes=30_000) as log, pytest.raises(AnswerTooLarge):
            log.entries(0, 100)  # not even one entry fits
