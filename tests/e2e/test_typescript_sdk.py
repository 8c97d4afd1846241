"""The TypeScript SDK (sdk/typescript/) against a real gateway: this test starts the transparency service, the
gateway and a recording upstream, registers the agent, builds the SDK with its pinned TypeScript compiler
(installed by scripts/setup.sh with ``npm ci``) and runs ``node --test`` on it with a fixture naming the gateway
and the agent's key and identity. The node tests make an allowed call, a replay (refused) and an out-of-scope
call (refused), and a call signed by a stranger's key (refused)."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from issuer.statements import multikey_of
from tests.e2e.gateway_deployment import Recorder, gateway_deployment
from tests.server import REPO

SDK = REPO / "sdk" / "typescript"


def build() -> None:
    tsc = SDK / "node_modules" / ".bin" / "tsc"
    assert tsc.exists(), "the TypeScript compiler is not installed: run bash scripts/setup.sh (npm ci)"
    done = subprocess.run([str(tsc), "-p", "tsconfig.json"], cwd=SDK, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_typescript_sdk_against_the_gateway(tmp_path: Path) -> None:
    build()
    with gateway_deployment(tmp_path) as deployment:
        world, gateway = deployment.world, deployment.gateway
        fixture = tmp_path / "fixture.json"
        pkcs8 = world.c.ed25519.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
        fixture.write_text(json.dumps({
            "gateway": gateway.url, "pkcs8": base64.b64encode(pkcs8).decode(),
            "keyid": f"{world.c.identity}#{multikey_of(world.c.key)}", "namespace": "acme",
            "subject": world.c.identity, "passport": world.passports[world.c.identity],
        }))
        env = {**os.environ, "TABELLION_SDK_FIXTURE": str(fixture)}
        done = subprocess.run(["node", "--test", "test/"], cwd=SDK, env=env, capture_output=True, text=True,
                              timeout=300, check=False)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert re.search(r"^# pass 8$", done.stdout, re.MULTILINE) and re.search(r"^# skipped 0$", done.stdout,
                                                                             re.MULTILINE), report
    assert [s.path for s in Recorder.seen] == ["/api/inbox/1?x=1", "/api/inbox/drafts", "/api/inbox/2"]
    decisions = gateway.decisions()
    assert sum(d["code"] == "replay-detected" for d in decisions) == 1
