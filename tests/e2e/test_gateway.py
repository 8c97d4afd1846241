"""The gateway end to end, every part a real process or server on 127.0.0.1: the transparency service
(with the issuer), ``tabellion gateway --config`` in a subprocess, and an upstream that records what it
receives. The identity flow goes over HTTP (operator -> A -> B -> C, passports, claim, approval)."""

from __future__ import annotations

import dataclasses
import time
from contextlib import AbstractContextManager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from issuer.statements import Signer
from schemas.checkpoint import parse_checkpoint
from schemas.note import parse_note
from tests.e2e.gateway_deployment import (
    TOKEN,
    Recorder,
    gateway_deployment,
    refused,
    revoke_until_refused,
    send,
    signed,
)
from tests.http_stub import serving
from tests.server import ServerUrl
from transparency.client import HttpLogClient, generate_key, sign_statement
from transparency.keys import load_or_create_log_key
from transparency.receipts import sign_checkpoint

# --- the tests -----------------------------------------------------------------------------------


def test_signed_requests_through_the_gateway(tmp_path: Path) -> None:
    with gateway_deployment(tmp_path) as deployment:
        world, url, gateway, log_url = deployment.world, deployment.url, deployment.gateway, deployment.log
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

        # the operator revokes C: the gateway refuses as soon as the log answers its long poll
        problem = refused(revoke_until_refused(log_url, url, world, lambda: send(signed(world, url))), 403,
                          "passport-refused")
        assert problem["reason_code"] == "revoked"
        refused(send(signed(world, url)), 403, "passport-refused")

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


def lying(log: ServerUrl) -> AbstractContextManager[str]:
    """A ``LyingLog`` in front of ``log``, telling the truth until ``forged`` is set."""
    LyingLog.real, LyingLog.forged = str(log), None
    return serving(LyingLog)


def test_a_log_serving_an_inconsistent_checkpoint_is_never_trusted_again(tmp_path: Path) -> None:
    with gateway_deployment(tmp_path, log_front=lying, long_poll=1) as deployment:
        world, gateway, log_url = deployment.world, deployment.gateway, deployment.log
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
    assert "stopped trusting the log" in gateway.log()
