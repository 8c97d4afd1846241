"""Webhook administration on the host that runs the service (it acts on the data folder directly).

    tabellion webhooks key --data DIR                       # the public key receivers verify with (whpk_…)
    tabellion webhooks add --data DIR URL --event 'claim.*' [--event passport.issued …]
    tabellion webhooks list --data DIR
    tabellion webhooks remove --data DIR ID

A running service picks new subscriptions up at once (the outbox is a SQLite file in WAL mode shared by
both processes); a subscription receives the events of entries folded after it was added.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from issuer.outbox import EVENT_TYPES, open_outbox
from issuer.webhooks import public_key_text
from transparency.keys import load_or_create_log_key

OUTBOX_FILE = "issuer-cache.sqlite"
WEBHOOK_KEY_FILE = "webhook-key.pem"

Command = Callable[[Any, str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


def webhook_key_text(data: Path) -> list[str]:
    return [public_key_text(load_or_create_log_key(data / WEBHOOK_KEY_FILE).public)]


def add(data: Path, url: str, events: list[str]) -> list[str]:
    outbox = open_outbox(data / OUTBOX_FILE)
    try:
        subscription = outbox.subscribe(url, events)
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


def add_webhook_commands(commands: Any, command: Command, show: Callable[[list[str]], int]) -> None:
    hooks = command(commands, "webhooks", lambda a: 2, "manage webhook subscriptions (on the service's host)")
    sub = hooks.add_subparsers(dest="action", required=True, metavar="ACTION")

    def with_data(name: str, run: Callable[[argparse.Namespace], list[str]], help_text: str) -> argparse.ArgumentParser:
        p = command(sub, name, lambda a: show(run(a)), help_text)
        p.add_argument("--data", type=Path, default=Path("./data"), help="the service's data folder")
        return p

    with_data("key", lambda a: webhook_key_text(a.data), "print the public key that signs deliveries")
    p = with_data("add", lambda a: add(a.data, a.url, a.event), "subscribe a URL to events")
    p.add_argument("url", metavar="URL")
    p.add_argument("--event", action="append", required=True, metavar="TYPE",
                   help=f"an event type, 'prefix.*' or '*' (repeat); types: {', '.join(EVENT_TYPES)}")
    with_data("list", lambda a: listing(a.data), "list active subscriptions")
    p = with_data("remove", lambda a: remove(a.data, a.id), "stop a subscription")
    p.add_argument("id", type=int, metavar="ID")
