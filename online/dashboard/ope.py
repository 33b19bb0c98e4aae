"""The off-policy panel: IPS, SNIPS and DR estimates of candidate policies on recent traffic.

Rows are the recent rewards that joined a /predict answer (their feedback-log entries carry
the propensity the answer showed the item with), matched to the answer's decision-log entry
for the slot's context: the items of the earlier slots, excluded from what the target could
choose. As in `velox evaluate-policy`, the target acts from the served snapshot's priors (so
it is stationary) and DR's reward model is the prior's mean score clipped to the logged
rewards' range. The Redis reads are bounded (`log_sample`); the estimate runs in a thread on
at most `MAX_ROWS` rows (fewer on large catalogs: `SCORE_BUDGET`) and is cached for `CACHE_S`
per (model, version, policy).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from online.dashboard.log_sample import LogEntry, latest_window, read_latest
from online.dashboard.schemas import OpeEstimate, OpeResponse
from online.dashboard.state import DashboardState
from online.redis_keys import decisions_key, events_key
from online.served_model import ServedModel
from velox.ope import Estimate, doubly_robust, ips, snips
from velox.ope.target import action_distribution
from velox.policies import Policy, ThompsonSampling
from velox.posterior import UserPosterior
from velox.scoring import score_items

FloatArray = NDArray[np.float64]
CANDIDATES = ("greedy", "egreedy:0.1", "thompson", "linucb:1.0")
"""The policies the page estimates, besides the one being served."""
EVENTS_PER_PARTITION = 32
DECISIONS_PER_PARTITION = 32
MAX_ROWS = 400
MIN_ROWS = 20
THOMPSON_DRAWS = 100
SCORE_BUDGET = 5_000_000
"""Item scores one estimate may compute (rows times catalog size, times draws for Thompson):
~0.1 s of one core. Large catalogs get fewer rows (at least `MIN_ROWS`); `rows` tells."""
BOOTSTRAP = 200
CONFIDENCE = 0.95
CACHE_S = 60.0
ROWS_CACHE_S = 5.0
MAX_CACHED = 32


@dataclass(frozen=True)
class LoggedSlot:
    """One rewarded slot: who, what, the reward, its propensity and the slot's context."""

    user: str
    item: str
    reward: float
    propensity: float
    slot: int
    slate_size: int
    earlier: tuple[str, ...]
    policy: str


def logged_slots(events: list[LogEntry], decisions: list[LogEntry]) -> list[LoggedSlot]:
    """The last `MAX_ROWS` rewarded slots whose answer is among `decisions`."""
    answers = {entry.fields["prediction_id"]: entry.fields for entry in decisions}
    rows = []
    for event in events:
        fields = event.fields
        answer = answers.get(fields.get("prediction_id", ""))
        if answer is None or not fields.get("propensity"):
            continue
        items: list[str] = orjson.loads(answer["items"])
        if fields["item_id"] not in items:
            continue
        slot = items.index(fields["item_id"])
        rows.append(
            LoggedSlot(
                user=fields["user_id"], item=fields["item_id"], reward=float(fields["reward"]),
                propensity=float(fields["propensity"]), slot=slot, slate_size=len(items),
                earlier=tuple(items[:slot]), policy=answer.get("policy", ""),
            )
        )  # fmt: skip
    return rows[-MAX_ROWS:]


