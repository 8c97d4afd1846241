"""Run the gateway under Hypercorn, in its own process: ``tabellion gateway --config FILE``.

Start-up decrypts the provider secrets the connections name (a missing secret or a wrong master key stops
the start with one line), installs the log handlers — decision lines as bare JSON on stderr, everything
else as text, with every secret value scrubbed by ``RedactSecrets`` — and serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Iterable, Mapping
from typing import TextIO

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config

from .app import create_app
from .config import GatewayConfig
from .secrets import RedactSecrets, Secret, SecretStore, load_master_key


def load_connection_secrets(config: GatewayConfig) -> dict[str, Secret]:
    """Decrypt every secret a connection names (none needed: no master key is read)."""
    if not config.secret_refs:
        return {}
    store = SecretStore(config.secrets_path, load_master_key(config.master_key_file))
    return store.load(config.secret_refs)


def configure_logging(secrets: Iterable[Secret], *, verbose: bool = False, stream: TextIO | None = None) -> None:
    redact = RedactSecrets(secrets)
    decisions = logging.StreamHandler(stream or sys.stderr)
    decisions.setFormatter(logging.Formatter("%(message)s"))
    decisions.addFilter(redact)
    decision_log = logging.getLogger("gateway.decisions")
    decision_log.handlers[:] = [decisions]
    decision_log.setLevel(logging.INFO)
    decision_log.propagate = False
    text = logging.StreamHandler(stream or sys.stderr)
    text.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    text.addFilter(redact)
    root = logging.getLogger()
    root.handlers[:] = [text]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("httpx", "httpcore"):  # request lines of every poll: debug only
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)


def hypercorn_config(config: GatewayConfig) -> Config:
    hc = Config()
    hc.bind = [f"{config.host}:{config.port}"]
    hc.accesslog = None
    hc.errorlog = logging.getLogger("hypercorn.error")  # through the root handler (and its redaction)
    hc.keep_alive_timeout = 30
    return hc


def serve(config: GatewayConfig, *, secrets: Mapping[str, Secret] | None = None, verbose: bool = False) -> None:
    """Run until SIGINT/SIGTERM."""
    loaded = dict(secrets) if secrets is not None else load_connection_secrets(config)
    configure_logging(loaded.values(), verbose=verbose)
    app = create_app(config, loaded)  # compiles the connections' policies: a mistake stops here, in one line
    logging.getLogger("gateway").info(
        "gateway on http://%s:%d following %s (%d connections: %s)", config.host, config.port, config.log.url,
        len(config.connections), ", ".join(c.id for c in config.connections),
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await hypercorn_serve(app, hypercorn_config(config), shutdown_trigger=stop.wait)  # type: ignore[arg-type]

    asyncio.run(main())
