"""The gateway end to end, every part a real process or server on 127.0.0.1: the transparency service
(with the issuer), ``tabellion gateway --config`` in a subprocess, and an upstream that records what it
receives. The identity flow goes over HTTP (operator -> A -> B -> C, passports, claim, approval)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.signatures import Request, sign_request
from issuer.client import IssuerClient
from issuer.statements import Signer, revocation
from schemas.checkpoint import parse_checkpoint
from schemas.identity_statements import statement_type_of
from schemas.note import parse_note
from schemas.statement import parse_statement
from tests.server import REPO, ServerUrl, free_port, running_server, wait_until_answering
from tests.unit.gateway.test_decisions import World, build_world
from transparency.client import HttpLogClient, generate_key, sign_statement
from transparency.keys import load_or_create_log_key
from transparency.receipts import sign_checkpoint

TOKEN = "upstream-token-5b1f0c7e"
PATHS = ["/registry/operators", *["/registry/consents", "/api/agent/issue"] * 3, *["/v1/delegations"] * 3,
         "/v1/claims"]  # the order of build_world's statements: each agent consents to the operator before its passport


# --- the upstream: records every request ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


class Recorder(BaseHTTPRequestHandler):
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

    def log_message(self, format: str, *args: Any) -> None:
        return None


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


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


def write_gateway_config(tmp_path: Path, log_url: str, upstream: str, port: int, *, long_poll: int = 10) -> Path:
    with HttpLogClient(log_url) as client:  # pinned out of band: the gateway trusts only these keys
        (tmp_path / "log.vkey").write_text(client.vkey() + "\n")
        (tmp_path / "log-keys.cbor").write_bytes(client.key_set())
    config = tmp_path / "gateway.toml"
    config.write_text(f"""
port = {port}
data_dir = "gw-data"
max_body_bytes = 65536

[log]
url = "{log_url}"
vkey_file = "log.vkey"
keys_file = "log-keys.cbor"
long_poll = {long_poll}

