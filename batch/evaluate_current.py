"""Re-evaluate the current snapshot on a new run's holdout, beside the new model, same rows.

A version is compared with the current one on the new run's headline test rows (batch.protocol)
that the current version never trained on: rows after the latest event it learned from
(`latest_event` in its manifest). Rows it trained on would favour it, since the new model's
metrics are measured on rows it did not see. The current version scores as the service does
(items.features · w_u from its users.arrow): a user it does not know gets its population prior;
an item it does not know is not in its catalog, so it is never in its top-K (a relevant one is
a miss) and its rows are left out of both models' RMSE (the service has no score for it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from batch.evaluate import BOOTSTRAP_RESAMPLES, TIME, squared_errors, user_ranking
from batch.prepare import ITEM
from batch.splits import TEST
from feature_store.errors import FeatureStoreError
from feature_store.registry import Registry
from feature_store.snapshot import Snapshot

FloatArray = NDArray[np.float64]
LATEST_EVENT = "latest_event"
"""Manifest key: ISO time of the latest event a version was trained on."""
VERSUS = "versus_current"
"""Key of `batch.head_choice.judge_head`'s result that holds `versus_current`."""


@dataclass(frozen=True)
class CurrentModel:
    """The current snapshot's item features and user weights in the new run's dense ids."""

    version: int
    item_features: FloatArray
    known_items: NDArray[np.bool_]
    user_weights: FloatArray
    known_users: NDArray[np.bool_]
    seen_until: int
    """Unix microseconds of the latest event the current version trained on."""


def seen_until(extra: dict[str, object], training_cutoff: str | None) -> int | None:
    """Microseconds of a version's latest training event (`latest_event`, or a training cutoff
    that is a time), or None when its manifest does not say (a drain's stream positions)."""
    for value in (extra.get(LATEST_EVENT), training_cutoff):
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            continue
        if moment.tzinfo is not None:
            return round(moment.timestamp() * 1_000_000)
    return None


def align_current(
    snapshot: Snapshot, user_ids: list[str], item_ids: list[str], seen: int
) -> CurrentModel:
    """`snapshot`'s features and weights by the new run's dense ids (module doc for unknowns)."""
    item_rows = np.array([snapshot.item_index.get(item, -1) for item in item_ids], dtype=np.int64)
    user_rows = np.array([snapshot.user_index.get(user, -1) for user in user_ids], dtype=np.int64)
    known_items, known_users = item_rows >= 0, user_rows >= 0
    features = np.zeros((len(item_ids), snapshot.dim))
    features[known_items] = snapshot.items.features[item_rows[known_items]]
    weights = np.tile(snapshot.prior_mean, (len(user_ids), 1))
    weights[known_users] = snapshot.user_weights[user_rows[known_users]]
    return CurrentModel(snapshot.version, features, known_items, weights, known_users, seen)


def load_current(
    registry: Registry, model: str, version: int, user_ids: list[str], item_ids: list[str]
) -> tuple[CurrentModel | None, str | None]:
    """The current version aligned to the new run's ids, or None and why it cannot be scored."""
    manifest = registry.manifest(model, version)
    seen = seen_until(manifest.extra, manifest.training_cutoff)
    if seen is None:
        return None, (
            f"its manifest does not record the time of its latest training event "
            f"({LATEST_EVENT}; versions published before it was recorded), so the held-out "
            "rows it never trained on are unknown"
        )
    try:
        snapshot = registry.load(model, version)
    except (FeatureStoreError, OSError) as error:
        return None, f"its snapshot could not be read ({error})"
    return align_current(snapshot, user_ids, item_ids, seen), None


def describe(versus: dict[str, float], version: int, seen: int) -> str:
    """One line: on which rows v`version` was re-scored, and how unknown users/items were."""
    moment = datetime.fromtimestamp(seen / 1_000_000, UTC).isoformat()
    return (
        f"{int(versus['rows'])} held-out rows of {int(versus['users'])} users after "
        f"v{version}'s latest training event ({moment}); {int(versus['unknown_users'])} of "
        f"those users are new to v{version} (scored with its population prior), "
        f"{int(versus['unknown_item_rows'])} rows are of items it does not know (never in its "
        "top-K, left out of both RMSEs)"
    )


@dataclass(frozen=True)
class _PerUser:
    """One model's per-user values on the compared rows: ranking metrics, squared errors."""

    ranking: dict[str, FloatArray]
    sse: FloatArray
    counts: FloatArray


