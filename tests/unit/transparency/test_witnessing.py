"""The log's cosignature gatherer against witnesses that misbehave, over real HTTP on 127.0.0.1: an honest
witness (the real ``witness.service.Witness`` behind a plain HTTP server), one that answers with a cosignature
by another key, one that claims a larger tree than the log has, and one that answers garbage. Only the honest
one's cosignature is served; the quorum counts only it; the others are logged, never trusted."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.errors import CheckpointNotWitnessed, TabellionError
from schemas.note import parse_note
from schemas.policy import parse_policy
from schemas.witness import TLOG_SIZE, encode_cosignatures, parse_add_checkpoint
from tests.http_stub import QuietHandler, serving
from tests.witnessing import policy_text
from transparency.client import generate_key, sign_statement
from transparency.keys import load_or_create_log_key
from transparency.problem_details import problem_status
from transparency.service import TransparencyService
from transparency.settings import Settings
from verifier.policy import verify_witnessed_checkpoint
from witness.config import WitnessConfig
from witness.cosigner import Cosigner
from witness.service import Witness
from witness.store import WitnessStore

ORIGIN = "gather.test/log"
Answer = tuple[int, str, bytes]


@contextmanager
def http_witness(answer: Callable[[bytes], Answer]) -> Iterator[str]:
    class Handler(QuietHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server hook
            status, ctype, body = answer(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with serving(Handler) as base:
        yield base


def honest(witness: Witness) -> Callable[[bytes], Answer]:
    def answer(body: bytes) -> Answer:
        try:
            return 200, "text/plain", encode_cosignatures(witness.add_checkpoint(body)).encode()
        except TabellionError as exc:
            size = getattr(exc, "known_size", None)
            if size is not None:
                return 409, TLOG_SIZE, f"{size}\n".encode()
            return problem_status(exc), "application/problem+json", b"{}"
    return answer


def wrong_key(cosigner: Cosigner, impostor: Cosigner) -> Callable[[bytes], Answer]:
    """Cosigns with another key under the name and key id the policy knows."""
    def answer(body: bytes) -> Answer:
        text = parse_note(parse_add_checkpoint(body).checkpoint).text
        line = impostor.cosign(text, 1_700_000_000)
        forged = line.__class__(cosigner.vkey.name, cosigner.vkey.key_id, line.signature)
        return 200, "text/plain", encode_cosignatures((forged,)).encode()
    return answer


def larger(body: bytes) -> Answer:
    return 409, TLOG_SIZE, b"999999\n"


def garbage(body: bytes) -> Answer:
    return 200, "text/plain", b"not a signature line\n"


@pytest.fixture
def cosigners() -> list[Cosigner]:
    return [Cosigner(f"w{i}.gather.test", Ed25519PrivateKey.generate()) for i in range(4)]


def _real_witness(tmp_path: Path, cosigner: Cosigner) -> Witness:
    """The witness code itself, trusting the log's key (created here, before the log starts)."""
    log_key = load_or_create_log_key(tmp_path / "log" / "log-key.pem").note_key(ORIGIN)
    config = WitnessConfig(cosigner.name, tmp_path / "k.pem", tmp_path / "w0", {ORIGIN: (log_key,)})
    return Witness(config, cosigner, WitnessStore(config.db_path))


def _service(tmp_path: Path, cosigners: list[Cosigner], urls: list[str], quorum: int) -> TransparencyService:
    log_key = load_or_create_log_key(tmp_path / "log" / "log-key.pem").note_key(ORIGIN)
    policy = tmp_path / "log.policy"
    policy.write_text(policy_text(log_key, [(f"w{i}", c.vkey, u) for i, (c, u) in enumerate(zip(cosigners, urls,
                                                                                            strict=True))], quorum))
    return TransparencyService(Settings(data_dir=tmp_path / "log", origin=ORIGIN, batch_max_wait_ms=1.0,
                                        witness_policy=policy, witness_timeout_s=2.0, witness_max_backoff_s=0.5))


def _register(service: TransparencyService, n: int) -> None:
    key = generate_key()
    for i in range(n):
        asyncio.run(service.register(sign_statement(key, f"{i}".encode(), subject="g", content_type="text/plain")))


def _wait(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_only_the_honest_witness_counts(tmp_path: Path, cosigners: list[Cosigner],
                                        caplog: pytest.LogCaptureFixture) -> None:
    real = _real_witness(tmp_path, cosigners[0])
    impostor = Cosigner("impostor.test", Ed25519PrivateKey.generate())
    with http_witness(honest(real)) as w0, http_witness(wrong_key(cosigners[1], impostor)) as w1, \
            http_witness(larger) as w2, http_witness(garbage) as w3:
        service = _service(tmp_path, cosigners, [w0, w1, w2, w3], 1)
        try:
            with caplog.at_level(logging.WARNING, logger="transparency.witnessing"):
                _register(service, 3)
                _wait(lambda: _witnessed_size(service) == 3)
                time.sleep(0.3)  # the other three answer too
            policy = parse_policy((tmp_path / "log.policy").read_bytes())
            witnessed = verify_witnessed_checkpoint(service.witnessed_checkpoint(), policy)
            assert set(witnessed.cosigners) == {"w0"}
            latest = parse_note(service.checkpoint())
            assert [s.name for s in latest.signatures] == [ORIGIN, cosigners[0].name]
            messages = " ".join(r.getMessage() for r in caplog.records)
            assert "w1 did not cosign: its cosignature does not verify" in messages
            assert "w2 did not cosign: it has cosigned a tree of 999999 leaves" in messages
            assert "w3 did not cosign" in messages
        finally:
            service.close()
            real.store.close()


def test_no_quorum_no_witnessed_checkpoint(tmp_path: Path, cosigners: list[Cosigner]) -> None:
    real = _real_witness(tmp_path, cosigners[0])
    with http_witness(honest(real)) as w0, http_witness(larger) as w1, \
            http_witness(garbage) as w2, http_witness(garbage) as w3:
        service = _service(tmp_path, cosigners, [w0, w1, w2, w3], 2)
        try:
            _register(service, 2)
            _wait(lambda: len(parse_note(service.checkpoint()).signatures) == 2)  # w0 cosigned the latest
            with pytest.raises(CheckpointNotWitnessed):
                service.witnessed_checkpoint()
        finally:
            service.close()
            real.store.close()


def _witnessed_size(service: TransparencyService) -> int:
    try:
        text = service.witnessed_checkpoint()
    except CheckpointNotWitnessed:
        return -1
    return int(parse_note(text).text.split("\n")[1])
