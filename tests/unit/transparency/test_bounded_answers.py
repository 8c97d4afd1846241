"""A malicious log, witness or peer cannot exhaust a client's memory: an endless body, a length announced larger
than the bound, or a compressed bomb is refused (``answer-too-large``, ``answer-encoding-refused``) once the bound is
passed, against a real hostile server on 127.0.0.1."""

from __future__ import annotations

import resource
import time

import pytest

from schemas.errors import AnswerEncodingRefused, AnswerTooLarge, LogUnreachable
from schemas.note import ed25519_vkey
from tests.hostile_server import hostile_server
from transparency.client import HttpLogClient
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

