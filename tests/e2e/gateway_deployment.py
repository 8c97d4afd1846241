"""The gateway's end-to-end world, every part a real process or server on 127.0.0.1: the transparency service
(with the issuer) in a subprocess, an upstream that records what it receives, the identity flow over HTTP
(operator -> A -> B -> C, passports, claim, approval), ``tabellion gateway --config`` in a subprocess, and
requests signed as an agent.

    with gateway_deployment(tmp_path) as d:
        send(signed(d.world, d.url))

``gateway_deployment`` is the whole of it; ``started_gateway`` only the gateway, for tests that build their log
another way."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import IO, Any

import httpx

from gateway.signatures import Request, sign_request
from issuer.client import IssuerClient
from issuer.statements import Signer, revocation
from schemas.checkpoint import parse_checkpoint
from schemas.identity_statements import statement_type_of
from schemas.note import parse_note
from schemas.statement import parse_statement
from tests.cli_process import tabellion
from tests.gateway_world import World, build_world
from tests.http_stub import QuietHandler, serving
from tests.server import REPO, ServerUrl, free_port, running_server, wait_until_answering
from transparency.client import HttpLogClient, generate_key, sign_statement

TOKEN = "upstream-token-5b1f0c7e"
LONG_POLL_S = 10  # the gateway's [log] long_poll unless a test sets another
PATIENCE_S = 60.0  # how long a test waits for what must happen, on a machine however busy

# --- the upstream: records every request ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


class Recorder(QuietHandler):
    seen: list[Seen]

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append(Seen(self.command, self.path, tuple(self.headers.items()), body))
        answer = json.dumps({"upstream": True, "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.send_header("X-Upstream", "recorder")
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = do_PUT = do_DELETE = _handle


# --- the gateway process -------------------------------------------------------------------------


class GatewayProcess:
    """``tabellion gateway --config FILE`` in a subprocess; its stderr (decision lines included) in a file."""

    def __init__(self, config: Path, port: int, log_path: Path) -> None:
        self.config, self.url, self.log_path = config, f"http://127.0.0.1:{port}", log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, healthy: bool = True) -> GatewayProcess:
        """Start and wait until ``/healthz`` answers 200 (``healthy``) or answers at all."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("TABELLION_")}
        log: IO[bytes]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "cli.main", "gateway", "--config", str(self.config)],
                                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        if healthy:
            wait_until_answering(self.process, f"{self.url}/healthz", "the gateway", self.log, self.stop)
            return self
        deadline = time.monotonic() + 20
        while True:
            assert self.process.poll() is None, f"the gateway exited:\n{self.log()}"
            try:
                httpx.get(f"{self.url}/healthz", timeout=1)
                return self
            except httpx.HTTPError:
                assert time.monotonic() < deadline, f"the gateway never answered:\n{self.log()}"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def decisions(self) -> list[dict[str, Any]]:
        lines = [line for line in self.log().splitlines() if line.startswith("{")]
        return [json.loads(line) for line in lines]


def write_gateway_config(tmp_path: Path, log_url: str, upstream: str, port: int, *, long_poll: int = LONG_POLL_S,
                         settings: str = "", log_settings: str = "", tables: str = "") -> Path:
    """``tmp_path/gateway.toml``: the log's keys pinned, one bearer connection ``mail-api`` to ``upstream``, and
    its credential in the gateway's secret store. ``settings`` are more top-level lines, ``log_settings`` more
    ``[log]`` lines, ``tables`` more tables: connections, say (a ``str.format`` template of ``upstream``)."""
    with HttpLogClient(log_url) as client:  # pinned out of band: the gateway trusts only these keys
        (tmp_path / "log.vkey").write_text(client.vkey() + "\n")
        (tmp_path / "log-keys.cbor").write_bytes(client.key_set())
    config = tmp_path / "gateway.toml"
    config.write_text(f"""
port = {port}
data_dir = "gw-data"
max_body_bytes = 65536
{settings}
[log]
url = "{log_url}"
vkey_file = "log.vkey"
keys_file = "log-keys.cbor"
long_poll = {long_poll}
{log_settings}

[[connections]]
id = "mail-api"
upstream = "{upstream}/api"
service = "mail"
credentials = {{ type = "bearer", secret_ref = "MAIL_TOKEN" }}
actions = {{ GET = "read", POST = "write" }}
""" + tables.format(upstream=upstream))
    stored = tabellion("gateway", "secret", "set", "--config", config, "MAIL_TOKEN", input=TOKEN + "\n")
    assert TOKEN not in stored.stdout + stored.stderr, stored.stderr
    return config


# --- the identity flow and signed requests -------------------------------------------------------


def register_world(log_url: str) -> World:
    """The world's statements, each to the issuer endpoint of its type (``issuer.client``), the approval last."""
    world = build_world()
    with IssuerClient(log_url) as issuer:
        for statement in world.statements[:-1]:
            stype = statement_type_of(parse_statement(statement).content_type)
            assert stype is not None
            issuer.submit(stype, statement)
        issuer.submit("claim-approval", world.statements[-1], claim=world.claim)
    return world


