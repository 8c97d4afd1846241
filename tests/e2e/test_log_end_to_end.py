"""The log end to end over real HTTP: concurrent registrations, offline verification with only the key set,
followers reading entries in order, C2SP tiles recomputing the signed root, restarts without rebuild; on both
storage backends."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import cbor2
import httpx
import pytest

from schemas.cose_sign1 import decode_sign1
from schemas.leaf import entry_id, leaf_data, leaf_hash
from schemas.note import parse_vkey
from schemas.receipt import parse_receipt
from schemas.tiles import entries_path, tile_path
from tests.merkle_reference import mth
from tests.server import commits_held, running_server, start_server
from transparency.client import generate_key, sign_hash_envelope, sign_statement
from verifier.checkpoints import verify_checkpoint
from verifier.keys import parse_key_set, thumbprint
from verifier.receipts import verify_receipt, verify_transparent_statement
from verifier.statements import DidKeyResolver

COSE = {"Content-Type": "application/cose"}
COUNT = 300


async def _submit_all(url: str, statements: list[bytes], concurrency: int = 16) -> list[httpx.Response]:
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=30.0) as client:

        async def one(body: bytes) -> httpx.Response:
            async with sem:
                return await client.post(f"{url}/entries", content=body, headers=COSE)

        return list(await asyncio.gather(*(one(s) for s in statements)))


def test_concurrent_registrations_verify_offline_and_survive_restart(tmp_path: Path, log_database: str | None) -> None:
    ed, p256 = generate_key("ed25519"), generate_key("p256")
    statements = [
        sign_statement(ed if i % 3 else p256, b'{"n":%d}' % i, subject=f"urn:example:{i}",
                       content_type="application/json")
        for i in range(COUNT - 1)
    ]
    statements.append(sign_hash_envelope(ed, b"a large artefact", subject="urn:example:artefact",
                                         preimage_content_type="application/octet-stream"))
    with running_server(tmp_path, database=log_database) as url:
        responses = asyncio.run(_submit_all(url, statements))
        key_set_bytes = httpx.get(f"{url}/.well-known/scitt-keys").content
        checkpoint_text = httpx.get(f"{url}/checkpoint").text
        vkey = parse_vkey(httpx.get(f"{url}/log/vkey").text)

        # Offline from here on: only the key set, the note key and what the log answered.
        keys = parse_key_set(key_set_bytes)
        indices = set()
        for statement, r in zip(statements, responses, strict=True):
            assert r.status_code == 201, r.content
            assert r.headers["content-type"] == "application/cose"
            assert r.headers["location"] == f"/entries/{entry_id(leaf_data(decode_sign1(statement)))}"
            verified = verify_receipt(r.content, statement, keys)
            assert verified.issuer == "tabellion.localhost/log"
            indices.add(verified.leaf_index)
        assert indices == set(range(COUNT))
        assert len(keys) == 1 and parse_receipt(responses[0].content).kid == thumbprint(keys.get(next(iter(keys))))

        checkpoint = verify_checkpoint(checkpoint_text, vkey, origin="tabellion.localhost/log")
        assert checkpoint.size == COUNT

        # GET /entries/{id}/statement is the transparent statement, verifiable on its own.
        location = responses[7].headers["location"]
        transparent = httpx.get(f"{url}{location}/statement").content
        [receipt] = verify_transparent_statement(transparent, keys, DidKeyResolver())
        assert receipt.leaf_index == verify_receipt(responses[7].content, statements[7], keys).leaf_index

        # A follower reads every entry in order with its receipt.
        follower: list[bytes] = []
        while len(follower) < COUNT:
            page = httpx.get(f"{url}/entries", params={"start": len(follower), "limit": 64})
            for index, logged, entry_receipt in cbor2.loads(page.content):
                assert index == len(follower)
                assert verify_receipt(entry_receipt, logged, keys).leaf_index == index
                follower.append(leaf_data(decode_sign1(logged)))

        # C2SP tiles: the level-0 tiles and entry bundles recompute the signed root.
        full = httpx.get(f"{url}/{tile_path(0, 0)}").content
        partial = httpx.get(f"{url}/{tile_path(0, 1, COUNT - 256)}").content
        hashes = [full[i:i + 32] for i in range(0, len(full), 32)] + [
            partial[i:i + 32] for i in range(0, len(partial), 32)
        ]
        assert hashes == [leaf_hash(d) for d in follower]
        assert mth(hashes) == checkpoint.root_hash
        bundle = httpx.get(f"{url}/{entries_path(0)}").content
        assert bundle[:2] == b"\x00\x20" and bundle[2:34] == follower[0]
        assert httpx.get(f"{url}/{tile_path(0, 1)}").status_code == 404  # not full yet
        assert httpx.get(f"{url}/{tile_path(1, 0, 1)}").content == mth(hashes[:256])

        # Keys by kid.
        kid = parse_receipt(responses[0].content).kid
        kid_text = base64.urlsafe_b64encode(kid).decode().rstrip("=")
        assert httpx.get(f"{url}/.well-known/scitt-keys/{kid_text}").status_code == 200
        data_dir = url.data_dir

    # Restart: same state, no rebuild, and the log keeps growing consistently.
    restarted = start_server(tmp_path, data_dir=data_dir, database=log_database)
    try:
        assert httpx.get(f"{restarted}/checkpoint").text == checkpoint_text
        extra = sign_statement(ed, b'{"after":"restart"}', subject="urn:example:after", content_type="application/json")
        r = httpx.post(f"{restarted}/entries", content=extra, headers=COSE)
        assert r.status_code == 201
        assert verify_receipt(r.content, extra, keys).leaf_index == COUNT
        assert httpx.get(f"{restarted}{responses[0].headers['location']}").content == responses[0].content
    finally:
        restarted.terminate()


def test_slow_registration_answers_202_then_the_receipt(tmp_path: Path, log_database: str | None) -> None:
    key = generate_key()
    statement = sign_statement(key, b"{}", subject="urn:example:slow", content_type="application/json")
    with running_server(tmp_path, registration_timeout_s=0.2, database=log_database) as url:
        with commits_held(url):
            r = httpx.post(f"{url}/entries", content=statement, headers=COSE)
            assert r.status_code == 202
            assert r.headers["retry-after"] == "1"
            location = r.headers["location"]
            pending = httpx.get(f"{url}{location}")
            assert pending.status_code == 204
            assert pending.headers["retry-after"] == "1"
        for _ in range(200):
            done = httpx.get(f"{url}{location}")
            if done.status_code == 200:
                break
            assert done.status_code == 204
            asyncio.run(asyncio.sleep(0.05))
        else:
            pytest.fail("the registration never completed")
        keys = parse_key_set(httpx.get(f"{url}/.well-known/scitt-keys").content)
        assert verify_receipt(done.content, statement, keys).leaf_index == 0
