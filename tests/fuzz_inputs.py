"""Malformed requests for every route of the service (the log's and the issuer's, as ``tabellion serve`` mounts
them): shared by ``tests/e2e/test_fuzz.py`` (a few thousand, in the suite) and ``tools/fuzz.py`` (10^5 and more).

``seed_world(url)`` logs a small identity world (operator, agent, passport, delegation, claim) and returns valid
material to mutate; ``cases(seeds, count, seed)`` yields ``count`` requests, deterministic for a seed, cycling
over every route: path parameters and integer query parameters with Unicode digits, huge, negative or empty
numbers and odd text; bodies of random bytes, truncated or bit-flipped signed statements, deeply nested or
oversized CBOR and JSON, JSON of the wrong shape (also re-signed token requests); wrong, missing and odd content
types; oversized and numerous headers; unknown paths and methods; and whole requests on a raw socket (broken
request lines, bad ``Content-Length`` and chunking, a body shorter than declared). ``send`` sends one and returns
the status (``0``: the connection closed with no answer) and whether the answer was a problem document.
"""

from __future__ import annotations

import json
import random
import re
import socket
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import cbor2
import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from issuer.routes import ROUTES as ISSUER_ROUTES
from issuer.statements import (
    PassportRequest,
    Signer,
    agent_consent,
    agent_passport,
    claim_approval,
    claim_submission,
    delegation,
    key_rotation,
    operator_registration,
    revocation,
)
from issuer.tokens import new_nonce, sign_request
from schemas.base64url import b64url
from schemas.cose_sign1 import decode_sign1
from tests.cose_builder import sign1
from transparency.http.routes import ROUTES as LOG_ROUTES
from verifier.keys import parse_key_set

PROBLEM_TYPES = ("application/problem+json", "application/concise-problem-details+cbor")
COSE = "application/cose"
JSON = "application/json"
SCOPE = {"services": ["mail"], "actions": ["read", "list"], "resources": ["mail/inbox/*"]}
_PARAM = re.compile(r"\{([a-z_]+)(?::[a-z]+)?\}")


@dataclass(frozen=True)
class Case:
    """One request: ``method path?query`` with ``headers`` and ``body``, or ``raw`` bytes sent on a socket."""

    kind: str  # what the case exercises (for the report)
    method: str = "GET"
    path: str = "/"
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    raw: bytes | None = None

    def describe(self) -> str:
        if self.raw is not None:
            return f"[{self.kind}] raw {self.raw[:160]!r}"
        query = urllib.parse.urlencode(self.query)[:160]
        return f"[{self.kind}] {self.method} {self.path[:160]}{'?' + query if query else ''} {self.body[:80]!r}"


@dataclass
class Seeds:
    """Valid material from a small logged world, to mutate."""

    statements: dict[str, bytes]  # statement type -> a validly signed statement of it
    entries: list[str]
    dids: list[str]
    kids: list[str]
    agent: Signer
    delegation: str
    credential: dict[str, Any]


def routes() -> list[tuple[str, str]]:
    """``(method, path template)`` of every route ``tabellion serve`` mounts."""
    table = []
    for route in [*LOG_ROUTES, *ISSUER_ROUTES]:
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD":
                table.append((method, str(getattr(route, "path", ""))))
    return table


# --- the world to mutate --------------------------------------------------------------------------------------------