def signed(world: World, gateway: str, path: str = "/proxy/mail-api/inbox/1?x=1", method: str = "GET",
           body: bytes = b"", *, agent: Signer | None = None, created: int | None = None,
           extra_headers: tuple[tuple[str, str], ...] = (), **options: Any) -> Request:
    agent = agent or world.c
    now = int(time.time()) if created is None else created
    request = Request(method, gateway + path, (*world.headers(agent=agent), *extra_headers), body)
    kw: dict[str, Any] = {"key": agent.key, "keyid": agent.identity, "created": now, "expires": now + 60,
                          "nonce": uuid.uuid4().hex} | options
    return sign_request(request, **kw)


def revoke_until_refused(log_url: str, gateway_url: str, world: World,
                         attempt: Callable[[], httpx.Response]) -> httpx.Response:
    """The operator revokes C on the log; ``attempt`` (a request as C) is repeated while the gateway allows it,
    for ``PATIENCE_S`` at most. The first other answer, which must come well within the long poll (half of
    ``LONG_POLL_S``): the log answers the gateway's pending long poll when it grows, so the gateway sees the
    revocation at once. To tell that from a gateway that only sees it when its poll times out, the revocation
    is logged just after the gateway has seen another statement (so its long poll has only just started)."""
    with HttpLogClient(log_url) as client:
        client.submit(sign_statement(generate_key(), b"before the revocation", subject="x", content_type="text/plain"))
        size = parse_checkpoint(parse_note(client.checkpoint()).text).size
    deadline = time.monotonic() + PATIENCE_S
    while httpx.get(f"{gateway_url}/healthz", timeout=10).json()["log"]["size"] < size:
        assert time.monotonic() < deadline, "the gateway never saw the log grow"
        time.sleep(0.01)
    with httpx.Client(base_url=log_url, timeout=30) as http:
        withdrawn = revocation(world.operator, world.c.identity, "privilegeWithdrawn")
        answer = http.post("/registry/revoke", content=withdrawn, headers={"content-type": "application/cose"})
    assert answer.status_code == 201, answer.text
    receipt_at = time.monotonic()
    while (answer := attempt()).status_code == 200:
        assert time.monotonic() - receipt_at < PATIENCE_S, "the revocation never reached the gateway"
        time.sleep(0.01)
    propagation = time.monotonic() - receipt_at
    print(f"revocation propagation: {propagation * 1000:.1f} ms")
    assert propagation < LONG_POLL_S / 2, f"the revocation took {propagation:.3f} s to reach the gateway"
    return answer


def send(request: Request, *, body: bytes | None = None, drop: str | None = None) -> httpx.Response:
    headers = [(k, v) for k, v in request.headers if k.lower() != (drop or "").lower()]
    return httpx.request(request.method, request.target_uri, headers=headers,
                         content=request.body if body is None else body, timeout=10)


def refused(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = answer.json()
    assert problem["type"] == f"urn:tabellion:error:{code}", problem
    return problem


# --- all of it at once ---------------------------------------------------------------------------


@contextmanager
def started_gateway(tmp_path: Path, log_url: str, upstream: str, *, long_poll: int = LONG_POLL_S, settings: str = "",
                    log_settings: str = "", tables: str = "") -> Iterator[GatewayProcess]:
    """``tabellion gateway`` following ``log_url`` (configured as ``write_gateway_config`` says), healthy, for the
    length of the block; its log in ``tmp_path/gateway.log``."""
    port = free_port()
    config = write_gateway_config(tmp_path, log_url, upstream, port, long_poll=long_poll, settings=settings,
                                  log_settings=log_settings, tables=tables)
    gateway = GatewayProcess(config, port, tmp_path / "gateway.log").start()
    try:
        yield gateway
    finally:
        gateway.stop()


@dataclasses.dataclass(frozen=True)
class GatewayDeployment:
    log: ServerUrl
    upstream: str
    world: World
    gateway: GatewayProcess

    @property
    def url(self) -> str:
        return self.gateway.url


@contextmanager
def gateway_deployment(tmp_path: Path, *, upstream: type[BaseHTTPRequestHandler] = Recorder,
                       world: Callable[[str], World] = register_world,
                       log_front: Callable[[ServerUrl], AbstractContextManager[str]] | None = None,
                       long_poll: int = LONG_POLL_S, settings: str = "", log_settings: str = "",
                       tables: str = "") -> Iterator[GatewayDeployment]:
    """A transparency service, ``upstream`` serving, ``world(log URL)`` registered on the log, and a gateway
    (configured as ``write_gateway_config`` says) following the log, or ``log_front(log)``: a server in front of
    it. The recording upstream (``Recorder``) starts with nothing seen."""
    if upstream is Recorder:
        Recorder.seen = []
    with running_server(tmp_path / "log") as log_url, serving(upstream) as upstream_url:
        registered = world(log_url)
        with (nullcontext(str(log_url)) if log_front is None else log_front(log_url)) as followed, \
                started_gateway(tmp_path, followed, upstream_url, long_poll=long_poll, settings=settings,
                                log_settings=log_settings, tables=tables) as process:
            yield GatewayDeployment(log_url, upstream_url, registered, process)
