"""``tabellion console --config FILE`` (the operator's web console, ``console``) and
``tabellion console invite --config FILE [--approver DID] --name NAME`` (a one-time enrolment link; without
``--approver``, the approver is the did:key of the passkey the human creates)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import Any


def _serve(a: argparse.Namespace) -> list[str]:
    from hypercorn.config import Config

    from console.app import create_app
    from console.config import load_config
    from transparency.serving import serve_until_stopped

    config = load_config(a.config)
    app = create_app(config)
    hyper = Config()
    hyper.bind = [f"{config.host}:{config.port}"]
    hyper.accesslog = None
    hyper.graceful_timeout = 2.0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    print(f"tabellion: console for {config.namespace} on http://{config.host}:{config.port} "
          f"(origin {config.origin}, issuer {config.issuer})", file=sys.stderr, flush=True)

    serve_until_stopped(app, hyper)
    return []


def _invite(a: argparse.Namespace) -> list[str]:
    from console.ceremonies import Invitations, session_secret
    from console.config import load_config
    from console.state import key_owner
    from transparency.client import load_ed25519_key

    config = load_config(a.config)
    owner = key_owner(load_ed25519_key(config.namespace_key, "namespace key"), config.operator)
    token = Invitations(session_secret(config.data_dir), config.data_dir).make(a.approver, a.name,
                                                                                owner=owner.identity)
    return [f"{config.origin}/enrol?invitation={token}"]


def add_console_commands(commands: Any, command: Callable[..., argparse.ArgumentParser],
                         show: Callable[[list[str]], int]) -> None:
    p = command(commands, "console", lambda a: show(_invite(a) if a.action == "invite" else _serve(a)),
                "the operator's web console (passkey approvals), or an enrolment invitation for an approver")
    p.add_argument("action", nargs="?", choices=("serve", "invite"), default="serve")
    p.add_argument("--config", required=True, metavar="FILE", help="the console's TOML configuration")
    p.add_argument("--approver", metavar="DID",
                   help="invite: the approver's DID: the operator's own, or a did:web under the operator's did:web "
                        "(default: the did:key of the passkey the human creates)")
    p.add_argument("--name", default="approver", help="invite: the name the passkey is made for")
