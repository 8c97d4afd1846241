"""Graphs drawn on the server: a ``graphviz.Digraph`` (the ``graphviz`` package quotes every label and
attribute) laid out by Graphviz's ``dot`` (Debian's ``graphviz``) as SVG, inlined in the page.

The SVG is made accessible: ``role="img"`` with a title naming what it shows; every node that links somewhere is an
SVG link, reachable with the keyboard. Pages also list the same facts as text, so the graph is never the only
way to read them. Without ``dot`` installed (or if it fails) the page shows the text alone.

The graphs are of logged facts, and anyone may log delegations and passports, so anyone can make a graph as large
as they like and ask for its page again and again. Laying one out costs ``dot`` CPU time that grows faster than
the graph, so the drawing is bounded four ways:

- a graph of more than ``MAX_DRAWN`` nodes and edges is not drawn: the page says in one line that it is too large
  to draw, and lists the facts as text;
- one ``dot`` runs at a time in a process (a lock); a page that cannot have it within ``DOT_WAIT_S`` shows the
  text alone, so concurrent views of large graphs cost one core, never all of them;
- the last ``CACHE_SIZE`` drawings are kept by the SHA-256 of their DOT source and title, so a page viewed again
  costs no ``dot`` run (a log is append-only: a drawing goes out of date only by the graph growing, which changes
  its source);
- ``dot`` is stopped after ``DOT_TIMEOUT_S`` (the page then shows the text alone).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

import graphviz
from markupsafe import Markup, escape

MAX_DRAWN: Final = 150  # nodes + edges of a graph that is drawn
DOT_TIMEOUT_S: Final = 3.0
DOT_WAIT_S: Final = 0.5  # how long a page waits for the one dot of the process
CACHE_SIZE: Final = 64
_PROLOGUE = re.compile(r"\A.*?(?=<svg\b)", re.S)
_SVG_OPEN = re.compile(r"<svg\b([^>]*)>")
_SVG_TITLE = re.compile(r"<title>[^<]*</title>")


def digraph(name: str) -> graphviz.Digraph:
    """A left-to-right digraph in the pages' style."""
    graph = graphviz.Digraph(name)
    graph.attr(rankdir="LR", bgcolor="transparent", fontname="sans-serif")
    graph.attr("node", shape="box", style="rounded,filled", fillcolor="#f4f6fb", color="#33415c",
               fontname="sans-serif", fontsize="11")
    graph.attr("edge", color="#33415c", fontname="sans-serif", fontsize="10")
    return graph


@dataclass(frozen=True)
class Drawing:
    """A graph drawn as inline ``svg``; or no SVG, with a one-line ``note`` saying why when the reader should know
    (too large), without one when the text alone is shown for a reason of the server's (no ``dot``, busy, failed)."""

    svg: Markup | None = None
    note: str | None = None


_DOT = threading.Lock()  # one dot at a time in the process
_DRAWN: OrderedDict[bytes, Markup] = OrderedDict()  # SHA-256 of title and source -> the SVG, least recent first
_DRAWN_LOCK = threading.Lock()


def _recalled(key: bytes) -> Markup | None:
    with _DRAWN_LOCK:
        svg = _DRAWN.get(key)
        if svg is not None:
            _DRAWN.move_to_end(key)
        return svg


def _remember(key: bytes, svg: Markup) -> None:
    with _DRAWN_LOCK:
        _DRAWN[key] = svg
        _DRAWN.move_to_end(key)
        while len(_DRAWN) > CACHE_SIZE:
            _DRAWN.popitem(last=False)


def render_svg(graph: graphviz.Digraph, title: str, size: int) -> Drawing:
    """The graph of ``size`` nodes and edges as inline SVG titled ``title``, within the bounds above."""
    if size > MAX_DRAWN:
        return Drawing(note=f"This graph of {size} nodes and arrows is too large to draw (the limit is {MAX_DRAWN}); "
                            "the table lists every one of them.")
    key = hashlib.sha256(f"{title}\0{graph.source}".encode()).digest()
    svg = _recalled(key)
    if svg is not None:
        return Drawing(svg)
    dot = shutil.which("dot")
    if dot is None or not _DOT.acquire(timeout=DOT_WAIT_S):
        return Drawing()
    try:
        svg = _recalled(key)  # drawn meanwhile by the page this one waited for
        if svg is None:
            svg = _run_dot(dot, graph.source, title)
            if svg is None:
                return Drawing()
            _remember(key, svg)
        return Drawing(svg)
    finally:
        _DOT.release()


def _run_dot(dot: str, source: str, title: str) -> Markup | None:
    try:
        done = subprocess.run([dot, "-Tsvg"], input=source.encode(), capture_output=True,  # noqa: S603
                              timeout=DOT_TIMEOUT_S, check=True)
    except (subprocess.SubprocessError, OSError):
        return None
    svg = _PROLOGUE.sub("", done.stdout.decode("utf-8", "replace"), count=1)
    label = escape(title)
    svg = _SVG_TITLE.sub("", svg, count=1)  # dot's title is the graph's name; ours names what it shows
    svg = _SVG_OPEN.sub(lambda m: f'<svg{m.group(1)} role="img" aria-label="{label}"><title>{label}</title>', svg,
                        count=1)
    return Markup(svg)  # noqa: S704 - dot's own SVG: every label in it was escaped by dot


__all__ = ["CACHE_SIZE", "DOT_TIMEOUT_S", "DOT_WAIT_S", "MAX_DRAWN", "Drawing", "digraph", "render_svg"]
