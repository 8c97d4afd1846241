"""A gateway's configuration file for tests: the log trust an operator pins, and a gateway.toml around a body."""

from __future__ import annotations

from pathlib import Path

from transparency.keys import load_or_create_log_key, published_key_set

ORIGIN = "gateway.test/log"


def write_log_trust(folder: Path) -> tuple[str, Path]:
    """A log key's verifier key text and a receipt key set file, as an operator pins them."""
    key = load_or_create_log_key(folder / "log-key.pem")
    keys = folder / "log-keys.cbor"
    keys.write_bytes(published_key_set(key, []).encode())
    return key.note_key(ORIGIN).encode(), keys


def write_config(folder: Path, body: str = "", *, log: str | None = None, connections: str | None = None) -> Path:
    vkey, keys = write_log_trust(folder)
    if log is None:
        log = f'[log]\nurl = "http://127.0.0.1:9"\nvkey = "{vkey}"\nkeys_file = "{keys.name}"\n'
    if connections is None:
        connections = (
            '[[connections]]\nid = "mail"\nupstream = "http://127.0.0.1:9/api/"\nservice = "mail"\n'
            'credentials = { type = "bearer", secret_ref = "MAIL_TOKEN" }\nactions = { get = "read" }\n'
        )
    path = folder / "gateway.toml"
    path.write_text(body + "\n" + log + "\n" + connections)
    return path