def _per_user(
    features: FloatArray,
    weights: FloatArray,
    rows: pa.Table,
    rated: pa.Table,
    candidates: NDArray[np.bool_],
    k: int,
    relevant_above: float,
) -> _PerUser:
    ranking = user_ranking(
        features, weights, rows, k=k, relevant_above=relevant_above, candidates=candidates
    )
    sse, counts = squared_errors(features, weights, rated)
    rated_users = counts > 0
    metrics = {f"recall@{k}": ranking.recall, f"ndcg@{k}": ranking.ndcg}
    return _PerUser(metrics, sse[rated_users], counts[rated_users])


def _change_interval(new: FloatArray, old: FloatArray, seed: int) -> tuple[float, float]:
    """95 % interval of the relative change of a mean, users resampled in pairs."""
    if new.size == 0:
        return (math.nan, math.nan)
    picks = np.random.default_rng(seed).integers(0, new.size, (BOOTSTRAP_RESAMPLES, new.size))
    mine, theirs = new[picks].mean(axis=1), old[picks].mean(axis=1)
    change = (mine - theirs) / np.maximum(np.abs(theirs), 1e-12)
    low, high = np.percentile(change, [2.5, 97.5])
    return float(low), float(high)


def _rmse_interval(new: _PerUser, old: _PerUser, seed: int) -> tuple[float, float]:
    """95 % interval of the relative change of RMSE, users resampled in pairs."""
    if new.counts.size == 0:
        return (math.nan, math.nan)
    size = new.counts.size
    picks = np.random.default_rng(seed).integers(0, size, (BOOTSTRAP_RESAMPLES, size))
    count = new.counts[picks].sum(axis=1)
    mine = np.sqrt(new.sse[picks].sum(axis=1) / count)
    theirs = np.sqrt(old.sse[picks].sum(axis=1) / count)
    low, high = np.percentile((mine - theirs) / np.maximum(theirs, 1e-12), [2.5, 97.5])
    return float(low), float(high)


def _summary(new: _PerUser, old: _PerUser, implicit: bool, seed: int) -> dict[str, float]:
    found: dict[str, float] = {}
    for name, values in new.ranking.items():
        found[f"new_{name}"] = float(values.mean()) if values.size else math.nan
        found[f"current_{name}"] = float(old.ranking[name].mean()) if values.size else math.nan
        low, high = _change_interval(values, old.ranking[name], seed)
        found[f"change_low_{name}"], found[f"change_high_{name}"] = low, high
    if not implicit and new.counts.sum():
        found["new_rmse"] = math.sqrt(new.sse.sum() / new.counts.sum())
        found["current_rmse"] = math.sqrt(old.sse.sum() / old.counts.sum())
        found["change_low_rmse"], found["change_high_rmse"] = _rmse_interval(new, old, seed)
    return found


def versus_current(
    current: CurrentModel,
    rows: pa.Table,
    evaluated: NDArray[np.bool_],
    candidates: NDArray[np.bool_],
    new: tuple[FloatArray, FloatArray],
    *,
    k: int,
    relevant_above: float,
    implicit: bool,
    seed: int = 0,
) -> dict[str, float]:
    """Both models' recall@k, NDCG@k (and RMSE unless `implicit`) on the held-out `rows` after
    `current.seen_until`, flat: `new_<metric>`, `current_<metric>`, the 95 % interval of the
    relative change new vs current (`change_low_<metric>`, `change_high_<metric>`; users
    resampled in pairs, `seed`), and `rows`, `users`, `unknown_users` (of the compared ones)
    and `unknown_item_rows` (left out of RMSE).

    `rows` (u, i, r, test, t) number users by their rank among `evaluated` (dense user ids);
    `new` is the new model's (item features, weights of those users).
    """
    held = rows.column(TEST).to_numpy(zero_copy_only=False)
    unseen = rows.column(TIME).to_numpy() > current.seen_until
    kept = rows.filter(pa.array(~held | unseen))
    test = kept.column(TEST).to_numpy(zero_copy_only=False)
    item_known = current.known_items[kept.column(ITEM).to_numpy()]
    rated = kept.filter(pa.array(~test | item_known))
    weights = current.user_weights[np.flatnonzero(evaluated)]
    how = (k, relevant_above)
    mine = _per_user(new[0], new[1], kept, rated, candidates, *how)
    theirs = _per_user(
        current.item_features, weights, kept, rated, candidates & current.known_items, *how
    )
    held_users = np.unique(kept.filter(pa.array(test)).column(0).to_numpy())
    unknown = ~current.known_users[np.flatnonzero(evaluated)][held_users]
    return {
        **_summary(mine, theirs, implicit, seed),
        "rows": float(test.sum()),
        "users": float(next(iter(mine.ranking.values())).size),
        "unknown_users": float(unknown.sum()),
        "unknown_item_rows": float((test & ~item_known).sum()),
    }