def seed_world(url: str) -> Seeds:
    """Log operator -> agent (passport, delegation, claim) over HTTP; valid statements of every type to mutate."""
    http = httpx.Client(base_url=url, timeout=60)
    operator, agent = Signer(Ed25519PrivateKey.generate()), Signer(Ed25519PrivateKey.generate())
    next_key = Ed25519PrivateKey.generate()
    now = int(time.time())

    def logged(path: str, statement: bytes) -> str:
        answer = http.post(path, content=statement, headers={"content-type": COSE})
        if answer.status_code != 201:
            raise RuntimeError(f"seeding: POST {path} answered {answer.status_code}: {answer.text[:300]}")
        ident: str = answer.json()["entry"]
        return ident

    registration = operator_registration(operator, "fuzz", next_key)
    consent = agent_consent(agent, operator.identity)
    passport = agent_passport(operator, PassportRequest(agent.identity, "software", "sha256:" + "ab" * 32, "EU",
                                                        "sha256:" + "cd" * 32, "https://issuer.example/status/1", 0))
    grant = delegation(operator, agent.identity, SCOPE, not_after=now + 86400, max_depth=0)
    claim = claim_submission(agent, "fuzz-claim", "fuzz", "mail", SCOPE)
    entries = [logged("/registry/operators", registration), logged("/registry/consents", consent),
               logged("/api/agent/issue", passport),
               logged("/v1/delegations", grant), logged("/v1/claims", claim)]
    statements = {
        "operator-registration": registration, "agent-passport": passport, "delegation": grant,
        "agent-consent": consent, "claim-submission": claim, "claim-approval": claim_approval(operator, entries[4]),
        "revocation": revocation(operator, agent.identity, "keyCompromise"),
        "key-rotation": key_rotation(operator.identity, next_key, sequence=1, previous=entries[0],
                                     next_key=Ed25519PrivateKey.generate()),
        "plain": sign1(Ed25519PrivateKey.generate(), None),
    }
    kids = [b64url(kid) for kid in parse_key_set(http.get("/.well-known/scitt-keys").content)]
    credential = json.loads(decode_sign1(passport).payload or b"{}")
    http.close()
    return Seeds(statements, entries, [operator.identity, agent.identity], kids, agent, entries[3], credential)


# --- values ---------------------------------------------------------------------------------------------------------

NUMBERS = ["²", "³", "¹", "٣", "١٢", "۵", "߀", "०", "𝟗", "Ⅻ", "½", "9" * 19, "9223372036854775807",
           "9223372036854775808", "18446744073709551616", "1" * 30, "1" * 5000, "-1", "-0", "+1", "", " ", " 1",
           "1 ", "1.0", "1e3", "0x10",
           "1_000", "00", "0", "1", "2", "30", "31", "1000", "1001", "NaN", "inf", "\x00", "%00", "1%00"]
TEXTS = ["", " ", "a", "did:", "did:key:", "did:key:z6Mk", "did:web:", "did:web:%00", "did:web:localhost",
         "did:example:x", "²" * 64, "0" * 64, "f" * 64, "F" * 64, "g" * 64, "a" * 5000, "../../etc/passwd", "..",
         "%2e%2e", "%ZZ", "%", "\x00", "\u202e", "😀" * 10, "\ud7ff", "a/b", "a//b", "a?b", "a#b", "a;b", "*", "{}",
         "[]", "null", "true", "mail", "mail/*", "read", "approve", "reject", "revoke", "did:key:z" + "1" * 200]


def _mutate(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
    b = bytearray(data)
    choice = rng.randrange(9)
    if choice == 0:
        return bytes(b[:rng.randrange(len(b))])
    if choice == 1:
        for _ in range(rng.randrange(1, 9)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        return bytes(b)
    if choice == 2:
        i = rng.randrange(len(b) + 1)
        return bytes(b[:i]) + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 32))) + bytes(b[i:])
    if choice == 3:
        i = rng.randrange(len(b))
        return bytes(b[:i]) + bytes(b[i + rng.randrange(1, 64):])
    if choice == 4:
        i, j = sorted(rng.randrange(len(b) + 1) for _ in range(2))
        return bytes(b[:j]) + bytes(b[i:j]) * rng.randrange(2, 5) + bytes(b[j:])
    if choice == 5:
        b[rng.randrange(len(b))] = rng.choice((0x00, 0xff, 0x1f, 0x5f, 0x7f, 0x9f, 0xbf, 0xdf, 0xfb))
        return bytes(b)
    if choice == 6:
        return bytes(b) + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
    if choice == 7:
        return bytes(b) * 2
    i = rng.randrange(len(b))
    return bytes(b[:i]) + _deep_cbor(rng) + bytes(b[i:])


