"""The decision log of `velox evaluate-policy`, built from what Velox itself drains.

`velox retrain` drains two logs of a model to Parquet (batch/drain.py): the decisions,
`<VELOX_HOME>/decisions/<model>/` (one row per /predict answer: `prediction_id`, `user_id`,
`items` and `propensities` as lists, slot 0 first; batch/decision_log.py), and the feedback,
`<VELOX_HOME>/events/<model>/` (one row per reward, with the `prediction_id` it answered;
docs/events_schema.md). This module explodes each answer into one row per slot and joins each
slot's reward by (`prediction_id`, `item_id`), giving the columns jobs/evaluate_policy.py
reads. A shown item that got no reward leaves its whole answer out (a slate is evaluated slot
by slot, so a partly rewarded answer cannot be used), unless `missing_reward` gives the value
such an item counts as (0 for clicks: not clicked). With several rewards for one shown item,
the earliest counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from velox.errors import InvalidInputError


@dataclass(frozen=True)
class JoinedLog:
    """The per-slot decision log, and how many answers were left out for a missing reward."""

    table: pa.Table
    answers: int
    left_out: int


def _read(root: Path, columns: list[str], what: str) -> pa.Table:
    if not root.is_dir():
        raise InvalidInputError(
            f"no drained {what} at {root}: `velox retrain` drains them (or give --logs)"
        )
    dataset = ds.dataset(root, format="parquet", partitioning="hive", exclude_invalid_files=True)
    table = dataset.to_table(columns=columns)
    if table.num_rows == 0:
        raise InvalidInputError(f"the drained {what} at {root} are empty")
    return table


def _first_rewards(events: pa.Table) -> pa.Table:
    """(prediction_id, item_id) -> the earliest reward logged for that shown item."""
    joined = events.filter(pc.is_valid(events.column("prediction_id")))
    joined = joined.sort_by([("timestamp", "ascending")])
    grouped = joined.group_by(["prediction_id", "item_id"], use_threads=False)
    first = grouped.aggregate([("reward", "first")])
    return first.rename_columns(["prediction_id", "item_id", "reward"])


def _slots(decisions: pa.Table) -> pa.Table:
    """One row per shown item: prediction_id, user_id, item_id, slot, propensity."""
    lengths = pc.list_value_length(decisions.column("items")).to_numpy()
    parents = np.repeat(np.arange(decisions.num_rows), lengths)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return pa.table(
        {
            "prediction_id": decisions.column("prediction_id").take(parents),
            "user_id": decisions.column("user_id").take(parents),
            "item_id": pc.list_flatten(decisions.column("items")),
            "slot": pa.array(np.arange(int(lengths.sum())) - starts, pa.int64()),
            "propensity": pc.list_flatten(decisions.column("propensities")),
        }
    )


def join_velox_logs(
    decisions_root: Path, events_root: Path, missing_reward: float | None = None
) -> JoinedLog:
    """The per-slot decision log with rewards, from Velox's drained decisions and feedback."""
    decisions = _read(
        decisions_root, ["prediction_id", "user_id", "items", "propensities"], "decisions"
    )
    events = _read(events_root, ["prediction_id", "item_id", "reward", "timestamp"], "feedback")
    slots = _slots(decisions)
    rows = slots.join(_first_rewards(events), ["prediction_id", "item_id"], join_type="left outer")
    unrewarded = pc.is_null(rows.column("reward"))
    left_out = 0
    if missing_reward is not None:
        rewards = pc.fill_null(rows.column("reward"), pa.scalar(missing_reward, pa.float64()))
        rows = rows.set_column(rows.column_names.index("reward"), "reward", rewards)
    elif pc.any(unrewarded).as_py():
        partial = pc.unique(rows.filter(unrewarded).column("prediction_id"))
        left_out = len(partial)
        rows = rows.filter(pc.invert(pc.is_in(rows.column("prediction_id"), partial)))
    if rows.num_rows == 0:
        raise InvalidInputError(
            f"none of the {decisions.num_rows} logged answers has a reward for every shown item; "
            "--missing-reward 0 counts an item without a reward as reward 0"
        )
    return JoinedLog(table=rows, answers=decisions.num_rows, left_out=left_out)
