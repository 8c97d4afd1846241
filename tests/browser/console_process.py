"""``tabellion console --config FILE`` in a subprocess for the browser tests, on http://localhost:PORT (a secure
context, so WebAuthn works over plain HTTP), configured for one namespace of a running log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.cli_process import tabellion
from tests.server import REPO, free_port, wait_until_answering
from transparency.client import save_private_key


@dataclass
class ConsoleProcess:
    config: Path
    url: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> ConsoleProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TABELLION_")}
        log: IO[bytes]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "cli.main", "console", "--config", str(self.config)],
                                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_until_answering(self.process, f"{self.url}/readyz", "the console", self.log, self.stop)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def invite(self, approver: str | None, name: str) -> str:
        """``tabellion console invite``: the one-time enrolment link (``approver`` None: for the passkey's own
        did:key)."""
        named = ("--approver", approver) if approver is not None else ()
        return tabellion("console", "invite", "--config", self.config, *named, "--name", name).stdout.strip()


def console_config(folder: Path, issuer: str, namespace: str, owner: Ed25519PrivateKey) -> ConsoleProcess:
    folder.mkdir(parents=True, exist_ok=True)
    save_private_key(owner, folder / "namespace.key")
    port = free_port()
    config = folder / "console.toml"
    config.write_text(f"""
port = {port}
issuer = "{issuer}"
namespace = "{namespace}"
namespace_key = "namespace.key"
origin = "http://localhost:{port}"
rp_id = "localhost"
rp_name = "Acme approvals"
data_dir = "console-data"
""")
    return ConsoleProcess(config, f"http://localhost:{port}", folder / "console.log")