def _deep_cbor(rng: random.Random) -> bytes:
    depth = rng.choice((30, 400, 401, 1000, 100_000))
    return rng.choice((
        b"\x81" * depth + b"\x00", b"\x9f" * depth, b"\xa1\x00" * depth + b"\x00", b"\xd8\x18" * depth + b"\x00",
        b"\xc6" * depth + b"\x00", b"\xd9\xd9\xf7" * depth + b"\x00",
    ))


def _cbor_bodies(rng: random.Random) -> bytes:
    return rng.choice((
        lambda: bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300))),
        lambda: _deep_cbor(rng),
        lambda: b"\xd2\x84" + rng.choice((b"\x5b", b"\x7b", b"\x9b", b"\xbb")) + b"\xff" * 8,
        lambda: b"\xd2\x84\x40\xa0\x40\x40",
        lambda: b"\xd2" + cbor2.dumps([rng.choice((b"", b"\xa0", b"\xa1\x01\x27")), {}, b"x", b"\x00" * 64]),
        lambda: cbor2.dumps(cbor2.CBORTag(18, [cbor2.dumps({1: -8, 4: b"\x00" * rng.randrange(70),
                                                            15: {1: rng.choice(TEXTS), 2: rng.choice(TEXTS)},
                                                            3: rng.choice(TEXTS)}), {}, b"{}", b"\x00" * 64])),
        lambda: b"\xd2\x84" + b"\x58\x20" + bytes(32) + b"\xa0\xf6\x58\x40" + bytes(64),
        lambda: b"\xfb" + bytes(8),
        lambda: b"\x1c",
        lambda: b"\xd2\x84\x41\xa0\xa0\x40\x40" + b"\x00" * rng.randrange(0, 20),
    ))()


def _json_value(rng: random.Random, depth: int = 0) -> Any:
    scalars = [None, True, False, -1, 0, 2**53, 2**64, 1.5, rng.choice(TEXTS), rng.choice(NUMBERS)]
    roll = rng.randrange(len(scalars) + (2 if depth < 3 else 0))
    if roll < len(scalars):
        return scalars[roll]
    if roll == len(scalars):
        return [_json_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(TEXTS)[:40]: _json_value(rng, depth + 1) for _ in range(rng.randrange(4))}


def _token_request(rng: random.Random, seeds: Seeds) -> bytes:
    body: dict[str, Any] = {"agent": seeds.agent.identity, "task_id": "t", "tools": ["read"], "service": "mail",
                            "resource": "mail/inbox/*", "delegation": seeds.delegation, "ttl": 60,
                            "created": int(time.time()), "nonce": new_nonce()}
    for _ in range(rng.randrange(0, 3)):
        name = rng.choice([*body, "extra", "signature"])
        if rng.random() < 0.2:
            body.pop(name, None)
        else:
            body[name] = _json_value(rng)
    if rng.random() < 0.7:
        try:
            body = sign_request(seeds.agent.ed25519, body)
        except Exception:  # noqa: BLE001 - values the canonical JSON cannot take: send unsigned
            body["signature"] = "AAAA"
    return json.dumps(body).encode()


