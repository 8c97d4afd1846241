"""Fixtures shared across the suite:

- the log's two storage backends: a test that takes ``backend`` (or a fixture built on it) runs twice, on
  SQLite, the embedded default, and on PostgreSQL, a real server started once per session (``tests.postgres``)
  with a fresh database per test;
- a software TPM 2.0 (tests/swtpm.py) manufactured with EK certificates from a local CA that the test session
  creates in its temporary folder.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.postgres import PostgresServer, postgres_server
from tests.swtpm import LocalCa, SoftwareTpm, available, manufacture
from transparency.log.storage import LogLocation

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def log_database(backend: str, request: pytest.FixtureRequest) -> str | None:
    """``tabellion serve --database`` for the backend: ``None`` (the SQLite file in the data folder) or the URL of
    a fresh PostgreSQL database."""
    if backend == "sqlite":
        return None
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database()


@pytest.fixture
def new_log_location(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[], LogLocation]:
    """Each call: where a new, empty log of the backend is kept (a SQLite file, or a fresh database's URL)."""
    if backend == "sqlite":
        return lambda: Path(tmp_path_factory.mktemp("log")) / "log.sqlite"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database


@pytest.fixture(scope="session")
def local_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCa:
    """The session's local CA (root and intermediate made by swtpm_localca at the first manufacture)."""
    if not available():
        pytest.fail("swtpm, swtpm_setup, swtpm_localca and certtool are needed (scripts/setup.sh installs them)")
    return LocalCa.create(tmp_path_factory.mktemp("swtpm-localca"))


@pytest.fixture(scope="session")
def manufactured_tpm(tmp_path_factory: pytest.TempPathFactory, local_ca: LocalCa) -> Path:
    """The state of one TPM manufactured with the session's CA; tests run copies of it (the same TPM: same EK)."""
    state = tmp_path_factory.mktemp("tpm-a")
    manufacture(local_ca, state)
    return state


@pytest.fixture(scope="session")
def other_manufactured_tpm(tmp_path_factory: pytest.TempPathFactory, local_ca: LocalCa) -> Path:
    """A second TPM of the same CA: another EK."""
    state = tmp_path_factory.mktemp("tpm-b")
    manufacture(local_ca, state)
    return state


def _run_copy(state: Path, into: Path) -> Iterator[SoftwareTpm]:
    shutil.copytree(state, into, ignore=shutil.ignore_patterns("*.log", ".lock"))
    tpm = SoftwareTpm.start(into)
    try:
        yield tpm
    finally:
        tpm.stop()


@pytest.fixture
def software_tpm(manufactured_tpm: Path, tmp_path: Path) -> Iterator[SoftwareTpm]:
    """A running swtpm over a copy of the manufactured TPM's state."""
    yield from _run_copy(manufactured_tpm, tmp_path / "tpm-a")


@pytest.fixture
def other_software_tpm(other_manufactured_tpm: Path, tmp_path: Path) -> Iterator[SoftwareTpm]:
    yield from _run_copy(other_manufactured_tpm, tmp_path / "tpm-b")
