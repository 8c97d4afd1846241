"""The explorer's routes, mounted on the transparency service (``tabellion serve``):

    GET /                              the latest checkpoint and the most recent entries
    GET /explorer/entries?before=N     older entries, a page at a time
    GET /explorer/entries/{ref}        one entry (by index or entry id): the statement decoded, its receipt, and
                                       the receipt checked in the browser against the pinned log key
    GET /explorer/agents/{did}         who authorised this agent: the audit bundle drawn, its download, the command
    GET /explorer/search?q=            an index, an entry id or a DID: to its page
    GET /assets/...                    style sheet and scripts

All reads go through the log's public client (``LogReads``): the same answers any follower gets. Who may read:
anyone; the log is public. No route writes.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from explorer.entries import EntryView, view
from issuer.audit import audit_bundle
from issuer.service import Issuer
from schemas.checkpoint import Checkpoint, parse_checkpoint
from schemas.errors import EntryNotFound, InvalidParameter, NotFound
from schemas.note import parse_note
from schemas.receipt import parse_receipt
from transparency.client.http import LogEntry
from transparency.client.local import LocalLogClient
from verifier.bundles import verify_bundle, verify_bundle_state
from verifier.keys import KeySet, parse_key_set
from webui.authorised import drawing, edges
from webui.identities import short_did
from webui.pages import Pages, assets

if TYPE_CHECKING:
    from transparency.service import TransparencyService

PAGE_ENTRIES: Final = 25
ENTRY_ID: Final = re.compile(r"[0-9a-f]{64}")
NAV: Final = [("/", "Latest"), ("/explorer/entries", "All entries")]
pages = Pages("explorer", {"site_name": "Tabellion log", "home": "/", "nav": NAV})


class LogReads(Protocol):
    """The log's public reads the explorer needs (``LocalLogClient`` in-process, ``HttpLogClient`` remotely)."""

    def checkpoint(self) -> str: ...
    def entries(self, start: int = 0, limit: int = 100) -> list[LogEntry]: ...
    def receipt(self, entry_id: str) -> bytes | None: ...
    def vkey(self) -> str: ...
    def key_set(self) -> bytes: ...


@dataclass(frozen=True)
class Head:
    checkpoint: Checkpoint
    text: str

    @property
    def root_hex(self) -> str:
        return self.checkpoint.root_hash.hex()


class Explorer:
    def __init__(self, log: LogReads, issuer: Issuer | None = None) -> None:
        self.log = log
        self.issuer = issuer
        self.vkey = log.vkey().strip()
        self.keys: KeySet = parse_key_set(log.key_set())

    def head(self) -> Head:
        text = self.log.checkpoint()
        return Head(parse_checkpoint(parse_note(text).text), text)

    def recent(self, before: int, count: int = PAGE_ENTRIES) -> list[EntryView]:
        start = max(0, before - count)
        return [view(e) for e in reversed(self.log.entries(start, before - start))] if before > 0 else []

    def entry(self, index: int) -> EntryView:
        page = self.log.entries(index, 1)
        if not page or page[0].leaf_index != index:
            raise EntryNotFound(f"the log has no entry {index}")
        return view(page[0])

    def index_of(self, entry_id: str) -> int:
        receipt = self.log.receipt(entry_id)
        if receipt is None:
            raise EntryNotFound(f"entry {entry_id} is still being registered")
        return parse_receipt(receipt).inclusion[0].leaf_index

    def outcome(self, index: int) -> Any:
        """What the issuer's fold made of the entry (accepted, or rejected with a code), if it has folded it."""
        if self.issuer is None:
            return None
        outcomes = self.issuer.state.outcomes
        return outcomes[index] if index < len(outcomes) else None


def _explorer(request: Request) -> Explorer:
    explorer: Explorer = request.app.state.explorer
    return explorer


def _is_index(text: str) -> bool:
    """Whether ``text`` is an index ``int`` takes: ASCII digits only (``str.isdigit`` also takes "²"), at most 19."""
    return text.isascii() and text.isdigit() and len(text) <= 19


