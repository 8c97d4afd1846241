"""Run the gateway under Hypercorn, in its own process: ``tabellion gateway --config FILE``.

The event loop is uvloop's (``transparency.serving``; by measurement, ``docs/benchmarks.md``: the same
pass-through on Hypercorn spends a quarter to a half less CPU per request than on asyncio's own loop). Start-up
decrypts the provider secrets the connections name (a missing secret or a wrong master key stops the start with
one line), installs the log handlers — decision lines as bare JSON on stderr, everything else as text, with every
secret value scrubbed by ``RedactSecrets`` — and serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
import sys
import threading
from collections.abc import Iterable, Mapping
from functools import partial
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import TextIO

from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config, Sockets
from hypercorn.utils import check_multiprocess_shutdown_event, wrap_app

from transparency.client.http import HttpLogClient
from transparency.serving import run_loop, serve_until_stopped

from .actions import ActionRecorder
from .app import create_app, report_trust
from .config import GatewayConfig, load_config
from .secrets import RedactSecrets, Secret, SecretStore, load_master_key
from .shared import ViewPublisher
from .state import FollowedLog
from .trust import LogTrust

SUPERVISOR_RECORD_WAIT_S = 0.1  # the workers queue records in SQLite: the submitter looks for them this often


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
    for noisy in ("httpx", "httpcore", "aiohttp"):  # request lines of every poll: debug only
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
    if config.workers > 1:
        supervise(config, loaded, verbose=verbose)
        return
    app = create_app(config, loaded)  # compiles the connections' policies: a mistake stops here, in one line
    logging.getLogger("gateway").info(
        "gateway on http://%s:%d following %s (%d connections: %s)", config.host, config.port, config.log.url,
        len(config.connections), ", ".join(c.id for c in config.connections),
    )

    serve_until_stopped(app, hypercorn_config(config))


# --- several workers ---------------------------------------------------------------------------------------


def supervise(config: GatewayConfig, secrets: Mapping[str, Secret], *, verbose: bool = False) -> None:
    """``workers`` processes serve the socket this process binds; this one follows the log for all of them
    (``gateway.shared``: the verified view they decide from) and submits the action records they queue."""
    create_app(config, secrets, worker=True)  # checks the policies, keys and trust file now, in one line
    trust = LogTrust(config.data_dir, config.log.vkey)
    report_trust(trust)
    hc = hypercorn_config(config)
    sockets = hc.create_sockets()
    client = HttpLogClient(config.log.url, timeout=5.0)
    publisher = ViewPublisher(config.data_dir)
    followed = FollowedLog(client, config.log.vkey, config.log.receipt_keys, poll_interval=config.log.poll_interval,
                           long_poll=config.log.long_poll, max_staleness=config.log.max_staleness, trust=trust,
                           policy=config.log.witness_policy, witness_grace=config.log.witness_grace, sink=publisher,
                           snapshots=config.data_dir / "state")
    followed.publish()
    followed.start()
    recorder = None
    if config.action_records.enabled:
        recorder = ActionRecorder.from_config(config, idle_wait=SUPERVISOR_RECORD_WAIT_S)
        recorder.start()
    context = multiprocessing.get_context("spawn")
    shutdown = context.Event()
    workers = [context.Process(target=_worker, args=(config.path, sockets, shutdown, verbose), daemon=True,
                               name=f"gateway-worker-{i + 1}") for i in range(config.workers)]
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    for worker in workers:
        worker.start()
    logging.getLogger("gateway").info(
        "gateway on http://%s:%d with %d workers, following %s (%d connections: %s)", config.host, config.port,
        config.workers, config.log.url, len(config.connections), ", ".join(c.id for c in config.connections))
    try:
        while not stop.wait(0.5):
            if any(not w.is_alive() for w in workers):
                logging.getLogger("gateway").error("a gateway worker exited; stopping the gateway")
                break
    finally:
        shutdown.set()
        for worker in workers:
            worker.join(10)
            if worker.is_alive():
                worker.kill()
        if recorder is not None:
            recorder.close()
        followed.stop()
        client.close()
        publisher.close()


def _worker(config_path: Path, sockets: Sockets, shutdown: EventType, verbose: bool) -> None:
    config = load_config(config_path)
    secrets = load_connection_secrets(config)
    configure_logging(secrets.values(), verbose=verbose)
    app = create_app(config, secrets, worker=True)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides when to stop
    trigger = partial(check_multiprocess_shutdown_event, shutdown, asyncio.sleep)
    hc = hypercorn_config(config)
    run_loop(worker_serve(wrap_app(app, hc.wsgi_max_body_size, "asgi"),  # type: ignore[arg-type]
                          hc, sockets=sockets, shutdown_trigger=trigger))
