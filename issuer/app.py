"""The issuer as a component: its settings, its routes, and the app it runs in.

The issuer runs where the log is (``tabellion serve``, the embedded default): ``hosted(settings)`` is the
extension that the log service's app factory starts after the log (``transparency.http.app.create_app``'s
``extensions``) and stops before it, and ``ROUTES`` are the issuer's HTTP API (``issuer.routes``). It reaches the
log only through the public client (``LocalLogClient``: the same reads and writes as over HTTP, without the
network hop) and shares the log's own fold (``SharedFold``): one fold of the log per process, kept between starts
by the log's snapshots. Its webhook outbox is a cache next to the log (``issuer-cache.sqlite``, with the log
position its events were derived up to: delete it and the events are re-derived from the log under the same ids,
for the subscriptions made since); its webhook
signing key is ``webhook-key.pem``; its registry keys are ``registry-keys/<n>.pem``. With a witness policy (a C2SP
tlog-policy) it follows the log itself and folds only checkpoints that policy's witness quorum cosigned (the
shared fold runs ahead of them), and answers 503 ``log-unwitnessed`` as ``issuer.log_state`` says.

Its clients — the operator CLI and the console — use its typed HTTP client, ``issuer.client``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from issuer.log_state import LogState
from issuer.outbox import Outbox, log_event_id, open_outbox
from issuer.registry_keys import open_registry_keys
from issuer.routes import ROUTES as ISSUER_ROUTES
from issuer.service import Issuer
from issuer.webhooks import WebhookDispatcher
from schemas.errors import ConfigurationError, LogUnwitnessed
from schemas.note import parse_vkey
from schemas.policy import Policy, parse_policy
from transparency.client.local import LocalLogClient
from transparency.keys import load_or_create_log_key
from transparency.outbound import AllowedTargets
from verifier.keys import parse_key_set

ROUTES: list[BaseRoute] = ISSUER_ROUTES


@dataclass(frozen=True)
class IssuerSettings:
    """Where the issuer keeps what is its own (none of it authoritative: the log is)."""

    data_dir: Path
    # the service's public base URL (transparency.settings public_url): its did:web names did.json, status lists
    # and tokens; never a request's Host
    public_url: str = field(kw_only=True)
    allow: AllowedTargets = AllowedTargets()  # non-public ranges its webhooks may reach (transparency.outbound)
    witness_policy: Path | None = None  # fold only checkpoints this tlog-policy's quorum cosigned
    witness_grace_s: float = 10.0  # ... and answer 503 log-unwitnessed past this wait for a quorum

    def policy(self) -> Policy | None:
        if self.witness_policy is None:
            return None
        try:
            return parse_policy(self.witness_policy.read_bytes())
        except OSError as exc:
            raise ConfigurationError(f"cannot read the issuer's witness policy {self.witness_policy}: "
                                     f"{exc.strerror or exc}") from exc

    @property
    def outbox_path(self) -> Path:
        return self.data_dir / "issuer-cache.sqlite"

    @property
    def webhook_key_path(self) -> Path:
        return self.data_dir / "webhook-key.pem"


class OutboxCursor:
    """Where the issuer's lifecycle events were derived up to, kept in the outbox with the events."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def get(self) -> int | None:
        return self.outbox.log_cursor()

    def set(self, size: int) -> None:
        self.outbox.set_log_cursor(size)


def hosted(settings: IssuerSettings) -> Callable[[Starlette, Any], AbstractAsyncContextManager[None]]:
    """The issuer, hosted in the log service's process: ``app.state.issuer`` (and ``app.state.outbox``) for the
    length of the app's life, following the service through ``LocalLogClient``."""

    @asynccontextmanager
    async def extension(app: Starlette, service: Any) -> AsyncIterator[None]:
        client = LocalLogClient(service)
        keys = parse_key_set(client.key_set())
        outbox = open_outbox(settings.outbox_path)
        dispatcher = WebhookDispatcher(outbox, load_or_create_log_key(settings.webhook_key_path).private,
                                       allow=settings.allow)

        def events(event_type: str, data: dict[str, Any], entry: str) -> None:
            if outbox.enqueue(event_type, data, log_event_id(entry, event_type)):
                dispatcher.notify()

        policy = settings.policy()
        if policy is None:  # one fold per process: the log's own, kept between starts by its snapshots
            log = LogState(client, parse_vkey(client.vkey()), keys, events, shared=client.shared_fold(),
                           cursor=OutboxCursor(outbox))
        else:  # a witness policy: the issuer follows the witnessed checkpoints, behind the log's own fold
            log = LogState(client, parse_vkey(client.vkey()), keys, events, policy=policy,
                           witness_grace=settings.witness_grace_s)
        try:
            log.refresh()
        except LogUnwitnessed as exc:  # witnesses not reached yet: answer 503 log-unwitnessed until they are
            logging.getLogger("issuer").warning("%s", exc.detail)
        registry_keys = open_registry_keys(settings.data_dir)  # token-signing keys: <data>/registry-keys/<n>.pem
        app.state.issuer = Issuer(log, client.submit, keys, service.key.kid, registry_keys=registry_keys,
                                  public_url=settings.public_url)
        app.state.outbox = outbox
        stop = asyncio.Event()
        delivering = asyncio.create_task(dispatcher.run(stop))
        try:
            yield
        finally:
            stop.set()
            dispatcher.notify()
            await delivering
            outbox.close()

    return extension


__all__ = ["ROUTES", "IssuerSettings", "hosted"]
