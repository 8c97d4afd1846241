"""Witnessing: time from a new checkpoint to its quorum of cosignatures, and the cost of checking the quorum.

    .venv/bin/python -m tools.bench.witnessing quorum [--registrations 300] [--clients 1]
    .venv/bin/python -m tools.bench.witnessing verify [--rounds 10] [--per-round 2000]

``quorum``: three ``tabellion witness`` processes and a log (``tabellion serve --witness-policy``, 2 of 3), all
on 127.0.0.1, each its own process. Each client registers a statement (POST /entries, 201 with its receipt:
the log commits the entry and its checkpoint in one transaction before it answers), then long-polls
``GET /checkpoint/witnessed?after=<index>`` until the witnessed checkpoint covers the entry. Per registration it
records the registration's latency (request to receipt) and the time from the receipt to the witnessed
checkpoint that covers it, which is the time from the new checkpoint to its quorum (plus the receipt's trip
to the client, a fraction of a millisecond here). Side by side in the same run: the quorum delay / the
registration latency, medians. Every witnessed checkpoint seen is verified against the policy.

``verify``: offline, in-process. A checkpoint of a real log cosigned by three of our witnesses is verified
plainly (``verifier.checkpoints.verify_checkpoint`` with the log's key: one Ed25519 signature; the
cosignatures are ignored) and witness-checked (``verifier.policy.verify_witnessed_checkpoint`` with a 2-of-3
policy: the log's signature, the three cosignatures, the quorum), alternating in chunks within each round.
The headline is witness-checked time / plain time, per round and its median.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cli.witness import witness_identity
from schemas.checkpoint import parse_checkpoint
from schemas.media_types import COSE
from schemas.note import Note, NoteSignature, VerifierKey, parse_note, parse_vkey
from schemas.policy import Policy, parse_policy
from schemas.receipt import parse_receipt
from schemas.witness import AddCheckpoint
from tools.bench.processes import clean_env, free_port, start, stop
from transparency.client.signing import sign_statement
from transparency.keys import load_or_create_log_key
from verifier.checkpoints import verify_checkpoint
from verifier.policy import verify_witnessed_checkpoint
from witness.config import WitnessConfig
from witness.cosigner import Cosigner
from witness.service import Witness
from witness.store import WitnessStore

ORIGIN = "bench.localhost/log"


def _policy_text(log_vkey: VerifierKey, witnesses: Sequence[tuple[str, VerifierKey, str | None]], k: int) -> str:
    lines = [f"log {log_vkey.encode()}"]
    lines += [f"witness {name} {vkey.encode()}" + (f" {url}" if url else "") for name, vkey, url in witnesses]
    return "\n".join([*lines, f"group q {k} {' '.join(n for n, _, _ in witnesses)}", "quorum q"]) + "\n"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# --- quorum -------------------------------------------------------------------------------------------------


def quorum(registrations: int, clients: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-witness-") as tmp:
        root = Path(tmp)
        log_vkey = load_or_create_log_key(root / "log" / "log-key.pem").note_key(ORIGIN)
        processes = []
        try:
            entries = []
            for i in range(3):
                folder = root / f"w{i}"
                folder.mkdir()
                port = free_port()
                config = folder / "witness.toml"
                config.write_text(f'name = "w{i}.bench.localhost"\nport = {port}\n'
                                  f'[[logs]]\nvkey = "{log_vkey.encode()}"\n')
                processes.append(start([sys.executable, "-m", "cli.main", "witness", "--config", str(config)],
                                       folder / "witness.log", f"http://127.0.0.1:{port}/"))
                entries.append((f"w{i}", parse_vkey(witness_identity(config)[0]), f"http://127.0.0.1:{port}"))
            policy_path = root / "log.policy"
            policy_path.write_text(_policy_text(log_vkey, entries, 2))
            policy = parse_policy(policy_path.read_bytes())
            port = free_port()
            processes.append(start([sys.executable, "-m", "cli.main", "serve", "--data", str(root / "log"), "--port",
                                    str(port), "--origin", ORIGIN, "--witness-policy", str(policy_path)],
                                   root / "log.log", f"http://127.0.0.1:{port}/checkpoint", env=clean_env()))
            results = asyncio.run(_measure(f"http://127.0.0.1:{port}", policy, registrations, clients))
        finally:
            for process in processes:
                stop(process)
    register = [r for r, _ in results]
    witnessed = [w for _, w in results]
    print(json.dumps({
        "registrations": len(results), "clients": clients, "witnesses": 3, "quorum": "2 of 3",
        "registration_ms": _summary(register), "receipt_to_quorum_ms": _summary(witnessed),
        "ratio_quorum_to_registration_p50": round(statistics.median(witnessed) / statistics.median(register), 2),
    }, indent=1))


def _summary(values: list[float]) -> dict[str, float]:
    return {"p50": round(statistics.median(values) * 1000, 2), "p99": round(percentile(values, 99) * 1000, 2),
            "mean": round(statistics.fmean(values) * 1000, 2)}


async def _measure(url: str, policy: Policy, registrations: int, clients: int) -> list[tuple[float, float]]:
    key = Ed25519PrivateKey.generate()
    statements = [sign_statement(key, f"bench {i}".encode(), subject="bench", content_type="text/plain")
                  for i in range(registrations)]
    results: list[tuple[float, float]] = []
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for statement in statements:
        queue.put_nowait(statement)
    limits = httpx.Limits(max_connections=2 * clients + 2)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        for statement in statements[:3]:  # warm up: the first rounds learn each witness's size (409, then 200)
            queue.get_nowait()
            await _one(http, policy, statement)

        async def client() -> None:
            while not queue.empty():
                results.append(await _one(http, policy, queue.get_nowait()))

        await asyncio.gather(*(client() for _ in range(clients)))
    return results


async def _one(http: httpx.AsyncClient, policy: Policy, statement: bytes) -> tuple[float, float]:
    started = time.perf_counter()
    answer = await http.post("/entries", content=statement, headers={"Content-Type": COSE})
    if answer.status_code != 201:
        raise SystemExit(f"registration answered {answer.status_code}: {answer.text[:200]}")
    received = time.perf_counter()
    index = parse_receipt(answer.content).inclusion[0].leaf_index
    while True:
        polled = await http.get("/checkpoint/witnessed", params={"after": index, "wait": 10})
        if polled.status_code == 200:
            text = polled.text
            if parse_checkpoint(parse_note(text).text).size > index:
                covered = time.perf_counter()
                verify_witnessed_checkpoint(text, policy)  # outside the timing
                return received - started, covered - received


# --- verify ---------------------------------------------------------------------------------------------------


def verify(rounds: int, per_round: int, chunk: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        text, log_key, policy = _cosigned_checkpoint(Path(tmp))
    plain: Callable[[], object] = lambda: verify_checkpoint(text, log_key)  # noqa: E731
    witnessed: Callable[[], object] = lambda: verify_witnessed_checkpoint(text, policy, log_key)  # noqa: E731
    for _ in range(200):
        plain(), witnessed()
    ratios, plain_us, witnessed_us = [], [], []
    for r in range(rounds):
        times = {"plain": 0.0, "witnessed": 0.0}
        order = [("plain", plain), ("witnessed", witnessed)]
        if r % 2:
            order.reverse()
        for _ in range(per_round // chunk):
            for name, call in order:
                started = time.perf_counter()
                for _ in range(chunk):
                    call()
                times[name] += time.perf_counter() - started
        plain_us.append(times["plain"] / per_round * 1e6)
        witnessed_us.append(times["witnessed"] / per_round * 1e6)
        ratios.append(times["witnessed"] / times["plain"])
    print(json.dumps({
        "checkpoint": "a real log's checkpoint, the log's signature and 3 witness cosignatures (Ed25519)",
        "policy": "2 of 3 witnesses", "rounds": rounds, "per_round": per_round,
        "plain_us_per_call_median": round(statistics.median(plain_us), 1),
        "witness_checked_us_per_call_median": round(statistics.median(witnessed_us), 1),
        "ratio_per_round": [round(x, 2) for x in ratios], "ratio_median": round(statistics.median(ratios), 2),
    }, indent=1))


def _cosigned_checkpoint(folder: Path) -> tuple[str, VerifierKey, Policy]:
    from transparency.client.signing import generate_key
    from transparency.service import TransparencyService
    from transparency.settings import Settings

    service = TransparencyService(Settings(data_dir=folder / "log", origin=ORIGIN, batch_max_wait_ms=1.0))
    try:
        key = generate_key()
        for i in range(5):
            asyncio.run(service.register(sign_statement(key, f"{i}".encode(), subject="b", content_type="text/plain")))
        note_text = service.checkpoint()
        log_key = service.key.note_key(ORIGIN)
    finally:
        service.close()
    note = parse_note(note_text)
    lines: list[NoteSignature] = []
    entries: list[tuple[str, VerifierKey, str | None]] = []
    for i in range(3):
        cosigner = Cosigner(f"w{i}.bench.localhost", Ed25519PrivateKey.generate())
        config = WitnessConfig(cosigner.name, folder / "k.pem", folder / f"w{i}", {ORIGIN: (log_key,)})
        lines += Witness(config, cosigner, WitnessStore(config.db_path)).add_checkpoint(
            AddCheckpoint(0, (), note_text).encode())
        entries.append((f"w{i}", cosigner.vkey, None))
    policy = parse_policy(_policy_text(log_key, entries, 2))
    return Note(note.text, (*note.signatures, *lines)).encode(), log_key, policy


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    q = sub.add_parser("quorum")
    q.add_argument("--registrations", type=int, default=300)
    q.add_argument("--clients", type=int, default=1)
    v = sub.add_parser("verify")
    v.add_argument("--rounds", type=int, default=10)
    v.add_argument("--per-round", type=int, default=2000)
    v.add_argument("--chunk", type=int, default=100)
    a = parser.parse_args(argv)
    if a.what == "quorum":
        quorum(a.registrations, a.clients)
    else:
        verify(a.rounds, a.per_round, a.chunk)


if __name__ == "__main__":
    main()
