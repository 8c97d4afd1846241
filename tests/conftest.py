"""Fixtures shared by the tests: the log's two storage backends.

A test that takes ``backend`` (or a fixture built on it) runs twice: on SQLite, the embedded default, and on
PostgreSQL, a real server started once per session (``tests.postgres``) with a fresh database per test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.postgres import PostgresServer, postgres_server
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
