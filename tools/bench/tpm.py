"""TPM 2.0 enrolment and signing figures (docs/benchmarks.md), measured side by side in one run.

    .venv/bin/python -m tools.bench.tpm [--enrolments 5] [--signatures 200]

Starts a real swtpm (manufactured with EK certificates from a fresh local CA, as the tests do) and a real log on
127.0.0.1, pins the CA's root, registers an operator with a passkey approver, then:

1. enrolment end to end, per agent: ``prepare`` (create the agent key and AK in the TPM, ``POST /v1/enrol/start``,
   quote, certify, activate the credential), the operator's assertion, ``POST /v1/enrol/submit`` (six gates, the
   statement logged, receipt back); median, min and max over ``--enrolments`` agents;
2. ES256 signatures of a statement-sized message: in the TPM (TPM2_Sign over the swtpm TCTI, the key loaded once)
   against ``cryptography``'s P-256 and Ed25519 in process, interleaved in rounds; the ratio TPM / software.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.server import running_server
from tests.swtpm import LocalCa, SoftwareTpm, manufacture
from tests.tpm_world import NAMESPACE, ek_chain, operator_with_approver, pin_root
from transparency.client.enrolment import agent_signer, prepare, submit
from transparency.client.tpm import Tpm


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enrolments", type=int, default=5)
    parser.add_argument("--signatures", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        ca = LocalCa.create(base / "ca")
        started = time.perf_counter()
        manufacture(ca, base / "state")
        print(f"swtpm manufactured (EK certificates from a new local CA) in {_ms(time.perf_counter() - started)}")
        tpm = SoftwareTpm.start(base / "state")
        try:
            with running_server(base / "log") as url, httpx.Client(base_url=url, timeout=60) as http:
                pin_root(http, url.data_dir, ca.root_pem)
                op = operator_with_approver(http)
                times, agent_dir = [], base / "agent-0"
                for i in range(args.enrolments):
                    agent_dir = base / f"agent-{i}"
                    t0 = time.perf_counter()
                    prepared = prepare(url, tpm.tcti, agent_dir, operator=op.signer.identity, namespace=NAMESPACE,
                                       ek_chain=ek_chain(ca))
                    submit(url, agent_dir, op.passkey.get(prepared.challenge).to_json())
                    times.append(time.perf_counter() - t0)
                print(f"enrolment end to end over HTTP, {len(times)} agents: median {_ms(statistics.median(times))}, "
                      f"min {_ms(min(times))}, max {_ms(max(times))}")
                _signatures(tpm.tcti, agent_dir, args.signatures)
        finally:
            tpm.stop()


def _signatures(tcti: str, agent_dir: Path, n: int) -> None:
    message = os.urandom(600)  # about the size of a statement's Sig_structure
    p256, ed25519 = ec.generate_private_key(ec.SECP256R1()), Ed25519PrivateKey.generate()
    spent = {"tpm": 0.0, "p256": 0.0, "ed25519": 0.0}
    with Tpm(tcti) as tpm:
        signer = agent_signer(tpm, agent_dir)
        for _ in range(n):  # interleaved, so that the machine's noise falls on all three alike
            t0 = time.perf_counter()
            signer.sign(message)
            t1 = time.perf_counter()
            p256.sign(message, ec.ECDSA(hashes.SHA256()))
            t2 = time.perf_counter()
            ed25519.sign(message)
            t3 = time.perf_counter()
            spent["tpm"] += t1 - t0
            spent["p256"] += t2 - t1
            spent["ed25519"] += t3 - t2
    per = {name: total / n for name, total in spent.items()}
    print(f"signatures, {n} each, interleaved: TPM ES256 {per['tpm'] * 1e6:.0f} µs, software ES256 "
          f"{per['p256'] * 1e6:.0f} µs, software Ed25519 {per['ed25519'] * 1e6:.0f} µs")
    print(f"ratio TPM / software ES256: {per['tpm'] / per['p256']:.1f}x; TPM / Ed25519: "
          f"{per['tpm'] / per['ed25519']:.1f}x")


if __name__ == "__main__":
    main()