def _json_bodies(rng: random.Random, seeds: Seeds, path: str) -> bytes:
    deep = rng.choice((31, 32, 33, 1000, 100_000))
    return rng.choice((
        lambda: b"[" * deep + b"]" * deep,
        lambda: b'{"a":' * deep + b"1" + b"}" * deep,
        lambda: b"[" * deep,
        lambda: json.dumps({"agent": "did:x", "credential": _json_value(rng)}).encode(),
        lambda: json.dumps(_json_value(rng)).encode(),
        lambda: b'{"agent": ' + b"9" * rng.choice((10, 4300, 4301, 20000)) + b"}",
        lambda: b'{"agent": NaN, "credential": Infinity}',
        lambda: b'{"agent": "did:x", "agent": "did:y"}',
        lambda: '{"agent": "did:\udcff"}'.encode("utf-8", "surrogatepass"),
        lambda: b"\xef\xbb\xbf{}",
        lambda: json.dumps({"agent": "x"}).encode("utf-16"),
        lambda: bytes(rng.randrange(256) for _ in range(rng.randrange(0, 200))),
        lambda: _mutate(rng, json.dumps({"agent": seeds.dids[1], "credential": seeds.credential}).encode()),
        lambda: json.dumps({"agent": seeds.dids[1], "credential": _mutated_json(rng, seeds.credential)}).encode(),
        lambda: _token_request(rng, seeds),
        lambda: _mutate(rng, _token_request(rng, seeds)),
    ))()


def _mutated_json(rng: random.Random, value: Any) -> Any:
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(list(value))
        return {**value, key: _mutated_json(rng, value[key])}
    if isinstance(value, list) and value and rng.random() < 0.8:
        i = rng.randrange(len(value))
        return [*value[:i], _mutated_json(rng, value[i]), *value[i + 1:]]
    return _json_value(rng)


# --- requests -------------------------------------------------------------------------------------------------------


def _path_value(rng: random.Random, seeds: Seeds, name: str) -> str:
    pool: list[str] = list(TEXTS) + NUMBERS[:20]
    if name in ("entry_id", "claim"):
        pool += seeds.entries + [e.upper() for e in seeds.entries] + [e[:-1] + "²" for e in seeds.entries]
    elif name == "kid":
        pool += seeds.kids + [k + "=" for k in seeds.kids] + [k[:-1] for k in seeds.kids]
    elif name in ("did", "operator"):
        pool += seeds.dids + [d + "#key-1" for d in seeds.dids] + [d[:-1] for d in seeds.dids] + ["did:web:a:b:c"]
    elif name == "decision":
        pool += ["approve", "reject", "revoke", "APPROVE", "approved"]
    elif name == "path":
        pool += ["0/000", "0/000.p/1", "1/000", "entries/000", "entries/000.p/4", "0/x001/000", "0/x000/001",
                 "64/000", "0/000.p/0", "0/000.p/256", "0/000.p/²", "0/00²", "entries/x" + "9" * 30 + "/000"]
    value = rng.choice(pool)
    if rng.random() < 0.5:
        value = urllib.parse.quote(value, safe="/:" if name in ("did", "operator", "path") else "")
    else:  # as it is, but a URL cannot carry control characters
        value = "".join(urllib.parse.quote(c) if ord(c) < 0x20 or ord(c) == 0x7f else c for c in value)
    return value or "x"


def _query(rng: random.Random, path: str, seeds: Seeds) -> list[tuple[str, str]]:
    names = {"/entries": ["start", "limit"], "/checkpoint": ["after", "wait"], "/proofs/consistency": ["old", "new"],
             "/v1/claims/approved": ["after", "limit"], "/v1/verify": ["agent", "service", "action", "resource"]}
    query = []
    for name in names.get(path, []):
        if rng.random() < 0.15:
            continue  # missing
        if path == "/v1/verify":
            query.append((name, rng.choice([*TEXTS, *seeds.dids])))
        else:
            query.append((name, rng.choice(NUMBERS)))
        if rng.random() < 0.05:
            query.append((name, rng.choice(NUMBERS)))  # repeated
    if path == "/checkpoint" and any(n == "after" for n, _ in query):
        # a well-formed long poll past the tree waits up to 30 s: keep the waits at 0 or malformed
        query = [(n, v) for n, v in query if n != "wait"]
        query.append(("wait", rng.choice(["0", "²", "-1", "", "x", "1" * 30])))
    if rng.random() < 0.1:
        query.append((rng.choice(TEXTS)[:30] or "x", rng.choice(TEXTS)[:30]))
    return query


