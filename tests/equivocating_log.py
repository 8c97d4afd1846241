"""A log that shows two histories: one key, two forks, a real HTTP server on 127.0.0.1 serving fork A under
``/a`` and fork B under ``/b`` (two parties, two base URLs), with the reads a monitor makes (``/checkpoint``,
``/proofs/consistency``).

    with EquivocatingLog("log.test/evil", common=5, size=9).serving() as (a_url, b_url):
        HttpLogClient(a_url).checkpoint()   # fork A at size 9
        HttpLogClient(b_url).checkpoint()   # fork B at size 9: the first 5 leaves agree, the root differs
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

from schemas import media_types
from schemas.proofs import ConsistencyProof
from tests.http_stub import QuietHandler, serving
from tests.witnessing import TestLog


class EquivocatingLog:
    def __init__(self, origin: str, common: int, size: int, size_b: int | None = None) -> None:
        self.a = TestLog(origin)
        self.a.append(common)
        self.b = self.a.fork(common, "fork-b")
        self.a.append(size - common)
        self.b.append((size_b or size) - common)

    def fork(self, name: str) -> TestLog:
        return self.a if name == "a" else self.b

    @contextmanager
    def serving(self) -> Iterator[tuple[str, str]]:
        double = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server hook
                parts = urlsplit(self.path)
                fork, _, route = parts.path.lstrip("/").partition("/")
                if fork not in ("a", "b"):
                    return self._answer(404, "text/plain", b"no such party")
                log = double.fork(fork)
                if route == "checkpoint":
                    return self._answer(200, media_types.CHECKPOINT, log.signed().encode())
                if route == "proofs/consistency":
                    query = parse_qs(parts.query)
                    old, new = int(query["old"][0]), int(query["new"][0])
                    if not 1 <= old <= new <= len(log.leaves):
                        return self._answer(400, media_types.PROBLEM_JSON,
                                            b'{"type": "urn:tabellion:error:invalid-parameter", "status": 400}')
                    proof = ConsistencyProof(old, new, log.proof(old, new))
                    return self._answer(200, media_types.CBOR, proof.encode())
                return self._answer(404, "text/plain", b"not found")

            def _answer(self, status: int, ctype: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        with serving(Handler) as base:
            yield f"{base}/a", f"{base}/b"
