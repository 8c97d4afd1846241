"""The gateway's commands (its own process, where the agents run):

    tabellion gateway --config gateway.toml              # run it (Hypercorn)
    tabellion gateway secret set --config FILE NAME      # store a provider secret, its value read from stdin
    tabellion gateway secret list --config FILE          # the names stored (never the values)
    tabellion gateway secret delete --config FILE NAME

``secret set`` creates the master key file (0600) when neither it nor ``TABELLION_GATEWAY_MASTER_KEY`` exists.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from gateway.config import SECRET_NAME, load_config
from gateway.secrets import MASTER_KEY_ENV, Secret, SecretStore, load_master_key
from schemas.errors import InvalidParameter

Command = Callable[[Any, str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]
MAX_SECRET_BYTES = 64 * 1024


def run_gateway(config_file: Path, *, verbose: bool = False) -> int:
    from gateway.server import serve

    serve(load_config(config_file), verbose=verbose)
    return 0


def set_secret(config_file: Path, name: str, stdin: TextIO) -> list[str]:
    """Store the secret ``name`` with the value read from ``stdin`` (one trailing newline dropped)."""
    if not SECRET_NAME.fullmatch(name):
        raise InvalidParameter(f"{name[:130]!r} is not a secret name (1-128 letters, digits, '_', '.' or '-')")
    value = stdin.read(MAX_SECRET_BYTES + 1)
    if len(value) > MAX_SECRET_BYTES:
        raise InvalidParameter(f"the secret is longer than {MAX_SECRET_BYTES} characters")
    value = value.removesuffix("\n").removesuffix("\r")
    if not value:
        raise InvalidParameter("no secret value on standard input")
    config = load_config(config_file)
    created = not os.environ.get(MASTER_KEY_ENV) and not config.master_key_file.exists()
    store = SecretStore(config.secrets_path, load_master_key(config.master_key_file, create=True))
    store.set(name, Secret(value))
    lines = []
    if created:
        lines.append(f"created the master key {config.master_key_file} (mode 0600): keep it, or the secrets are lost")
    used = name in config.secret_refs
    lines.append(f"OK: secret {name} stored encrypted in {config.secrets_path}"
                 + ("" if used else " (no connection names it yet)"))
    return lines


def list_secrets(config_file: Path) -> list[str]:
    config = load_config(config_file)
    store = SecretStore(config.secrets_path, load_master_key(config.master_key_file))
    names = store.names()
    store.load(names)  # every value must decrypt under this master key
    missing = [ref for ref in config.secret_refs if ref not in names]
    return names + [f"missing: {ref} (named by a connection, not stored)" for ref in missing]


def delete_secret(config_file: Path, name: str) -> list[str]:
    config = load_config(config_file)
    SecretStore(config.secrets_path, load_master_key(config.master_key_file)).delete(name)
    return [f"OK: secret {name} deleted"]


def add_gateway_commands(commands: Any, command: Command, show: Callable[[list[str]], int]) -> None:
    def run(a: argparse.Namespace) -> int:
        if a.config is None:
            from cli.commands import UsageError

            raise UsageError("tabellion gateway needs --config FILE")
        return run_gateway(a.config, verbose=a.verbose)

    p = command(commands, "gateway", run, "run the gateway: verified agent requests, proxied with credentials")
    p.add_argument("--config", type=Path, metavar="FILE", help="the gateway's TOML configuration")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    secrets = command(actions, "secret", lambda a: 2, "provider secrets, encrypted at rest").add_subparsers(
        dest="secret_action", required=True, metavar="ACTION")

    def with_config(name: str, job: Callable[[argparse.Namespace], list[str]], help_text: str) -> Any:
        q = command(secrets, name, lambda a: show(job(a)), help_text)
        q.add_argument("--config", type=Path, required=True, metavar="FILE")
        return q

    with_config("set", lambda a: set_secret(a.config, a.name, sys.stdin),
                "store a secret; its value is read from standard input").add_argument("name", metavar="NAME")
    with_config("list", lambda a: list_secrets(a.config), "list the names of the stored secrets")
    with_config("delete", lambda a: delete_secret(a.config, a.name), "delete a stored secret").add_argument(
        "name", metavar="NAME")
