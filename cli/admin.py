"""Administration on the host that runs the service (it acts on the data folder directly).

    tabellion registry rotate-key --data DIR                # a new registry key generation (old ones kept)

    tabellion webhooks key --data DIR                       # the public key receivers verify with (whpk_…)
    tabellion webhooks add --data DIR URL --event 'claim.*' [--event passport.issued …] [--outbound-allow CIDRS]
    tabellion webhooks list --data DIR
    tabellion webhooks remove --data DIR ID

A subscription URL must resolve to public addresses only, unless they lie in ranges the operator allows:
``--outbound-allow`` or ``TABELLION_OUTBOUND_ALLOW`` (the service checks again before each delivery, with its
own setting). A running service picks new subscriptions up at once (the outbox is a SQLite file in WAL mode shared by
both processes); a subscription receives the events of entries folded after it was added.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from issuer.outbox import EVENT_TYPES, open_outbox
from issuer.registry_keys import rotate_registry_key
from issuer.webhooks import public_key_text, subscribe
from transparency.keys import load_or_create_log_key
from transparency.settings import load_settings

OUTBOX_FILE = "issuer-cache.sqlite"
WEBHOOK_KEY_FILE = "webhook-key.pem"

Command = Callable[[Any, str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


def webhook_key_text(data: Path) -> list[str]:
    return [public_key_text(load_or_create_log_key(data / WEBHOOK_KEY_FILE).public)]


def add(data: Path, url: str, events: list[str], outbound_allow: str | None = None) -> list[str]:
    allow = load_settings({"outbound_allow": outbound_allow}).allowed_targets
    outbox = open_outbox(data / OUTBOX_FILE)
    try:
        subscription = subscribe(outbox, url, events, allow=allow)
    finally:
        outbox.close()
    return [f"OK: subscription {subscription.id} delivers {', '.join(subscription.event_types)} to {url}"]


def listing(data: Path) -> list[str]:
    outbox = open_outbox(data / OUTBOX_FILE)
    try:
        return [f"{s.id}\t{s.url}\t{','.join(s.event_types)}" for s in outbox.subscriptions()]
    finally:
        outbox.close()


def remove(data: Path, subscription: int) -> list[str]:
    outbox = open_outbox(data / OUTBOX_FILE)
    try:
        outbox.unsubscribe(subscription)
    finally:
        outbox.close()
    return [f"OK: subscription {subscription} removed"]


def rotate_key(data: Path) -> list[str]:
    key = rotate_registry_key(data)
    return [f"OK: registry key generation {key.generation} (kid {key.kid}) is current; older ones are kept"]


def add_admin_commands(commands: Any, command: Command, show: Callable[[list[str]], int]) -> None:
    def group(name: str, help_text: str) -> Any:
        return command(commands, name, lambda a: 2, help_text).add_subparsers(
            dest="action", required=True, metavar="ACTION")

    def with_data(sub: Any, name: str, run: Callable[[argparse.Namespace], list[str]],
                  help_text: str) -> argparse.ArgumentParser:
        p = command(sub, name, lambda a: show(run(a)), help_text)
        p.add_argument("--data", type=Path, default=Path("./data"), help="the service's data folder")
        return p

    registry = group("registry", "registry keys (on the service's host)")
    with_data(registry, "rotate-key", lambda a: rotate_key(a.data), "make a new registry key generation current")

    sub = group("webhooks", "manage webhook subscriptions (on the service's host)")

    with_data(sub, "key", lambda a: webhook_key_text(a.data), "print the public key that signs deliveries")
    p = with_data(sub, "add", lambda a: add(a.data, a.url, a.event, a.outbound_allow), "subscribe a URL to events")
    p.add_argument("url", metavar="URL")
    p.add_argument("--outbound-allow", metavar="CIDRS",
                   help="address ranges the URL may resolve to although not public, e.g. 127.0.0.0/8 "
                        "(default: $TABELLION_OUTBOUND_ALLOW)")
    p.add_argument("--event", action="append", required=True, metavar="TYPE",
                   help=f"an event type, 'prefix.*' or '*' (repeat); types: {', '.join(EVENT_TYPES)}")
    with_data(sub, "list", lambda a: listing(a.data), "list active subscriptions")
    p = with_data(sub, "remove", lambda a: remove(a.data, a.id), "stop a subscription")
    p.add_argument("id", type=int, metavar="ID")