def _headers(rng: random.Random, ctype: str | None) -> list[tuple[str, str]]:
    headers = []
    roll = rng.random()
    if roll < 0.6 and ctype is not None:
        headers.append(("content-type", ctype))
    elif roll < 0.8:
        headers.append(("content-type", rng.choice((
            COSE, JSON, "application/cose; charset=utf-8", "APPLICATION/COSE", "application/json ;", "text/plain",
            "application/cbor", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", "",
            ";", "application/json; charset=\"", "*/*", "application/" + "x" * 2000))))
    if rng.random() < 0.03:
        headers.append(("x-large", "a" * rng.choice((4000, 8000, 20000))))
    if rng.random() < 0.03:
        headers += [(f"x-h{i}", "v") for i in range(rng.choice((50, 150)))]
    if rng.random() < 0.05:
        headers.append(("accept", rng.choice(("application/json", "*/*", "text/html", "", "\u00e9"))))
    return headers


def _raw(rng: random.Random, host: str) -> bytes:
    target = rng.choice(["/checkpoint", "/entries", "/v1/tokens", "/api/agent/verify", "/nope"])
    h = f"Host: {host}\r\n"
    return rng.choice((
        lambda: f"GET {target}?after=\xb2&wait=0 HTTP/1.1\r\n{h}\r\n".encode("latin-1"),
        lambda: f"GET {target}?start=\xb9 HTTP/1.1\r\n{h}\r\n".encode("latin-1"),
        lambda: b"GET /" + b"a" * rng.choice((1000, 20000, 70000)) + f" HTTP/1.1\r\n{h}\r\n".encode(),
        lambda: f"GARBAGE\r\n{h}\r\n".encode(),
        lambda: f"GET {target} HTTP/9.9\r\n{h}\r\n".encode(),
        lambda: f"get {target} HTTP/1.1\r\n{h}\r\n".encode(),
        lambda: f"GET {target}\r\n\r\n".encode(),
        lambda: f"GET {target} HTTP/1.1\r\n{h}NoColon\r\n\r\n".encode(),
        lambda: f"GET {target} HTTP/1.1\r\n{h}X: a\r\n folded\r\n\r\n".encode(),
        lambda: f"POST {target} HTTP/1.1\r\n{h}Content-Length: -1\r\n\r\n".encode(),
        lambda: f"POST {target} HTTP/1.1\r\n{h}Content-Length: 1,2\r\n\r\nx".encode(),
        lambda: f"POST {target} HTTP/1.1\r\n{h}Content-Length: {'9' * rng.choice((20, 5000))}\r\n\r\nx".encode(),
        lambda: f"POST {target} HTTP/1.1\r\n{h}Content-Length: ²\r\n\r\nx".encode(),
        lambda: f"POST {target} HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n".encode(),
        lambda: (f"POST {target} HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
                 "0\r\n\r\n").encode(),
        lambda: (f"POST {target} HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\nContent-Type: {JSON}\r\n\r\n"
                 f"{'f' * 20}\r\n").encode(),
        lambda: f"POST {target} HTTP/1.1\r\n{h}Content-Type: {COSE}\r\nContent-Length: 50\r\n\r\nshort".encode(),
        lambda: f"POST {target} HTTP/1.1\r\n{h}Content-Type: {JSON}\r\nContent-Length: 50\r\n\r\n{{\"a\"".encode(),
        lambda: f"POST {target} HTTP/1.1\r\n{h}Expect: 100-continue\r\nContent-Length: 2\r\n\r\n{{}}".encode(),
        lambda: f"GET {target} HTTP/1.1\r\n{h}Content-Length: 5\r\n\r\nhello".encode(),
        lambda: f"GET {target} HTTP/1.0\r\n\r\n".encode(),
        lambda: f"GET http://evil.example{target} HTTP/1.1\r\n{h}\r\n".encode(),
        lambda: f"GET {target} HTTP/1.1\r\n{h}{h}\r\n".encode(),
        lambda: f"CONNECT {host} HTTP/1.1\r\n{h}\r\n".encode(),
        lambda: f"GET {target} HTTP/1.1\r\n{h}\r\n".encode() + bytes(rng.randrange(256) for _ in range(64)),
        lambda: bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))) + b"\r\n\r\n",
    ))()


