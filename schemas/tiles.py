"""C2SP tlog-tiles resource paths (https://c2sp.org/tlog-tiles). Pure: strings and integers only.

- Merkle tiles: ``tile/<L>/<N>[.p/<W>]``; entry bundles: ``tile/entries/<N>[.p/<W>]``.
- ``<L>`` is the level, a decimal from 0 to 63 without leading zeros. A tile at level ``L`` holds
  hashes at tree height ``8 * L``: leaf hashes at level 0, roots of full level ``L - 1`` tiles above.
- ``<N>`` is the tile index in zero-padded 3-digit path elements, all but the last prefixed with
  ``x``: 1234067 is ``x001/x234/067``. Only the shortest encoding is accepted.
- ``.p/<W>`` marks a partial tile of ``W`` (1..255) hashes; a full tile has 256 and no suffix.

Tabellion adds one resource of its own, outside C2SP's ``tile/`` namespace, with the same index and width
encoding: the *statement bundle* ``statements/<N>[.p/<W>]``, the logged statements of entries ``256 N`` to
``256 N + W - 1`` with their receipts (a CBOR array of ``[index, logged statement, receipt]``, as a page of
``GET /entries``). An entry bundle holds only each entry's ``leaf_data`` (the hash of its statement), so a
follower reading static files needs these to fold the log; like tiles they never change once written.

Paths are parsed strictly: anything not produced by ``tile_path``/``entries_path`` is refused with
``InvalidParameter``, so a path maps to exactly one resource (they are cached as immutable).
"""

from __future__ import annotations

from schemas.errors import InvalidParameter

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
HASH_SIZE = 32
FULL_TILE_BYTES = TILE_WIDTH * HASH_SIZE
MAX_LEVEL = 63
MAX_INDEX = (1 << 64) - 1
_MAX_PATH_LENGTH = 128  # far above the longest valid path; refuses absurd input before splitting
_PREFIX = "tile/"
_ENTRIES = "entries"
_STATEMENTS = "statements/"


