"""Hypothesis: over any sequence of appends (with re-submissions), seals, merges and restarts, with any small run
size and fan-in, the entry-id index finds exactly the appended entries at their indices; on both storage
backends."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.transparency.index_world import check_index, integrate, leaf, location, open_sequencer
from transparency.log.reader import LogReader
from transparency.log.storage import LogLocation, is_postgres, open_database

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 12), st.integers(0, 4)),
        st.tuples(st.just("restart"), st.just(0), st.just(0)),
    ),
    min_size=1, max_size=14,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS, seal=st.integers(1, 6), fanin=st.integers(2, 4), data=st.data())
def test_lookups_find_exactly_the_appended_entries(
    tmp_path_factory: pytest.TempPathFactory, new_log_location: Callable[[], LogLocation],
    ops: list[tuple[str, int, int]], seal: int, fanin: int, data: st.DataObject
) -> None:
    fresh_location = new_log_location()
    database = str(fresh_location) if is_postgres(fresh_location) else None
    directory = Path(tmp_path_factory.mktemp("index")) if database else Path(fresh_location).parent
    seq = open_sequencer(directory, seal=seal, fanin=fanin, database=database)
    model: list[bytes] = []  # model[i] is the id of entry i
    fresh = 0
    for op, new, resubmitted in ops:
        if op == "restart":
            seq.stop()
            seq = open_sequencer(directory, seal=seal, fanin=fanin, database=database)
            continue
        items = [leaf(fresh + i) for i in range(new)]
        fresh += new
        if model:
            items += [model[data.draw(st.integers(0, len(model) - 1))] for _ in range(resubmitted)]
        items += data.draw(st.lists(st.sampled_from(items), max_size=2))  # twice in one batch
        order = data.draw(st.permutations(items))
        expected = {d: model.index(d) for d in order if d in model}
        for d in order:
            if d not in expected:
                expected[d] = len(model)
                model.append(d)
        results = integrate(seq, [(d, b"s") for d in order])
        assert [r.index for r in results] == [expected[d] for d in order]
        assert seq.size == len(model)
        reader = LogReader(open_database(location(directory, database), create=False))
        for i, d in enumerate(model):
            row = reader.entry_by_id(d)
            assert row is not None and row.index == i
        assert reader.entry_by_id(leaf(fresh)) is None and reader.entry_by_id(leaf(fresh + 1)) is None
        reader.db.close()
        assert check_index(location(directory, database)) == len(model)
    seq.stop()