def _before(request: Request, size: int) -> int:
    text = request.query_params.get("before")
    if text is None:
        return size
    if not _is_index(text):
        raise InvalidParameter("before must be a non-negative integer")
    return min(int(text), size)


async def home(request: Request) -> Response:
    explorer = _explorer(request)
    head = explorer.head()
    return pages.render(request, "home.html", {
        "title": "Latest checkpoint", "head": head, "entries": explorer.recent(head.checkpoint.size),
        "explorer": explorer, "vkey": explorer.vkey,
    })


async def entries(request: Request) -> Response:
    explorer = _explorer(request)
    head = explorer.head()
    before = _before(request, head.checkpoint.size)
    shown = explorer.recent(before)
    return pages.render(request, "entries.html", {
        "title": "Entries", "head": head, "entries": shown, "explorer": explorer, "before": before,
        "older": shown[-1].index if shown and shown[-1].index > 0 else None,
        "newer": min(before + PAGE_ENTRIES, head.checkpoint.size) if before < head.checkpoint.size else None,
    })


async def entry(request: Request) -> Response:
    explorer = _explorer(request)
    ref = request.path_params["ref"]
    if ENTRY_ID.fullmatch(ref):
        return RedirectResponse(f"/explorer/entries/{explorer.index_of(ref)}", 303)
    if not _is_index(ref):
        raise NotFound(f"{ref[:80]!r} is neither an entry index nor an entry id (64 hex digits)")
    shown = explorer.entry(int(ref))
    subject = shown.subject if shown.subject.startswith("did:") else None
    return pages.render(request, "entry.html", {
        "title": f"Entry {shown.index}", "entry": shown, "outcome": explorer.outcome(shown.index),
        "vkey": explorer.vkey, "subject": subject, "agent_url": _agent_url(subject) if subject else None,
    })


def _agent_url(did: str) -> str:
    return "/explorer/agents/" + quote(did, safe=":")


async def agent(request: Request) -> Response:
    explorer = _explorer(request)
    did = request.path_params["did"]
    if explorer.issuer is None:
        raise NotFound("this log serves no issuer, so it has no audit bundles")
    bundle = audit_bundle(explorer.issuer.log, did)
    verified = verify_bundle_state(bundle, explorer.keys)
    report = verify_bundle(bundle, explorer.keys)
    facts = edges(verified)
    return pages.render(request, "agent.html", {
        "title": "Who authorised this agent?", "did": did, "short": short_did(did), "report": report,
        "facts": facts, "graph": await run_in_threadpool(drawing, verified, facts, "/explorer/entries/{}"),
        "bundle_url": "/v1/audit/" + quote(did, safe=":"), "size": verified.checkpoint.size,
    })


async def search(request: Request) -> Response:
    q = request.query_params.get("q", "").strip()
    if _is_index(q) or ENTRY_ID.fullmatch(q.lower()):
        return RedirectResponse(f"/explorer/entries/{q.lower()}", 303)
    if q.startswith("did:"):
        return RedirectResponse(_agent_url(q), 303)
    raise InvalidParameter("search for an entry index, an entry id (64 hex digits) or an agent's DID")


ROUTES: list[BaseRoute] = [
    Route("/", pages.guarded(home), methods=["GET"]),
    Route("/explorer/entries", pages.guarded(entries), methods=["GET"]),
    Route("/explorer/entries/{ref}", pages.guarded(entry), methods=["GET"]),
    Route("/explorer/agents/{did:path}", pages.guarded(agent), methods=["GET"]),
    Route("/explorer/search", pages.guarded(search), methods=["GET"]),
    assets("explorer"),
]


def explorer_extension() -> Any:
    """Host the explorer in the transparency service's process, over ``LocalLogClient`` (after the issuer)."""

    @asynccontextmanager
    async def extension(app: Starlette, service: TransparencyService) -> AsyncIterator[None]:
        app.state.explorer = Explorer(LocalLogClient(service), getattr(app.state, "issuer", None))
        yield

    return extension