def _check_int(value: int, what: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidParameter(f"tile {what} {value!r} is not an integer in {low}..{high}")


def _encode_index(index: int) -> str:
    groups = [f"{index % 1000:03d}"]
    index //= 1000
    while index:
        groups.append(f"x{index % 1000:03d}")
        index //= 1000
    return "/".join(reversed(groups))


def _suffix(width: int) -> str:
    _check_int(width, "width", 1, TILE_WIDTH)
    return "" if width == TILE_WIDTH else f".p/{width}"


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """``tile/<L>/<N>[.p/<W>]`` of the Merkle tile ``index`` at ``level`` holding ``width`` hashes."""
    _check_int(level, "level", 0, MAX_LEVEL)
    _check_int(index, "index", 0, MAX_INDEX)
    return f"{_PREFIX}{level}/{_encode_index(index)}{_suffix(width)}"


def entries_path(index: int, width: int = TILE_WIDTH) -> str:
    """``tile/entries/<N>[.p/<W>]`` of the entry bundle ``index`` holding ``width`` entries."""
    _check_int(index, "index", 0, MAX_INDEX)
    return f"{_PREFIX}{_ENTRIES}/{_encode_index(index)}{_suffix(width)}"


def statements_path(index: int, width: int = TILE_WIDTH) -> str:
    """``statements/<N>[.p/<W>]`` of the statement bundle ``index`` holding ``width`` entries."""
    _check_int(index, "index", 0, MAX_INDEX)
    return f"{_STATEMENTS}{_encode_index(index)}{_suffix(width)}"


def _decimal(text: str, what: str, path: str) -> int:
    if not text.isascii() or not text.isdigit() or (len(text) > 1 and text[0] == "0"):
        raise InvalidParameter(f"tile path {path!r}: {what} {text!r} is not a decimal without leading zeros")
    return int(text)


def _parse_index_and_width(parts: list[str], path: str) -> tuple[int, int]:
    width = TILE_WIDTH
    if len(parts) >= 2 and parts[-2].endswith(".p"):
        width = _decimal(parts[-1], "partial width", path)
        if not 1 <= width < TILE_WIDTH:
            raise InvalidParameter(f"tile path {path!r}: a partial tile is 1 to 255 wide, not {width}")
        parts = [*parts[:-2], parts[-2][:-2]]
    if not parts:
        raise InvalidParameter(f"tile path {path!r} has no tile index")
    index = 0
    for i, group in enumerate(parts):
        digits = group[1:] if i < len(parts) - 1 and group.startswith("x") else group
        if i < len(parts) - 1 and digits == group:
            raise InvalidParameter(f"tile path {path!r}: index element {group!r} must start with 'x'")
        if len(digits) != 3 or not digits.isascii() or not digits.isdigit():
            raise InvalidParameter(f"tile path {path!r}: index element {group!r} is not 3 digits")
        index = index * 1000 + int(digits)
    if len(parts) > 1 and parts[0] == "x000":
        raise InvalidParameter(f"tile path {path!r}: the tile index has a leading zero element")
    if index > MAX_INDEX:
        raise InvalidParameter(f"tile path {path!r}: the tile index is above 2^64-1")
    return index, width


def _split(path: str, what: str) -> list[str]:
    if len(path) > _MAX_PATH_LENGTH or not path.startswith(_PREFIX):
        raise InvalidParameter(f"{what} path {path[:_MAX_PATH_LENGTH]!r} does not start with 'tile/'")
    return path[len(_PREFIX) :].split("/")


def parse_tile_path(path: str) -> tuple[int, int, int]:
    """``(level, index, width)`` of a Merkle tile path; the inverse of ``tile_path``.

    Entry-bundle paths (``tile/entries/...``) are refused here: see ``parse_entries_path``.
    """
    parts = _split(path, "tile")
    if parts[0] == _ENTRIES:
        raise InvalidParameter(f"tile path {path!r} names an entry bundle, not a Merkle tile")
    level = _decimal(parts[0], "level", path)
    if level > MAX_LEVEL:
        raise InvalidParameter(f"tile path {path!r}: level {level} is above {MAX_LEVEL}")
    index, width = _parse_index_and_width(parts[1:], path)
    return level, index, width


def parse_entries_path(path: str) -> tuple[int, int]:
    """``(index, width)`` of an entry-bundle path; the inverse of ``entries_path``."""
    parts = _split(path, "entry bundle")
    if parts[0] != _ENTRIES:
        raise InvalidParameter(f"entry bundle path {path!r} does not start with 'tile/entries/'")
    return _parse_index_and_width(parts[1:], path)


def parse_statements_path(path: str) -> tuple[int, int]:
    """``(index, width)`` of a statement-bundle path; the inverse of ``statements_path``."""
    if len(path) > _MAX_PATH_LENGTH or not path.startswith(_STATEMENTS):
        raise InvalidParameter(f"statement bundle path {path[:_MAX_PATH_LENGTH]!r} does not start with 'statements/'")
    return _parse_index_and_width(path[len(_STATEMENTS):].split("/"), path)


def level_tiles(tree_size: int, level: int) -> tuple[int, int]:
    """``(full tiles, partial tile width or 0)`` at ``level`` for a tree of ``tree_size`` leaves.

    The partial tile at level ``l`` has ``floor(tree_size / 256**l) mod 256`` hashes (tlog-tiles).
    """
    _check_int(tree_size, "tree size", 0, MAX_INDEX + 1)
    _check_int(level, "level", 0, MAX_LEVEL)
    hashes = tree_size >> (TILE_HEIGHT * level)
    return hashes >> TILE_HEIGHT, hashes & (TILE_WIDTH - 1)


def tile_width(tree_size: int, level: int, index: int) -> int:
    """The width of tile ``index`` at ``level`` in a tree of ``tree_size`` leaves (256 when full).

    Raises ``InvalidParameter`` when that tree has no such tile (empty tiles are never served).
    """
    full, partial = level_tiles(tree_size, level)
    if index < full:
        return TILE_WIDTH
    if index == full and partial:
        return partial
    raise InvalidParameter(f"a tree of {tree_size} leaves has no tile {index} at level {level}")