[[connections]]
id = "mail-api"
upstream = "{upstream}/api"
service = "mail"
credentials = {{ type = "bearer", secret_ref = "MAIL_TOKEN" }}
actions = {{ GET = "read", POST = "write" }}
""")
    stored = subprocess.run([sys.executable, "-m", "cli.main", "gateway", "secret", "set", "--config", str(config),
                             "MAIL_TOKEN"], input=TOKEN + "\n", capture_output=True, text=True, cwd=REPO, check=False)
    assert stored.returncode == 0 and TOKEN not in stored.stdout + stored.stderr, stored.stderr
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


# --- the tests -----------------------------------------------------------------------------------


def test_signed_requests_through_the_gateway(tmp_path: Path) -> None:
    Recorder.seen = []
    with running_server(tmp_path / "log") as log_url, serving(Recorder) as upstream:
        world = register_world(log_url)
        port = free_port()
        gateway = GatewayProcess(write_gateway_config(tmp_path, log_url, upstream, port), port,
                                 tmp_path / "gateway.log").start()
        url = gateway.url
        try:
            # allowed: reaches the upstream with the credential, without the agent's signature or identity
            first = signed(world, url)
            answer = send(first)
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"upstream": True, "path": "/api/inbox/1?x=1"}
            assert answer.headers["x-upstream"] == "recorder"
            seen = Recorder.seen[-1]
            assert (seen.method, seen.path) == ("GET", "/api/inbox/1?x=1")
            assert seen.header("Authorization") == f"Bearer {TOKEN}"
            assert not [k for k, _ in seen.headers if k.lower().startswith(("signature", "tabellion-"))]
            posted = send(signed(world, url, "/proxy/mail-api/inbox/drafts", "POST", b'{"to": "b@example"}'))
            assert posted.status_code == 200, posted.text
            assert Recorder.seen[-1].body == b'{"to": "b@example"}' and Recorder.seen[-1].method == "POST"
            upstream_calls = len(Recorder.seen)

            # refusals, each with its stable code; none reaches the upstream
            stranger = Signer(Ed25519PrivateKey.generate())
            body = b'{"to": "c@example"}'
            digest_covered = signed(world, url, "/proxy/mail-api/inbox/x", "POST", body)
            refused(send(signed(world, url, key=Ed25519PrivateKey.generate())), 401, "request-signature-invalid")
            refused(send(signed(world, url, "/proxy/mail-api/inbox/x", "POST", body,
                                components=["@method", "@target-uri", "tabellion-namespace", "tabellion-subject",
                                            "tabellion-agent-key", "tabellion-agent-passport"])),
                    401, "signature-component-not-covered")
            refused(send(digest_covered, drop="content-digest"), 401, "signature-component-missing")
            refused(send(signed(world, url, "/proxy/mail-api/inbox/x", "POST", body), body=b'{"to": "evil"}'),
                    400, "content-digest-mismatch")
            refused(send(signed(world, url, components=["@method", "tabellion-namespace", "tabellion-subject",
                                                        "tabellion-agent-key", "tabellion-agent-passport"])),
                    401, "signature-component-not-covered")
            refused(send(first), 401, "replay-detected")
            stale = int(time.time()) - 120
            refused(send(signed(world, url, created=stale, expires=stale + 30)), 401, "signature-expired")
            refused(send(signed(world, url, agent=stranger)), 401, "signature-key-unknown")
            outside = refused(send(signed(world, url, "/proxy/mail-api/outbox/1")), 403, "scope-refused")
            assert outside["reason_code"] == "resource_out_of_scope"
            refused(send(signed(world, url, "/proxy/mail-api/inbox/1", "DELETE")), 403, "scope-refused")
            refused(send(signed(world, url, "/proxy/unknown/inbox/1")), 404, "connection-unknown")
            assert len(Recorder.seen) == upstream_calls

            # a restart keeps the nonces: the first request is still a replay
            gateway.stop()
            gateway.start()
            refused(send(first), 401, "replay-detected")
            assert send(signed(world, url)).status_code == 200

            # the operator revokes C: the gateway refuses within a second of the revocation's receipt
            with httpx.Client(base_url=log_url, timeout=30) as http:
                answer = http.post("/registry/revoke", content=revocation(world.operator, world.c.identity,
                                                                          "privilegeWithdrawn"),
                                   headers={"content-type": "application/cose"})
            assert answer.status_code == 201, answer.text
            receipt_at = time.monotonic()
            while (answer := send(signed(world, url))).status_code == 200:
                assert time.monotonic() - receipt_at < 5, "the revocation never reached the gateway"
            propagation = time.monotonic() - receipt_at
            problem = refused(answer, 403, "passport-refused")
            assert problem["reason_code"] == "revoked"
            assert propagation < 1.0, f"revocation took {propagation:.3f} s to reach the gateway"
            print(f"revocation propagation: {propagation * 1000:.1f} ms")
            refused(send(signed(world, url)), 403, "passport-refused")
        finally:
            gateway.stop()

        # the decision log: one JSON line per decision, no secret, no signature value
        decisions = gateway.decisions()
        outcomes = [d["outcome"] for d in decisions]
        assert outcomes.count("allow") >= 3 and outcomes.count("refuse") >= 12
        allowed = next(d for d in decisions if d["outcome"] == "allow")
        assert allowed["agent"] == world.c.identity and allowed["chain"] == list(world.chain)
        assert allowed["resource"] == "inbox/1" and allowed["action"] == "read" and allowed["log_size"] >= 9
        text = gateway.log()
        assert TOKEN not in text
        signature = first.field("signature")
        assert signature is not None and signature not in text


# --- a log that lies ---------------------------------------------------------------------------------


class LyingLog(BaseHTTPRequestHandler):
    """Forwards reads to the real log, except ``/checkpoint`` while ``forged`` is set."""

    real: str
    forged: str | None = None

    def do_GET(self) -> None:  # noqa: N802 - the http.server hook
        if self.path.startswith("/checkpoint") and LyingLog.forged is not None:
            status, ctype, body = 200, "text/plain; charset=utf-8", LyingLog.forged.encode()
        else:
            answer = httpx.get(self.real + self.path, timeout=40)
            status, ctype, body = answer.status_code, answer.headers.get("content-type", ""), answer.content
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


def _forge_split_view(url: ServerUrl) -> str:
    """A checkpoint of the current tree size with another root, signed with the log's own key file (as a
    compromised or buggy log would sign it)."""
    real = parse_checkpoint(parse_note(httpx.get(f"{url}/checkpoint").text).text)
    return sign_checkpoint(load_or_create_log_key(url.data_dir / "log-key.pem"),
                           dataclasses.replace(real, root_hash=bytes(32)))


def test_a_log_serving_an_inconsistent_checkpoint_is_never_trusted_again(tmp_path: Path) -> None:
    Recorder.seen = []
    LyingLog.forged = None
    with running_server(tmp_path / "log") as log_url, serving(Recorder) as upstream:
        LyingLog.real = str(log_url)
        world = register_world(log_url)
        with serving(LyingLog) as lying_url:
            port = free_port()
            gateway = GatewayProcess(write_gateway_config(tmp_path, lying_url, upstream, port, long_poll=1), port,
                                     tmp_path / "gateway.log").start()
            try:
                assert send(signed(world, gateway.url)).status_code == 200
                LyingLog.forged = _forge_split_view(log_url)
                deadline = time.monotonic() + 5
                while (answer := send(signed(world, gateway.url))).status_code == 200:
                    assert time.monotonic() < deadline, "the gateway kept trusting a lying log"
                    time.sleep(0.05)
                problem = refused(answer, 503, "log-untrusted")
                assert answer.headers["retry-after"] == "1" and "no longer trusted" in problem["detail"]
                forwarded = len(Recorder.seen)
                LyingLog.forged = None  # the log tells the truth again: the gateway does not fall back
                with HttpLogClient(log_url) as client:
                    client.submit(sign_statement(generate_key(), b"more", subject="x", content_type="text/plain"))
                time.sleep(1.5)
                refused(send(signed(world, gateway.url)), 503, "log-untrusted")
                refused(httpx.get(f"{gateway.url}/healthz"), 503, "log-untrusted")
                assert len(Recorder.seen) == forwarded  # nothing went upstream once the log was distrusted
            finally:
                gateway.stop()
        assert "stopped trusting the log" in gateway.log()
