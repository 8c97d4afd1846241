"""Reading a log from its tiles: a ``--publish-dir`` folder behind any static web server, or the service itself
(which answers on the same paths). It gives a ``LogFollower`` what it reads (``LogReadClient``), trusting none
of it: the follower checks every checkpoint's signature, every receipt, and every consistency proof against
the signed roots.

- ``checkpoint``: ``GET /checkpoint``; a static server has no long poll, so ``after``/``wait`` polls the file.
- ``entries``: from statement bundles ``statements/<N>[.p/<W>]`` (``schemas.tiles``), at the width the last
  checkpoint read gives them.
- ``consistency``: an RFC 9162 consistency proof computed here from the C2SP hash tiles ``tile/<L>/<N>``: each
  node of the proof is a perfect subtree whose root is hashed up from at most 128 hashes of one tile (the
  tlog-tiles way), or the hash of two such roots. Tiles are read at the size of the last checkpoint read,
  and kept (they never change).

A partial tile or bundle the server no longer has is read from the full one that replaced it (C2SP
tlog-tiles lets an operator delete partial tiles).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from types import TracebackType
from typing import Any

import httpx

from schemas.checkpoint import parse_checkpoint
from schemas.errors import InvalidParameter, LogRequestRefused, LogUnreachable
from schemas.note import parse_note
from schemas.proofs import ConsistencyProof
from schemas.tiles import (
    HASH_SIZE,
    TILE_HEIGHT,
    TILE_WIDTH,
    entries_path,
    statements_path,
    tile_path,
    tile_width,
)
from transparency.client.bounded import BUNDLE_DEADLINE_S, MAX_BUNDLE_BYTES, BoundedTransport
from transparency.client.http import DEFAULT_TIMEOUT_S, LogEntry, decode_entries_page, refusal
from verifier.merkle import hash_children

POLL_INTERVAL_S = 1.0
CACHED_TILES = 1024


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


class TileLogClient:
    """A client of the log published at ``base_url`` (e.g. ``http://mirror.example/log``)."""

    def __init__(
        self, base_url: str, timeout: float = DEFAULT_TIMEOUT_S, *, transport: httpx.BaseTransport | None = None,
        poll_interval: float = POLL_INTERVAL_S, max_answer_bytes: int = MAX_BUNDLE_BYTES,
        answer_deadline_s: float = BUNDLE_DEADLINE_S,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise InvalidParameter(f"log URL {base_url[:100]!r} is not an http:// or https:// URL")
        self.base_url = base_url.rstrip("/")
        self.poll_interval = poll_interval
        self.size = 0  # of the last checkpoint read: tiles and bundles are read at this size
        self._http = httpx.Client(base_url=self.base_url + "/", timeout=timeout,
                                  transport=BoundedTransport(transport, max_bytes=max_answer_bytes,
                                                             deadline_s=answer_deadline_s))
        self._tiles: OrderedDict[tuple[int, int], bytes] = OrderedDict()  # (level, index) -> hashes, widest read

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> TileLogClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- LogReadClient ----------------------------------------------------------------------------

    def checkpoint(self, after: int | None = None, wait: float | None = None) -> str:
        """The published checkpoint (unverified: the follower verifies it). With ``after``: polled until the tree
        is larger than ``after``, for up to ``wait`` seconds."""
        deadline = time.monotonic() + (wait or 0.0)
        while True:
            text = self._get("checkpoint", headers={"Cache-Control": "no-cache"}).decode("utf-8", "replace")
            size = parse_checkpoint(parse_note(text).text).size
            if after is None or size > after or time.monotonic() >= deadline:
                self.size = max(self.size, size)
                return text
            time.sleep(min(self.poll_interval, max(0.0, deadline - time.monotonic())))

    def entries(self, start: int = 0, limit: int = 100) -> list[LogEntry]:
        """Up to ``limit`` entries from ``start`` (at most to the end of its statement bundle)."""
        if start < 0 or limit < 1:
            raise InvalidParameter("start must be >= 0 and limit >= 1")
        if start >= self.size:
            return []
        index = start // TILE_WIDTH
        width = tile_width(self.size, 0, index)
        content = self._get_tile_like(statements_path(index, width), statements_path(index))
        page = decode_entries_page(content, "statement bundle")[:width]
        return [e for e in page if e.leaf_index >= start][:limit]

    def consistency(self, old: int, new: int) -> ConsistencyProof:
        """The RFC 9162 §2.1.4.1 proof that the tree of ``new`` leaves extends the tree of ``old``, from tiles."""
        if not 0 < old <= new <= self.size:
            raise InvalidParameter(f"need 0 < old <= new <= {self.size} (the last checkpoint read); got {old}, {new}")
        path: list[bytes] = []

        def subproof(m: int, start: int, end: int, whole: bool) -> None:
            if m == end - start:
                if not whole:
                    path.append(self.subtree_root(start, end))
                return
            k = _largest_power_of_two_below(end - start)
            if m <= k:
                subproof(m, start, start + k, whole)
                path.append(self.subtree_root(start + k, end))
            else:
                subproof(m - k, start + k, end, False)
                path.append(self.subtree_root(start, start + k))

        if old < new:
            subproof(old, 0, new, True)
        return ConsistencyProof(old, new, tuple(path))

    def entry_bundle(self, index: int, width: int) -> list[bytes]:
        """The ``leaf_data`` of the entries of C2SP entry bundle ``index`` (its first ``width``)."""
        return parse_entry_bundle(self._get_tile_like(entries_path(index, width), entries_path(index)))[:width]

    # --- the log's public keys, as published --------------------------------------------------------

    def vkey(self) -> str:
        return self._get("log/vkey").decode("utf-8", "replace").strip()

    def key_set(self) -> bytes:
        return self._get(".well-known/scitt-keys")

    # --- tiles ------------------------------------------------------------------------------------

    def subtree_root(self, start: int, end: int) -> bytes:
        """RFC 9162 MTH of leaves ``[start, end)`` (``start`` aligned as in a proof), from tiles."""
        width = end - start
        if width & (width - 1) == 0 and start % width == 0:
            level = width.bit_length() - 1
            return self.node(level, start >> level)
        k = _largest_power_of_two_below(width)
        return hash_children(self.subtree_root(start, start + k), self.subtree_root(start + k, end))

    def node(self, level: int, index: int) -> bytes:
        """The root of the perfect subtree of height ``level``, ``index``-th from the left: hashed up from the
        ``2 ** (level mod 8)`` hashes of one tile at tile level ``level // 8``."""
        tile_level, height = divmod(level, TILE_HEIGHT)
        first = index << height  # among the hashes at tree height 8 * tile_level
        tile, offset = divmod(first, TILE_WIDTH)
        hashes = self._tile(tile_level, tile)
        count = 1 << height
        if len(hashes) < (offset + count) * HASH_SIZE:
            raise LogRequestRefused(f"tile {tile_level}/{tile} is too short for node ({level}, {index})", status=200)
        nodes = [hashes[(offset + i) * HASH_SIZE:(offset + i + 1) * HASH_SIZE] for i in range(count)]
        while len(nodes) > 1:
            nodes = [hash_children(nodes[i], nodes[i + 1]) for i in range(0, len(nodes), 2)]
        return nodes[0]

    def _tile(self, level: int, index: int) -> bytes:
        width = tile_width(self.size, level, index)
        cached = self._tiles.get((level, index))
        if cached is not None and len(cached) >= width * HASH_SIZE:
            self._tiles.move_to_end((level, index))
            return cached
        content = self._get_tile_like(tile_path(level, index, width), tile_path(level, index))
        if len(content) < width * HASH_SIZE or len(content) % HASH_SIZE:
            raise LogRequestRefused(f"tile {level}/{index} holds {len(content)} bytes, not {width} hashes", status=200)
        self._tiles[(level, index)] = content
        if len(self._tiles) > CACHED_TILES:
            self._tiles.popitem(last=False)
        return content

    # --- plumbing ---------------------------------------------------------------------------------

    def _get_tile_like(self, path: str, full: str) -> bytes:
        """``path`` (a partial tile or bundle), else the full one (``full``) that replaced it."""
        try:
            return self._get(path)
        except LogRequestRefused as exc:
            if exc.answer_status != 404 or path == full:
                raise
        return self._get(full)

    def _get(self, path: str, **kwargs: Any) -> bytes:
        try:
            answer = self._http.get(path, **kwargs)
        except httpx.TimeoutException as exc:
            raise LogUnreachable(f"GET {self.base_url}/{path}: no answer in time ({exc})") from exc
        except httpx.HTTPError as exc:
            raise LogUnreachable(f"GET {self.base_url}/{path}: {exc}") from exc
        if answer.status_code != 200:
            raise refusal(answer)
        return answer.content


def parse_entry_bundle(content: bytes) -> list[bytes]:
    """The entries of a C2SP entry bundle: each a big-endian uint16 length, then that many bytes."""
    entries: list[bytes] = []
    position = 0
    while position < len(content):
        length = int.from_bytes(content[position:position + 2], "big")
        if position + 2 + length > len(content):
            raise LogRequestRefused("an entry bundle ends inside an entry", status=200)
        entries.append(content[position + 2:position + 2 + length])
        position += 2 + length
    return entries
