"""The append-only guarantee on PostgreSQL against the service itself: the schema is created by an owner role,
``serve``'s role gets only ``service_grants``; the sequencer works, and that role can neither change the
record nor disable the triggers that refuse it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import psycopg
import pytest

from tests.postgres import PostgresServer
from tests.unit.transparency.index_world import integrate
from transparency.keys import load_or_create_log_key
from transparency.log.postgres_schema import service_grants
from transparency.log.sequencer import Sequencer
from transparency.log.storage import open_database


def test_the_service_role_appends_but_cannot_rewrite(tmp_path: Path, postgres: PostgresServer) -> None:
    admin_url = postgres.create_database()
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute("CREATE ROLE log_owner LOGIN")
        admin.execute("CREATE ROLE log_service LOGIN")
        admin.execute("GRANT ALL ON SCHEMA public TO log_owner")
    owner_url = admin_url.replace("tabellion@", "log_owner@")
    service_url = admin_url.replace("tabellion@", "log_service@")
    open_database(owner_url).close()  # the owner creates the schema
    with psycopg.connect(owner_url, autocommit=True) as owner:
        for grant in service_grants("log_service"):
            owner.execute(grant)

    key = load_or_create_log_key(tmp_path / "log-key.pem")
    sequencer = Sequencer(service_url, key, "roles.example/log", index_seal_entries=2, index_fanin=2)
    for start in range(0, 40, 5):  # seals and merges: the index's tables are maintained by the service role
        integrate(sequencer, [(hashlib.sha256(b"%d" % i).digest(), b"statement") for i in range(start, start + 5)])
    assert sequencer.size == 40
    sequencer.stop()

    with psycopg.connect(service_url, autocommit=True) as service:
        for statement in ("UPDATE entries SET statement = 'x'::bytea", "DELETE FROM tree_heads",
                          "TRUNCATE tree_nodes", "UPDATE meta SET value = 'other'"):
            with pytest.raises(psycopg.Error, match="append-only|permission denied"):
                service.execute(statement)
        for statement in ("ALTER TABLE entries DISABLE TRIGGER USER", "DROP TRIGGER entries_append_only ON entries"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                service.execute(statement)
