"""The learning panel's pieces: moving average, log sampling, exploration, the user count."""

from __future__ import annotations

import asyncio

import numpy as np
import orjson
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from online.dashboard import learning
from online.dashboard.learning import (
    count_users,
    exploration,
    moving_average,
    reward_series,
    state_key_pattern,
    thinned,
)
from online.dashboard.log_sample import LogEntry, complete_window
from online.dashboard.state import DashboardState
from online.redis_keys import UserKeys


def entry(ms: int, **fields: str) -> LogEntry:
    """A log entry that arrived at `ms`."""
    return LogEntry(f"{ms}-0", ms, dict(fields))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=80),
    st.integers(1, 30),
)
def test_moving_average_is_the_mean_of_the_last_window(values: list[float], window: int) -> None:
    """Position i holds the mean of values[max(0, i - window + 1) : i + 1]."""
    got = moving_average(np.array(values), window)
    want = [np.mean(values[max(0, i - window + 1) : i + 1]) for i in range(len(values))]
    assert got == pytest.approx(want, abs=1e-9)


def test_thinned_keeps_the_ends_and_at_most_the_points() -> None:
    """Evenly spaced indices, first and last included."""
    assert thinned(5, 10).tolist() == [0, 1, 2, 3, 4]
    picked = thinned(1000, 300)
    assert len(picked) <= 300 and picked[0] == 0 and picked[-1] == 999


def test_complete_window_cuts_where_a_full_partition_may_miss_entries() -> None:
    """With n = 2 per partition, a full partition whose oldest read entry is at 50 cuts there."""
    busy = [entry(90), entry(50)]  # full: anything older than 50 was not read
    quiet = [entry(70), entry(10)]  # full too, but older: the newest cut wins
    sparse = [entry(60)]  # not full: all of it was read
    merged = complete_window([busy, quiet, sparse], per_partition=2)
    assert [e.ms for e in merged] == [50, 60, 70, 90]
    assert [e.ms for e in complete_window([sparse], per_partition=2)] == [60]


def test_rewards_and_exploration_of_planted_entries() -> None:
    """Known rewards and propensities give the known mean, series, share and histogram."""
    events = [entry(1000 * i, reward=str(float(i))) for i in range(1, 5)]
    series, mean = reward_series(events)
    assert mean == 2.5 and series.t == [1.0, 2.0, 3.0, 4.0]
    assert series.moving_average == [1.0, 1.5, 2.0, 2.5]  # window 50 > 4: running means
    assert reward_series([]) == (series.model_copy(update={"t": [], "moving_average": []}), None)
    decisions = [
        entry(1, policy="egreedy:0.1", propensities=orjson.dumps([0.88, 0.0025]).decode()),
        entry(2, policy="egreedy:0.1", propensities=orjson.dumps([0.42, 1.0]).decode()),
        entry(3, policy="greedy", propensities=orjson.dumps([1.0]).decode()),
    ]
    found = exploration(decisions)
    assert (found.slots, found.explored) == (5, 2)  # 0.0025 and 0.42 are below 0.5
    assert found.policies == {"egreedy:0.1": 2, "greedy": 1}
    counts = found.histogram.counts
    assert sum(counts) == 5 and counts[0] == 1 and counts[8] == 1 and counts[17] == 1
    assert counts[19] == 2  # the last bin includes 1.0


def test_user_count_is_exact_and_bounded_per_request(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """3,000 users with state under v2 (and decoys) are counted over requests of at most
    SCAN_CALLS x SCAN_COUNT keys each: no answer before the pass ends, then exactly 3,000."""
    monkeypatch.setattr(learning, "SCAN_COUNT", 500)
    client = redis.Redis.from_url(redis_url)
    pipe = client.pipeline(transaction=False)
    for n in range(3000):
        pipe.set(UserKeys.of("movies", f"user:{n}").state(2), b"x")
        pipe.set(UserKeys.of("movies", f"user:{n}").state(1), b"x")  # another version
    for n in range(500):
        pipe.set(UserKeys.of("books", f"user:{n}").state(2), b"x")  # another model
    pipe.execute()
    client.close()

    async def passes() -> list[int | None]:
        state = DashboardState()
        state.connect(redis_url)
        counts = [(await count_users(state, "movies", 2)).count for _ in range(12)]
        for _ in range(8):  # two viewers at once: one advances the pass, never both
            both = await asyncio.gather(*(count_users(state, "movies", 2) for _ in range(2)))
            counts += [counted.count for counted in both]
        await state.stop()
        return counts

    counts = asyncio.run(passes())
    # 6,500 keys at <= 2,000 per request: at least 3 requests before the first result
    assert counts[:3] == [None, None, None] and counts[-1] == 3000
    assert set(counts) <= {None, 3000}


def test_state_key_pattern_matches_only_that_version() -> None:
    """The glob names every partition of the model and the one version."""
    assert state_key_pattern("movies", 7) == "velox:{movies|p*}:u:*:v7:state"
