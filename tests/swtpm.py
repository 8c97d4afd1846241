"""A software TPM 2.0 for tests: manufactured by ``swtpm_setup`` with EK certificates from a local CA, run by
``swtpm socket`` as a real process, reached over the ``swtpm`` TCTI.

``LocalCa`` is a folder with its own ``swtpm-localca.conf``/``.options`` and ``swtpm_setup.conf`` so that nothing is
written outside the test's temporary folder (the system's ``/etc/swtpm*`` and ``/var/lib/swtpm-localca`` are never
read or written). ``swtpm_localca`` creates the root CA (``swtpm-localca-rootca-cert.pem``) and the intermediate
that signs EK certificates (``issuercert.pem``) the first time a TPM is manufactured with it; creating them costs a
few seconds of RSA key generation, so a test session shares one CA (``local_ca`` fixture in conftest).

``manufacture(ca, state)`` runs ``swtpm_setup --tpm2 --create-ek-cert --create-platform-cert``: a TPM whose RSA 2048
EK (persistent handle 0x81010001) has its certificate in NV index 0x1c00002. ``SoftwareTpm.start`` runs
``swtpm socket --tpm2 --server type=tcp,port=P --ctrl type=tcp,port=P+1 --flags not-need-init,startup-clear`` and
waits until the port answers; ``stop`` kills it (``kill9`` for crash tests).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SWTPM = "swtpm"
SWTPM_SETUP = "swtpm_setup"
SWTPM_LOCALCA = "swtpm_localca"
START_TIMEOUT_S = 20.0
RSA_EK_HANDLE = 0x81010001
RSA_EK_CERT_INDEX = 0x01C00002


def available() -> bool:
    return all(shutil.which(tool) for tool in (SWTPM, SWTPM_SETUP, SWTPM_LOCALCA, "certtool"))


@dataclass(frozen=True)
class LocalCa:
    """A local CA for ``swtpm_localca``, confined to ``folder``."""

    folder: Path

    @property
    def root_pem(self) -> Path:
        return self.folder / "swtpm-localca-rootca-cert.pem"

    @property
    def intermediate_pem(self) -> Path:
        return self.folder / "issuercert.pem"

    @property
    def setup_conf(self) -> Path:
        return self.folder / "swtpm_setup.conf"

    @classmethod
    def create(cls, folder: Path, manufacturer: str = "Tabellion test") -> LocalCa:
        folder.mkdir(parents=True, exist_ok=True)
        conf, options = folder / "swtpm-localca.conf", folder / "swtpm-localca.options"
        conf.write_text(f"statedir = {folder}\nsigningkey = {folder / 'signkey.pem'}\n"
                        f"issuercert = {folder / 'issuercert.pem'}\ncertserial = {folder / 'certserial'}\n")
        options.write_text(f"--platform-manufacturer {manufacturer.replace(' ', '-')}\n--platform-version 2.1\n"
                           "--platform-model swtpm\n")
        (folder / "swtpm_setup.conf").write_text(
            f"create_certs_tool = {shutil.which(SWTPM_LOCALCA)}\ncreate_certs_tool_config = {conf}\n"
            f"create_certs_tool_options = {options}\nactive_pcr_banks = sha256\n"
        )
        return cls(folder)


def manufacture(ca: LocalCa, state: Path) -> None:
    """A new TPM's state in ``state``: EKs with certificates signed by ``ca``, a platform certificate."""
    state.mkdir(parents=True, exist_ok=True)
    command = [SWTPM_SETUP, "--tpm2", "--tpmstate", str(state), "--create-ek-cert", "--create-platform-cert",
               "--config", str(ca.setup_conf), "--overwrite", "--logfile", str(state / "setup.log")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        log = (state / "setup.log").read_text(errors="replace") if (state / "setup.log").exists() else ""
        raise RuntimeError(f"swtpm_setup failed ({done.returncode}): {done.stderr}\n{log}")
    if not ca.root_pem.exists():
        raise RuntimeError(f"swtpm_localca made no root CA in {ca.folder}")


def free_port_pair() -> int:
    """A port P such that P and P+1 are both free on 127.0.0.1 (the TPM's and its control channel's)."""
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port: int = a.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            return port
    raise RuntimeError("no two consecutive free ports")


@dataclass
class SoftwareTpm:
    """A running ``swtpm socket`` process over the TPM state in ``state``."""

    state: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def tcti(self) -> str:
        return f"swtpm:host=127.0.0.1,port={self.port}"

    @classmethod
    def start(cls, state: Path) -> SoftwareTpm:
        port = free_port_pair()
        log = (state / f"swtpm-{port}.log").open("ab")
        command = [SWTPM, "socket", "--tpm2", "--tpmstate", f"dir={state}",
                   "--server", f"type=tcp,port={port},bindaddr=127.0.0.1",
                   "--ctrl", f"type=tcp,port={port + 1},bindaddr=127.0.0.1",
                   "--flags", "not-need-init,startup-clear"]
        with log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        tpm = cls(state, port, process)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"swtpm exited with {process.returncode}: "
                                   f"{(state / f'swtpm-{port}.log').read_text(errors='replace')}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return tpm
            except OSError:
                if time.monotonic() > deadline:
                    tpm.stop()
                    raise RuntimeError(f"swtpm does not listen on port {port}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def kill9(self) -> None:
        self.process.kill()
        self.process.wait(5)
