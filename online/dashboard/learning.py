"""The learning panel: rewards over time, exploration, propensities, users with state.

From bounded samples of the feedback and decision logs (`log_sample`) and an incremental
count of the users' state keys: each request advances a SCAN of at most `SCAN_CALLS` times
`SCAN_COUNT` keys and the panel shows the last complete pass, so no request scans the whole
keyspace however large it is.

A slot counts as explored when the policy showed its item with a propensity below
`EXPLORE_THRESHOLD`: it was not the policy's majority choice for that slot (ε-greedy's
random picks, Thompson's draws that beat the usual winner; greedy never explores).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from online.dashboard.log_sample import LogEntry, latest_window, read_latest
from online.dashboard.schemas import Histogram, LearningResponse, RewardSeries, UserCount
from online.dashboard.state import DashboardState
from online.redis_keys import decisions_key, events_key, partition_tag
from online.redis_scripts import text
from online.served_model import ServedModel

EVENTS_PER_PARTITION = 32
DECISIONS_PER_PARTITION = 16
MOVING_AVERAGE = 50
MAX_POINTS = 300
EXPLORE_THRESHOLD = 0.5
PROPENSITY_BINS = 20
SCAN_COUNT = 2000
SCAN_CALLS = 4


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last `window` values at each position (of all so far, before `window`)."""
    sums = np.cumsum(values, dtype=np.float64)
    totals = sums.copy()
    totals[window:] -= sums[:-window]
    return totals / np.minimum(np.arange(1, values.size + 1), window)


def thinned(size: int, points: int) -> np.ndarray:
    """At most `points` evenly spaced indices of `range(size)`, the last one included."""
    if size <= points:
        return np.arange(size)
    return np.unique(np.linspace(0, size - 1, points).round().astype(np.int64))


def reward_series(events: list[LogEntry]) -> tuple[RewardSeries, float | None]:
    """The moving average of the events' rewards by arrival, and their mean."""
    rewards = np.array([float(e.fields["reward"]) for e in events], dtype=np.float64)
    times = np.array([e.ms / 1e3 for e in events], dtype=np.float64)
    if rewards.size == 0:
        return RewardSeries(window=MOVING_AVERAGE, t=[], moving_average=[]), None
    smooth = moving_average(rewards, MOVING_AVERAGE)
    keep = thinned(rewards.size, MAX_POINTS)
    series = RewardSeries(
        window=MOVING_AVERAGE, t=times[keep].tolist(), moving_average=smooth[keep].tolist()
    )
    return series, float(rewards.mean())


@dataclass(frozen=True)
class Exploration:
    """What the decisions' slots say: how many, how many explored, propensity histogram."""

    slots: int
    explored: int
    histogram: Histogram
    policies: dict[str, int]


def exploration(decisions: list[LogEntry]) -> Exploration:
    """Slot counts, the explored ones, the propensity histogram and the policy mix."""
    propensities: list[float] = []
    policies: dict[str, int] = {}
    for entry in decisions:
        propensities.extend(orjson.loads(entry.fields["propensities"]))
        policy = entry.fields.get("policy", "")
        policies[policy] = policies.get(policy, 0) + 1
    values = np.asarray(propensities, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, PROPENSITY_BINS + 1)
    counts, _ = np.histogram(values, bins=edges)
    return Exploration(
        slots=int(values.size),
        explored=int((values < EXPLORE_THRESHOLD).sum()),
        histogram=Histogram(edges=edges.tolist(), counts=counts.tolist()),
        policies=dict(sorted(policies.items())),
    )


@dataclass
class UserScan:
    """A running SCAN pass over one version's state keys, and the last complete count."""

    cursor: str = "0"
    running: int = 0
    scanned: int = 0
    count: int | None = None
    counted_at: float | None = None
    busy: bool = False


def state_key_pattern(model: str, version: int) -> str:
    """Glob of every user's state key under `version` (docs/redis_layout.md)."""
    tag = partition_tag(model, 0).replace("|p0}", "|p*}")
    return f"velox:{tag}:u:*:v{version}:state"


async def _advance(state: DashboardState, scan: UserScan, pattern: str) -> None:
    for _ in range(SCAN_CALLS):
        command = ("SCAN", scan.cursor, "MATCH", pattern, "COUNT", SCAN_COUNT)
        ((cursor, keys),) = await state.redis([command])
        scan.cursor, scan.running = text(cursor), scan.running + len(keys)
        scan.scanned += SCAN_COUNT
        if scan.cursor == "0":
            scan.count, scan.counted_at = scan.running, time.time()
            scan.running = scan.scanned = 0
            return


async def count_users(state: DashboardState, model: str, version: int) -> UserCount:
    """Advance the pass over `version`'s state keys by a bounded number of SCAN calls."""
    scans: dict[tuple[str, int], UserScan] = state.caches.setdefault("user_scans", {})
    scan = scans.setdefault((model, version), UserScan())
    if not scan.busy:  # another viewer's request is advancing it: show where it stands
        scan.busy = True
        try:
            await _advance(state, scan, state_key_pattern(model, version))
        finally:
            scan.busy = False
    return UserCount(
        version=version, count=scan.count, counted_at=scan.counted_at,
        pass_keys_scanned=scan.scanned,
    )  # fmt: skip


@dataclass(frozen=True)
class _Samples:
    """What the learning panel computes from the log samples (off the event loop)."""

    events: int
    decisions: int
    since: float | None
    rewards: RewardSeries
    reward_mean: float | None
    exploration: Exploration


def _assemble(events_raw: list[list[Any]], decisions_raw: list[list[Any]]) -> _Samples:
    events = latest_window(events_raw, EVENTS_PER_PARTITION)
    decisions = latest_window(decisions_raw, DECISIONS_PER_PARTITION)
    rewards, mean = reward_series(events)
    starts = [sample[0].ms / 1e3 for sample in (events, decisions) if sample]
    return _Samples(len(events), len(decisions), min(starts) if starts else None, rewards,
                    mean, exploration(decisions))  # fmt: skip


async def learning(state: DashboardState, served: ServedModel) -> LearningResponse:
    """The learning panel of one served model."""
    events = await read_latest(state, events_key, served.name, EVENTS_PER_PARTITION)
    decisions = await read_latest(state, decisions_key, served.name, DECISIONS_PER_PARTITION)
    found = await asyncio.to_thread(_assemble, events, decisions)
    explored = found.exploration
    return LearningResponse(
        model=served.name,
        version=served.version,
        events=found.events,
        decisions=found.decisions,
        since=found.since,
        reward_mean=found.reward_mean,
        rewards=found.rewards,
        slots=explored.slots,
        explored_slots=explored.explored,
        explored_share=explored.explored / explored.slots if explored.slots else None,
        explore_threshold=EXPLORE_THRESHOLD,
        propensities=explored.histogram,
        policies=explored.policies,
        users_with_state=await count_users(state, served.name, version=served.version),
    )
