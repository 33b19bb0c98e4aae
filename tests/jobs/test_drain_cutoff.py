"""The training cutoff: one stream id per log partition, stored in `manifest.training_cutoff`."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feature_store.errors import SnapshotCorruptError
from feature_store.log_cutoff import LOG_START, LogCutoff, LogId

ids = st.builds(LogId, st.integers(0, 2**48), st.integers(0, 2**32))


@given(st.lists(ids, min_size=1, max_size=64))
def test_cutoff_round_trips_through_the_manifest_field(positions: list[LogId]) -> None:
    cutoff = LogCutoff.of(positions)
    assert LogCutoff.from_manifest(cutoff.to_json(), len(positions)) == cutoff


@given(ids, ids)
def test_ids_order_as_redis_orders_them(a: LogId, b: LogId) -> None:
    assert (a < b) == ((a.ms, a.seq) < (b.ms, b.seq))
    assert LogId.parse(str(a)) == a
    assert a < a.successor() and not (a < b < a.successor())


def test_includes_exactly_the_entries_up_to_the_position() -> None:
    cutoff = LogCutoff.of([LogId(5, 2), LOG_START])
    assert cutoff.includes(0, LogId(5, 2)) and cutoff.includes(0, LogId(4, 9))
    assert not cutoff.includes(0, LogId(5, 3))
    assert not cutoff.includes(1, LogId(0, 1))
    other = LogCutoff.of([LogId(6, 0), LogId(1, 1)])
    assert cutoff.lowest(other) == LogCutoff.of([LogId(5, 2), LOG_START])


@pytest.mark.parametrize("value", [None, "2024-11-23T10:00:00+00:00"])
def test_a_snapshot_without_a_log_cutoff_saw_nothing_of_the_log(value: str | None) -> None:
    assert LogCutoff.from_manifest(value, 3) == LogCutoff.start(3)


@pytest.mark.parametrize(
    "value",
    [
        "{not json",
        '{"format": "other/1", "positions": []}',
        '{"format": "velox-log-cutoff/1", "positions": ["1-0", "x"]}',
        '{"format": "velox-log-cutoff/1", "positions": ["1-0"]}',  # one partition, not three
        '{"format": "velox-log-cutoff/1"}',
    ],
)
def test_a_damaged_cutoff_is_refused(value: str) -> None:
    with pytest.raises(SnapshotCorruptError):
        LogCutoff.from_manifest(value, 3)


@pytest.mark.parametrize("text", ["", "12", "1-", "-1", "a-1", "1-2-3", "1 -2"])
def test_malformed_ids_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a stream id"):
        LogId.parse(text)
