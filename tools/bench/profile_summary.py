"""Where a py-spy profile's samples go: per thread, the functions with most samples (self and inclusive).

    .venv/bin/python -m tools.bench.profile_summary FILE [--top 25] [--thread NAME] [--under FUNCTION]

``FILE`` holds py-spy's raw output (``py-spy record --format raw --threads``: one collapsed stack a line, its
sample count last), as ``tools.bench.registrations --profile`` writes it. A function is named ``name (file)``,
lines dropped, so that samples at different lines of one function add up. ``--under`` keeps only the samples
whose stack passes through a function whose name contains that text (say ``register_statement``).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
_FRAME_LINE = re.compile(r":\d+\)$")
_THREAD = re.compile(r"^thread \(\d+\): ")


def frames(stack: str) -> tuple[str, list[str]]:
    """The thread's name and the stack's frames (outermost first), lines dropped."""
    parts = stack.split(";")
    thread = _THREAD.sub("", parts[0]) if _THREAD.match(parts[0]) else "?"
    names = [_FRAME_LINE.sub(")", p) for p in (parts[1:] if _THREAD.match(parts[0]) else parts)]
    return thread, names


def summarize(text: str, top: int, thread_filter: str | None, under: str | None) -> str:
    by_thread: Counter[str] = Counter()
    own: Counter[tuple[str, str]] = Counter()
    inclusive: Counter[tuple[str, str]] = Counter()
    total = 0
    for line in text.splitlines():
        found = _LINE.match(line.strip())
        if found is None:
            continue
        thread, names = frames(found["stack"])
        thread = re.sub(r"_\d+$", "", thread)  # ThreadPoolExecutor names its threads prefix_0, prefix_1, ...
        if thread_filter is not None and thread_filter not in thread:
            continue
        if under is not None and not any(under in name for name in names):
            continue
        count = int(found["count"])
        total += count
        by_thread[thread] += count
        if names:
            own[thread, names[-1]] += count
        for name in set(names):
            inclusive[thread, name] += count
    out = [f"{total} samples"]
    for thread, count in by_thread.most_common():
        out.append(f"\n== {thread}: {count} samples ({100 * count / max(total, 1):.1f}% of all)")
        out.append("  self:")
        mine = [(name, n) for (t, name), n in own.most_common() if t == thread][:top]
        out += [f"    {100 * n / count:5.1f}%  {name}" for name, n in mine]
        out.append("  inclusive:")
        mine = [(name, n) for (t, name), n in inclusive.most_common() if t == thread][:top]
        out += [f"    {100 * n / count:5.1f}%  {name}" for name, n in mine]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--thread", help="only threads whose name contains this")
    parser.add_argument("--under", help="only stacks through a function whose name contains this")
    args = parser.parse_args(argv)
    print(summarize(args.file.read_text(), args.top, args.thread, args.under))  # noqa: T201 - a tool's output


if __name__ == "__main__":
    main()