def estimate(served: ServedModel, policy: Policy, rows: list[LoggedSlot]) -> list[Estimate]:
    """IPS, SNIPS and DR of `policy` on `rows` (rows of items the snapshot lacks dropped)."""
    index = served.snapshot.item_index
    rows = [r for r in rows if r.item in index and all(e in index for e in r.earlier)]
    items = served.snapshot.items
    per_row = items.n * (THOMPSON_DRAWS if isinstance(policy, ThompsonSampling) else 1)
    rows = rows[-max(MIN_ROWS, SCORE_BUDGET // per_row) :]
    if not rows:
        return []
    rewards = np.array([row.reward for row in rows])
    low, high = float(rewards.min()), float(rewards.max())
    rng = np.random.default_rng(0)
    columns = np.zeros((3, len(rows)))
    heads: dict[str, tuple[UserPosterior, FloatArray]] = {}
    for n, row in enumerate(rows):
        if row.user not in heads:
            prior = served.prior(row.user)
            heads[row.user] = (prior, np.clip(score_items(items, prior.mean()), low, high))
        posterior, predicted = heads[row.user]
        pi = action_distribution(
            policy, items, posterior, slot=row.slot, slate_size=row.slate_size,
            exclude=np.array([index[e] for e in row.earlier], dtype=np.intp),
            draws=THOMPSON_DRAWS, rng=rng,
        )  # fmt: skip
        item = index[row.item]
        columns[:, n] = (pi[item], predicted[item], float(pi @ predicted))
    propensity = np.array([row.propensity for row in rows])
    boot: dict[str, Any] = {"n_boot": BOOTSTRAP, "confidence": CONFIDENCE, "seed": 0}
    return [
        ips(propensity, columns[0], rewards, **boot),
        snips(propensity, columns[0], rewards, **boot),
        doubly_robust(propensity, columns[0], rewards, columns[1], columns[2], **boot),
    ]


def _finite(value: float) -> float | None:
    return value if np.isfinite(value) else None


def _response(
    served: ServedModel, spec: str, rows: list[LoggedSlot], found: list[Estimate], began: float
) -> OpeResponse:
    policies: dict[str, int] = {}
    for row in rows:
        policies[row.policy] = policies.get(row.policy, 0) + 1
    note = None
    if not found:
        note = "no rewarded /predict answers in the recent logs yet"
    return OpeResponse(
        model=served.name,
        version=served.version,
        policy=spec,
        rows=found[0].n if found else 0,
        logged_policies=dict(sorted(policies.items())),
        logged_mean_reward=float(np.mean([row.reward for row in rows])) if rows else None,
        estimates=[
            OpeEstimate(
                estimator=e.estimator,
                value=_finite(e.value),
                ci_low=_finite(e.ci_low),
                ci_high=_finite(e.ci_high),
                confidence=e.confidence,
                ess=e.ess,
            )
            for e in found
        ],
        computed_at=time.time(),
        compute_s=time.perf_counter() - began,
        note=note,
    )


def _slots_of(events: list[list[Any]], decisions: list[list[Any]]) -> list[LoggedSlot]:
    return logged_slots(
        latest_window(events, EVENTS_PER_PARTITION),
        latest_window(decisions, DECISIONS_PER_PARTITION),
    )


async def _rows(state: DashboardState, served: ServedModel) -> list[LoggedSlot]:
    """The sample's rewarded slots, read once for every policy asked within `ROWS_CACHE_S`."""
    key = (served.name, served.version)
    cached = state.caches.get("ope_rows")
    if cached is not None and cached[0] == key and time.monotonic() - cached[1] < ROWS_CACHE_S:
        rows: list[LoggedSlot] = cached[2]
        return rows
    events = await read_latest(state, events_key, served.name, EVENTS_PER_PARTITION)
    decisions = await read_latest(state, decisions_key, served.name, DECISIONS_PER_PARTITION)
    rows = await asyncio.to_thread(_slots_of, events, decisions)
    if rows:  # an empty sample is cheap to read again, and soon stale
        state.caches["ope_rows"] = (key, time.monotonic(), rows)
    return rows


async def _compute(
    state: DashboardState, served: ServedModel, spec: str, policy: Policy
) -> OpeResponse:
    # One estimate at a time per worker: viewers asking for many policies queue, and at
    # most one thread computes beside the event loop.
    async with state.caches.setdefault("ope_lock", asyncio.Lock()):
        began = time.perf_counter()
        rows = await _rows(state, served)
        found = await asyncio.to_thread(estimate, served, policy, rows)
        return _response(served, spec, rows, found, began)


async def off_policy(
    state: DashboardState, served: ServedModel, spec: str, policy: Policy
) -> OpeResponse:
    """The estimates of `policy` (named `spec`), recomputed when older than `CACHE_S`; the
    `MAX_CACHED` most recently computed are kept."""
    cache: dict[tuple[str, int, str], tuple[float, asyncio.Task[OpeResponse]]]
    cache = state.caches.setdefault("ope", {})
    key = (served.name, served.version, spec)
    found = cache.get(key)
    if found is None or time.monotonic() - found[0] > CACHE_S:
        task = asyncio.create_task(_compute(state, served, spec, policy))
        found = cache[key] = (time.monotonic(), task)
        task.add_done_callback(partial(_forget_failed, cache, key, found))
        for stale in sorted(cache, key=lambda k: cache[k][0])[:-MAX_CACHED]:
            del cache[stale]
    answer = await asyncio.shield(found[1])
    if not answer.estimates and cache.get(key) is found:
        del cache[key]  # nothing to estimate yet: cheap to ask again, and soon stale
    return answer


def _forget_failed(cache: dict[Any, Any], key: Any, entry: Any, task: asyncio.Task[Any]) -> None:
    """A computation that failed is not cached: the next request computes it again."""
    if (task.cancelled() or task.exception() is not None) and cache.get(key) is entry:
        del cache[key]
