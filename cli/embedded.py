"""The embedded default: one process hosts the transparency service and the issuer.

The issuer reaches the log only through the public client (``LocalLogClient``: the same reads and
writes as over HTTP, without the network hop), follows it with verification and folds it. Its webhook
outbox lives in ``issuer-cache.sqlite`` next to the log (a cache: delete it and the events are
re-derived from the log under the same ids); its webhook signing key in ``webhook-key.pem``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette

from issuer.log_state import LogState
from issuer.outbox import log_event_id, open_outbox
from issuer.registry_keys import open_registry_keys
from issuer.service import Issuer
from issuer.webhooks import WebhookDispatcher
from schemas.note import parse_vkey
from transparency.client.local import LocalLogClient
from transparency.http.app import Extension
from transparency.keys import load_or_create_log_key
from transparency.service import TransparencyService
from transparency.settings import Settings
from verifier.keys import parse_key_set


def embedded_issuer(settings: Settings) -> Extension:
    @asynccontextmanager
    async def extension(app: Starlette, service: TransparencyService) -> AsyncIterator[None]:
        client = LocalLogClient(service)
        keys = parse_key_set(client.key_set())
        outbox = open_outbox(settings.data_dir / "issuer-cache.sqlite")
        dispatcher = WebhookDispatcher(outbox, load_or_create_log_key(settings.data_dir / "webhook-key.pem").private,
                                       allow=settings.allowed_targets)

        def events(event_type: str, data: dict[str, Any], entry: str) -> None:
            if outbox.enqueue(event_type, data, log_event_id(entry, event_type)):
                dispatcher.notify()

        log = LogState(client, parse_vkey(client.vkey()), keys, events)
        log.refresh()
        registry_keys = open_registry_keys(settings.data_dir)  # token-signing keys: <data>/registry-keys/<n>.pem
        app.state.issuer = Issuer(log, client.submit, keys, service.key.kid, registry_keys=registry_keys)
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