def cases(seeds: Seeds, count: int, seed: int = 0, host: str = "127.0.0.1") -> Iterator[Case]:
    """``count`` requests, cycling over every route (then unknown paths and raw requests), deterministic for
    ``seed``."""
    rng = random.Random(seed)
    table = routes()
    extra: list[Callable[[], Case]] = [
        lambda: Case("unknown path", rng.choice(("GET", "POST")), "/" + _path_value(rng, seeds, "path")),
        lambda: Case("unknown method", rng.choice(("PUT", "DELETE", "PATCH", "OPTIONS", "TRACE")),
                     rng.choice(table)[1].split("{")[0]),
        lambda: Case("raw request", raw=_raw(rng, host)),
    ]
    for n in range(count):
        slot = n % (len(table) + len(extra))
        if slot >= len(table):
            yield extra[slot - len(table)]()
            continue
        method, template = table[slot]
        path = _PARAM.sub(lambda m: _path_value(rng, seeds, m.group(1)), template) if "{" in template else template
        if "{" in template and rng.random() < 0.2:
            path = _PARAM.sub(lambda m: _valid_param(rng, seeds, m.group(1)), template)
        query = tuple(_query(rng, template, seeds))
        if method == "POST":
            json_route = template in ("/v1/tokens", "/api/agent/verify")
            ctype = JSON if json_route else COSE
            if json_route:
                body = _json_bodies(rng, seeds, template)
            elif rng.random() < 0.6:
                body = _mutate(rng, rng.choice(list(seeds.statements.values())))
            elif rng.random() < 0.5:
                body = rng.choice(list(seeds.statements.values()))  # valid, perhaps of the wrong type
            else:
                body = _cbor_bodies(rng)
            yield Case(f"{method} {template}", method, path, query, tuple(_headers(rng, ctype)), body)
        else:
            yield Case(f"{method} {template}", method, path, query, tuple(_headers(rng, None)))


def _valid_param(rng: random.Random, seeds: Seeds, name: str) -> str:
    return {"entry_id": rng.choice(seeds.entries), "claim": seeds.entries[4], "kid": rng.choice(seeds.kids),
            "did": rng.choice(seeds.dids), "operator": seeds.dids[0],
            "decision": rng.choice(("approve", "reject", "revoke")),
            "path": rng.choice(("0/000.p/4", "entries/000.p/4", "0/000.p/1"))}.get(name, "x")


# --- sending --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int  # 0: the connection closed without an answer
    problem: bool  # a problem document (JSON or CBOR)


def send(client: httpx.Client, case: Case, url: str, timeout: float = 60.0) -> Answer:
    if case.raw is not None:
        return _send_raw(url, case.raw, timeout)
    headers = [(name.encode(), value.encode("utf-8")) for name, value in case.headers]  # not only ASCII: bytes
    for attempt in range(2):
        request = client.build_request(case.method, case.path, params=list(case.query) or None, headers=headers,
                                       content=case.body or None)
        try:
            answer = client.send(request)
            break
        except httpx.RemoteProtocolError:
            # the server closed a kept-alive connection after an answer that left the previous body unread (413,
            # 415...), and the client reused it: once more, on a new connection
            if attempt:
                return Answer(0, False)
    ctype = answer.headers.get("content-type", "").split(";")[0]
    return Answer(answer.status_code, ctype in PROBLEM_TYPES)


def _send_raw(url: str, data: bytes, timeout: float) -> Answer:
    split = urlsplit(url)
    with socket.create_connection((split.hostname, split.port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            head = b""
            while b"\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                head += chunk
        except OSError:
            return Answer(0, False)
    match = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    if match is None:
        return Answer(0, False)
    return Answer(int(match.group(1)), any(t.encode() in head for t in PROBLEM_TYPES))
