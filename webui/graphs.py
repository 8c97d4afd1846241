"""Graphs drawn on the server: a ``graphviz.Digraph`` (the ``graphviz`` package quotes every label and
attribute) laid out by Graphviz's ``dot`` (Debian's ``graphviz``) as SVG, inlined in the page.

The SVG is made accessible: ``role="img"`` with a title naming what it shows; every node that links somewhere is an
SVG link, reachable with the keyboard. Pages also list the same facts as text, so the graph is never the only
way to read them. Without ``dot`` installed (or if it fails) the page shows the text alone.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Final

import graphviz
from markupsafe import Markup, escape

DOT_TIMEOUT_S: Final = 10.0
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


def render_svg(graph: graphviz.Digraph, title: str) -> Markup | None:
    """The graph as inline SVG titled ``title``, or ``None`` when ``dot`` is missing or fails."""
    dot = shutil.which("dot")
    if dot is None:
        return None
    try:
        done = subprocess.run([dot, "-Tsvg"], input=graph.source.encode(), capture_output=True,  # noqa: S603
                              timeout=DOT_TIMEOUT_S, check=True)
    except (subprocess.SubprocessError, OSError):
        return None
    svg = _PROLOGUE.sub("", done.stdout.decode("utf-8", "replace"), count=1)
    label = escape(title)
    svg = _SVG_TITLE.sub("", svg, count=1)  # dot's title is the graph's name; ours names what it shows
    svg = _SVG_OPEN.sub(lambda m: f'<svg{m.group(1)} role="img" aria-label="{label}"><title>{label}</title>', svg,
                        count=1)
    return Markup(svg)  # noqa: S704 - dot's own SVG: every label in it was escaped by dot


__all__ = ["digraph", "render_svg"]
