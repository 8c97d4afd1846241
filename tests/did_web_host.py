"""A did:web host for tests: a test CA made with ``cryptography`` and an HTTPS server on 127.0.0.1, in a thread.

    ca = TestCa.create(tmp_path / "ca")      # ca.cert_path: the PEM bundle the log trusts (did_web_ca_file)
    with did_web_host(ca) as host:           # a certificate for localhost and 127.0.0.1 issued by ``ca``
        did = host.did("alice")              # did:web:localhost%3A<port>:alice
        host.put(did, document)              # GET https://localhost:<port>/alice/did.json answers it
        host.requests                        # the paths asked for, in order

``put`` also takes bytes, a status, a content type and extra headers (a redirect, say); an unknown path is 404.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from issuer.dids import DID_CONTEXT
from verifier.did_web import did_web_url

DAY = datetime.timedelta(days=1)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@dataclass(frozen=True)
class TestCa:
    """A root CA in ``folder``: ``cert_path`` is its certificate (PEM), what a client trusts."""

    __test__ = False  # not a pytest test class

    folder: Path
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def cert_path(self) -> Path:
        return self.folder / "ca.pem"

    @classmethod
    def create(cls, folder: Path, name: str = "Tabellion test CA") -> TestCa:
        folder.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name)).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - DAY).not_valid_after(now + DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        ca = cls(folder, key, cert)
        ca.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return ca

    def issue(self, name: str = "localhost") -> tuple[Path, Path]:
        """A server certificate for ``localhost`` and 127.0.0.1: (certificate PEM path, key PEM path)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        san = x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                           x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))])
        cert = (
            x509.CertificateBuilder().subject_name(_name(name)).issuer_name(self.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - DAY).not_valid_after(now + DAY)
            .add_extension(san, critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        cert_path = self.folder / f"{name}-{cert.serial_number}.pem"
        key_path = cert_path.with_suffix(".key")
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(_pem(key))
        return cert_path, key_path


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]
    delay_s: float = 0.0


@dataclass
class DidWebHost:
    port: int
    answers: dict[str, Answer] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"https://localhost:{self.port}"

    def did(self, *path: str) -> str:
        return f"did:web:localhost%3A{self.port}" + "".join(f":{segment}" for segment in path)

    def put(self, did_or_path: str, document: dict[str, Any] | bytes, *, status: int = 200,
            content_type: str = "application/did+json", headers: dict[str, str] | None = None,
            delay_s: float = 0.0) -> None:
        path = urlsplit(did_web_url(did_or_path)).path if did_or_path.startswith("did:") else did_or_path
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        self.answers[path] = Answer(status, body, {"Content-Type": content_type, **(headers or {})}, delay_s)


def did_document(did: str, multikey: str, *, relationship: str = "assertionMethod") -> dict[str, Any]:
    """A DID document listing ``multikey`` (Multikey) under ``relationship``."""
    method = {"id": f"{did}#key-1", "type": "Multikey", "controller": did, "publicKeyMultibase": multikey}
    return {"@context": list(DID_CONTEXT), "id": did, "verificationMethod": [method], relationship: [method["id"]]}


@contextmanager
def did_web_host(ca: TestCa) -> Iterator[DidWebHost]:
    """An HTTPS server with a certificate from ``ca``, serving ``host.answers`` for the length of the block."""
    cert_path, key_path = ca.issue()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    host = DidWebHost(0)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            host.requests.append(self.path)
            answer = host.answers.get(self.path, Answer(404, b"not found", {"Content-Type": "text/plain"}))
            time.sleep(answer.delay_s)
            self.send_response(answer.status)
            for name, value in {**answer.headers, "Content-Length": str(len(answer.body))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a client that hangs up (a timeout, a document over the size limit) is part of the tests

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    host.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="did-web-host", daemon=True)
    thread.start()
    try:
        yield host
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
