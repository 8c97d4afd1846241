"""A monitor's peer is anyone's URL: an endless, oversized or compressed answer is refused at the bound
(``answer-too-large``, ``answer-encoding-refused``) without the monitor holding it, against a real hostile server."""

from __future__ import annotations

import time

import pytest

from monitor.monitor import MAX_PEER_BYTES, _read_peer
from schemas.errors import AnswerEncodingRefused, AnswerTooLarge
from tests.hostile_server import hostile_server


@pytest.mark.parametrize(("kind", "error"), [("endless", AnswerTooLarge), ("declared", AnswerTooLarge),
                                             ("bomb", AnswerEncodingRefused)])
def test_a_hostile_peer_is_refused_at_the_bound(kind: str, error: type[Exception]) -> None:
    with hostile_server() as url:
        started = time.monotonic()
        with pytest.raises(error) as refused:
            _read_peer(f"{url}/{kind}/checkpoint", 5.0)
        assert time.monotonic() - started < 5
        assert str(MAX_PEER_BYTES) in str(refused.value) or kind == "bomb"
