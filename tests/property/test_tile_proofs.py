"""Consistency proofs and roots computed from published tiles (``TileLogClient``, over a plain static server)
against the plain RFC 9162 reference, for logs of random sizes published after batches of random sizes; also
when the partial tiles were deleted (C2SP: read the full tile instead)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.leaf import leaf_hash
from tests.merkle_reference import consistency_proof, mth
from tests.static_server import static_server
from tests.unit.transparency.index_world import integrate
from transparency.client.tiles import TileLogClient
from transparency.keys import load_or_create_log_key
from transparency.log.sequencer import Sequencer
from transparency.publish import Publisher
from verifier.merkle import verify_consistency

ORIGIN = "tiles.example/log"


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    root = tmp_path_factory.mktemp("published")
    (root / "checkpoint").write_text("")  # the static server's readiness probe
    with static_server(root) as url:
        yield root, url


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.integers(1, 300), min_size=1, max_size=5), drop_partials=st.booleans(),
       seed=st.integers(0, 2**32))
def test_proofs_from_tiles_match_the_reference(
    published: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory, batches: list[int], drop_partials: bool,
    seed: int,
) -> None:
    root, url = published
    work = tmp_path_factory.mktemp("log")
    key = load_or_create_log_key(work / "log-key.pem")
    sequencer = Sequencer(work / "log.sqlite", key, ORIGIN)
    folder = root / work.name
    publisher = Publisher(folder, work / "log.sqlite", key.note_key(ORIGIN), b"keys")
    datas: list[bytes] = []
    sizes: list[int] = []  # the sizes published, each with its partial tiles
    try:
        for count in batches:
            batch = [hashlib.sha256(b"%d" % (len(datas) + i)).digest() for i in range(count)]
            integrate(sequencer, [(d, b"statement") for d in batch])
            datas += batch
            assert publisher.publish() == len(datas)
            sizes.append(len(datas))
    finally:
        publisher.stop()
        sequencer.stop()
    if drop_partials:
        for partial in folder.glob("tile/*/*.p/*"):
            if (partial.parent.parent / partial.parent.name[:-2]).exists():  # its full tile replaced it
                partial.unlink()
    leaves = [leaf_hash(d) for d in datas]
    rng = random.Random(seed)
    with TileLogClient(f"{url}/{work.name}") as client:
        client.checkpoint()
        assert client.size == len(leaves)
    for size in sizes:  # as a follower that read the checkpoint of each size published (and no tile yet)
        with TileLogClient(f"{url}/{work.name}") as client:
            client.size = size
            assert client.subtree_root(0, size) == mth(leaves[:size])
            for old in {1, size, *(rng.randint(1, size) for _ in range(4))}:
                proof = client.consistency(old, size)
                assert list(proof.path) == consistency_proof(old, leaves[:size])
                verify_consistency(old, size, mth(leaves[:old]), mth(leaves[:size]), proof.path)
