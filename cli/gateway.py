"""The gateway's commands (its own process, where the agents run):

    tabellion gateway --config gateway.toml              # run it (Hypercorn)
    tabellion gateway secret set --config FILE NAME      # store a provider secret, its value read from stdin
    tabellion gateway secret list --config FILE          # the names stored (never the values)
    tabellion gateway secret delete --config FILE NAME
    tabellion gateway trust show --config FILE           # the pinned checkpoint, a fork verdict, past resets
    tabellion gateway trust reset --config FILE --reason TEXT   # clear a fork verdict (logged)

``secret set`` creates the master key file (0600) when neither it nor ``TABELLION_GATEWAY_MASTER_KEY`` exists.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from gateway.config import SECRET_NAME, load_config
from gateway.secrets import MASTER_KEY_ENV, Secret, SecretStore, load_master_key
from gateway.trust import LogTrust
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


def show_trust(config_file: Path) -> list[str]:
    config = load_config(config_file)
    trust = LogTrust(config.data_dir, config.log.vkey)
    record = trust.load_unchecked()
    lines = []
    if record.checkpoint is None:
        lines.append("pinned checkpoint: none (the next one the log serves is trusted on first use)")
    else:
        origin, size = record.checkpoint.split("\n")[:2]
        lines.append(f"pinned checkpoint: {origin} size {size}")
    if record.fork is None:
        lines.append("fork verdict: none")
    else:
        lines.append(f"fork verdict: {_when(record.fork.at)}: {record.fork.detail}")
    lines += [f"reset at {_when(int(e.get('at', 0)))} by {e.get('operator')}: {e.get('reason')}"
              for e in trust.events()]
    return lines


def reset_trust(config_file: Path, reason: str) -> list[str]:
    """Clear the fork verdict and the pinned checkpoint (the event is appended to the data folder's
    trust-events.jsonl and the gateway reports it at its next start)."""
    config = load_config(config_file)
    trust = LogTrust(config.data_dir, config.log.vkey)
    event = trust.reset(reason)
    fork = event["cleared_fork"]
    lines = [f"cleared the fork verdict of {_when(fork['at'])}: {fork['detail']}" if fork
             else "no fork verdict was kept"]
    if event["cleared_checkpoint"]:
        lines.append("forgot the pinned checkpoint: the next one the log serves is trusted on first use")
    lines.append(f"OK: logged in {trust.events_path}; restart the gateway to follow the log again")
    return lines


def _when(at: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


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

    trust = command(actions, "trust", lambda a: 2, "what the gateway remembers of the log: checkpoint, fork verdict"
                    ).add_subparsers(dest="trust_action", required=True, metavar="ACTION")
    q = command(trust, "show", lambda a: show(show_trust(a.config)), "the pinned checkpoint, a fork verdict, resets")
    q.add_argument("--config", type=Path, required=True, metavar="FILE")
    q = command(trust, "reset", lambda a: show(reset_trust(a.config, a.reason)),
                "clear a fork verdict and the pinned checkpoint (logged in the data folder)")
    q.add_argument("--config", type=Path, required=True, metavar="FILE")
    q.add_argument("--reason", required=True, metavar="TEXT", help="why the log is trusted again (logged)")
