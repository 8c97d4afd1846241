"""Integer request parameters (query strings, path segments), parsed strictly: shared by the log's routes and
the issuer's.

Only ASCII digits are a number here: ``str.isdigit`` also accepts superscripts and other Unicode digits that
``int`` refuses, and a number of any length would reach SQLite (64-bit signed integers) or ``int``'s
4300-digit limit. Every integer parameter goes through ``parse_int``: at most ``MAX_DIGITS`` ASCII digits,
then a range; anything else is ``InvalidParameter`` (400).
"""

from __future__ import annotations

import re
from typing import Final

from starlette.requests import Request

from schemas.errors import InvalidParameter

MAX_INT64: Final = 2**63 - 1
"""The largest index, size or count a parameter may name (SQLite's INTEGER is 64-bit signed)."""
MAX_DIGITS: Final = 19  # len(str(MAX_INT64))
_DIGITS: Final = re.compile(rf"[0-9]{{1,{MAX_DIGITS}}}", re.ASCII)


def parse_int(text: str, what: str, *, low: int = 0, high: int = MAX_INT64) -> int:
    """``text`` as an integer in ``low..high``: 1 to 19 ASCII digits (leading zeros allowed), nothing else."""
    if not _DIGITS.fullmatch(text):
        raise InvalidParameter(f"{what} {text[:30]!r} is not a decimal integer of at most {MAX_DIGITS} ASCII digits")
    value = int(text)
    if not low <= value <= high:
        raise InvalidParameter(f"{what} {value} is not in {low}..{high}")
    return value


def query_int(request: Request, name: str, default: int | None = None, *, low: int = 0, high: int = MAX_INT64) -> int:
    """The query parameter ``name`` (``parse_int``), ``default`` when absent; required when there is no default."""
    text = request.query_params.get(name)
    if text is None:
        if default is None:
            raise InvalidParameter(f"the query parameter {name!r} is required")
        return default
    return parse_int(text, f"query parameter {name}", low=low, high=high)
