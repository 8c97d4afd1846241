"""C2SP tlog-tiles paths against the spec's examples (tests/vectors/c2sp-tiles) and round trips."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.errors import InvalidParameter
from schemas.tiles import (
    FULL_TILE_BYTES,
    TILE_HEIGHT,
    TILE_WIDTH,
    entries_path,
    level_tiles,
    parse_entries_path,
    parse_statements_path,
    parse_tile_path,
    statements_path,
    tile_path,
    tile_width,
)
from tests.vectors import vectors_dir


def _examples() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((vectors_dir() / "c2sp-tiles" / "tlog_tiles_examples.json").read_text())
    return data


def test_constants_match_the_spec() -> None:
    ex = _examples()
    assert TILE_HEIGHT == 8
    assert TILE_WIDTH == ex["hashes_per_full_tile"] == 256
    assert ex["full_tile_bytes"] == FULL_TILE_BYTES == 8192


@pytest.mark.parametrize("case", _examples()["tile_index_path_encoding"], ids=lambda c: c["path"])
def test_spec_index_encoding(case: dict[str, Any]) -> None:
    assert tile_path(case["level"], case["index"]) == case["path"]
    assert parse_tile_path(case["path"]) == (case["level"], case["index"], TILE_WIDTH)
    entries = case["path"].replace(f"tile/{case['level']}/", "tile/entries/", 1)
    assert entries_path(case["index"]) == entries
    assert parse_entries_path(entries) == (case["index"], TILE_WIDTH)


@pytest.mark.parametrize(
    ("level", "index", "width", "path"),
    [
        (0, 0, 256, "tile/0/000"),
        (0, 0, 1, "tile/0/000.p/1"),
        (0, 999, 256, "tile/0/999"),
        (0, 1000, 256, "tile/0/x001/000"),
        (1, 1234067, 17, "tile/1/x001/x234/067.p/17"),
        (2, 1_000_000, 255, "tile/2/x001/x000/000.p/255"),
        (63, 0, 256, "tile/63/000"),
        (0, (1 << 64) - 1, 256, "tile/0/x018/x446/x744/x073/x709/x551/615"),
    ],
)
def test_paths_round_trip(level: int, index: int, width: int, path: str) -> None:
    assert tile_path(level, index, width) == path
    assert parse_tile_path(path) == (level, index, width)
    bundle = "tile/entries/" + path.split("/", 2)[2]
    assert entries_path(index, width) == bundle
    assert parse_entries_path(bundle) == (index, width)
    statements = "statements/" + path.split("/", 2)[2]
    assert statements_path(index, width) == statements
    assert parse_statements_path(statements) == (index, width)


@pytest.mark.parametrize("path", ["statements/", "statements/67", "statements/x000/067", "statements/000.p/256",
                                  "statements/000.p/0", "tile/statements/000", "tile/entries/000", "/statements/000"])
def test_statement_bundle_paths_are_parsed_strictly(path: str) -> None:
    with pytest.raises(InvalidParameter):
        parse_statements_path(path)


@pytest.mark.parametrize(
    ("tree_size", "expected"), [(70000, "tiles_for_tree_size_70000"), (256, "tiles_for_tree_size_256")]
)
def test_spec_tile_counts(tree_size: int, expected: str) -> None:
    counts = _examples()[expected]
    for level in range(4):
        full, partial = level_tiles(tree_size, level)
        assert full == counts.get(f"full_level{level}_tiles", 0)
        assert partial == counts.get(f"partial_level{level}_width", 0)


def test_tile_width_in_a_tree() -> None:
    assert tile_width(70000, 0, 0) == 256
    assert tile_width(70000, 0, 272) == 256
    assert tile_width(70000, 0, 273) == 112
    assert tile_width(70000, 1, 1) == 17
    assert tile_width(70000, 2, 0) == 1
    for level, index in [(0, 274), (1, 2), (2, 1), (3, 0)]:
        with pytest.raises(InvalidParameter):
            tile_width(70000, level, index)
    with pytest.raises(InvalidParameter):
        tile_width(256, 0, 1)  # no empty partial tile


_SUMDB = json.loads((vectors_dir() / "golang-sumdb" / "sumdb_tlog_golden.json").read_text())
SUMDB_STYLE = [
    p.split(" ")[0] for p in _SUMDB["sumdb_tile_path_examples (H in path, differs from C2SP tlog-tiles)"]
]


@pytest.mark.parametrize(
    "path",
    [
        *SUMDB_STYLE,  # Go sumdb puts the tile height in the path: not a C2SP tile path
        "",
        "tile",
        "tile/",
        "tile/0",
        "tile/0/",
        "/tile/0/000",
        "tiles/0/000",
        "tile/00/000",
        "tile/01/000",
        "tile/64/000",
        "tile/-1/000",
        "tile/+1/000",
        "tile/x/000",
        "tile/0/67",
        "tile/0/0067",
        "tile/0/001/234",
        "tile/0/x001/x234/x067",
        "tile/0/x000/067",
        "tile/0/x001//067",
        "tile/0/x1/067",
        "tile/0/X001/067",
        "tile/0/067/",
        "tile/0/067.p",
        "tile/0/067.p/",
        "tile/0/067.p/0",
        "tile/0/067.p/256",
        "tile/0/067.p/012",
        "tile/0/067.p/1/2",
        "tile/0/067.q/1",
        "tile/0/067.p/ 1",
        "tile/0/\uff10\uff10\uff10",
        "tile/0/x018/x446/x744/x073/x709/x551/616",
        "tile/0/" + "x999/" * 40 + "999",
        "tile/entries/000",
    ],
)
def test_malformed_tile_paths_refused(path: str) -> None:
    with pytest.raises(InvalidParameter):
        parse_tile_path(path)


@pytest.mark.parametrize(
    "path",
    ["tile/0/000", "tile/entries", "tile/entries/", "tile/entries/x000/001", "tile/entries/001.p/256"],
)
def test_malformed_entries_paths_refused(path: str) -> None:
    with pytest.raises(InvalidParameter):
        parse_entries_path(path)


@pytest.mark.parametrize(
    ("level", "index", "width"),
    [(-1, 0, 256), (64, 0, 256), (0, -1, 256), (0, 1 << 64, 256), (0, 0, 0), (0, 0, 257), (True, 0, 256)],
)
def test_out_of_range_values_refused(level: int, index: int, width: int) -> None:
    with pytest.raises(InvalidParameter):
        tile_path(level, index, width)


@given(
    level=st.integers(0, 63),
    index=st.integers(0, (1 << 64) - 1),
    width=st.integers(1, 256),
)
def test_round_trip_property(level: int, index: int, width: int) -> None:
    assert parse_tile_path(tile_path(level, index, width)) == (level, index, width)
    assert parse_entries_path(entries_path(index, width)) == (index, width)
