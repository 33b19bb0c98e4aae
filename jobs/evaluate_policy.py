"""`velox evaluate-policy`: estimate a target policy's value from a decision log.

By default the log is joined from Velox's own drained decision and feedback logs
(jobs/velox_decision_log.py); `--logs` reads one given as Parquet instead. Either way the
log has one row per shown item (a slot of one /predict answer) joined with its reward.
Its columns (extra columns are ignored):

=============  =========  ===========================================================
column         type       meaning
=============  =========  ===========================================================
prediction_id  string     the /predict answer the row belongs to
user_id        string     who was shown the items
item_id        string     the item shown in this slot
slot           integer    0-based position in the answer
propensity     double     probability the logging policy put this item in this slot,
                          given the earlier slots (as /predict logged it), in (0, 1]
reward         double     the joined reward (the default reward if the window closed)
=============  =========  ===========================================================

The target policy acts from the snapshot (current version by default): each user's prior
is the snapshot's batch weights (or the population prior), so the target is stationary, as
IPS, SNIPS and DR require. Every row is one decision; for slot j the items of slots 0..j-1
are excluded from what the target could choose, so rewards are credited per slot. The reward
model for DR is the snapshot's posterior-mean score, clipped to the range of logged rewards.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from numpy.typing import NDArray

from feature_store.registry import Registry
from feature_store.snapshot import Snapshot
from jobs.velox_decision_log import join_velox_logs
from velox.errors import InvalidInputError, NotFoundError
from velox.ope import Estimate, doubly_robust, ips, snips
from velox.ope.target import action_distribution
from velox.policies import Policy, make_policy
from velox.posterior import UserPosterior
from velox.scoring import score_items
from velox.settings import VeloxSettings

FloatArray = NDArray[np.float64]
LOG_COLUMNS = ("prediction_id", "user_id", "item_id", "slot", "propensity", "reward")
THOMPSON_DRAWS = 400


class Progress:
    """Rows evaluated so far, on stderr: at most one line a second, and the last one."""

    def __init__(self, label: str, every_s: float = 1.0) -> None:
        """Report as `label: done/total rows`."""
        self.label = label
        self.every_s = every_s
        self._next = time.monotonic() + every_s

    def __call__(self, done: int, total: int) -> None:
        """Called after each row."""
        now = time.monotonic()
        if done == total or now >= self._next:
            self._next = now + self.every_s
            print(f"{self.label}: {done}/{total} rows", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class DecisionLog:
    """The decision log's columns as arrays, rows sorted by (prediction_id, slot)."""

    prediction_ids: list[str]
    user_ids: list[str]
    item_ids: list[str]
    slots: NDArray[np.int64]
    propensity: FloatArray
    reward: FloatArray


def _column(table: pa.Table, name: str, kind: str) -> pa.ChunkedArray:
    column = table.column(name)
    if column.null_count:
        raise InvalidInputError(f"decision log column {name!r} has {column.null_count} nulls")
    checks = {"string": pa.types.is_string, "integer": pa.types.is_integer,
              "number": lambda t: pa.types.is_floating(t) or pa.types.is_integer(t)}  # fmt: skip
    if not checks[kind](column.type):
        raise InvalidInputError(f"decision log column {name!r} must be {kind}, not {column.type}")
    return column


def read_decision_log(path: Path) -> DecisionLog:
    """Read and check a decision log (see the module docstring for its columns)."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as error:
        raise InvalidInputError(f"cannot read a decision log at {path}: {error}") from error
    return decision_log(table, str(path))


def decision_log(table: pa.Table, path: str) -> DecisionLog:
    """Check a decision-log table (module docstring) read from `path`, sort it by prediction."""
    missing = [name for name in LOG_COLUMNS if name not in table.column_names]
    if missing:
        raise InvalidInputError(f"decision log {path} lacks the column(s) {', '.join(missing)}")
    if table.num_rows == 0:
        raise InvalidInputError(f"decision log {path} has no rows")
    kinds = ("string", "string", "string", "integer", "number", "number")
    columns = {
        name: _column(table, name, kind) for name, kind in zip(LOG_COLUMNS, kinds, strict=True)
    }
    table = pa.table(columns).sort_by([("prediction_id", "ascending"), ("slot", "ascending")])
    keys = pc.binary_join_element_wise(
        table.column("prediction_id"), pc.cast(table.column("slot"), pa.string()), "\x00"
    )
    if pc.count_distinct(keys).as_py() != table.num_rows:
        raise InvalidInputError("decision log repeats a (prediction_id, slot) pair")
    return DecisionLog(
        prediction_ids=table.column("prediction_id").to_pylist(),
        user_ids=table.column("user_id").to_pylist(),
        item_ids=table.column("item_id").to_pylist(),
        slots=table.column("slot").to_numpy().astype(np.int64),
        propensity=table.column("propensity").to_numpy().astype(np.float64),
        reward=table.column("reward").to_numpy().astype(np.float64),
    )


@dataclass(frozen=True)
class TargetColumns:
    """Per row: π(logged item), the reward model's r̂ of it, and Σ_a π(a) r̂(a)."""

    target_probability: FloatArray
    reward_estimate: FloatArray
    target_reward_estimate: FloatArray


def _slate_sizes(prediction_ids: list[str], slots: NDArray[np.int64]) -> list[int]:
    """For every row, the size of its prediction's slate; its slots must be 0..k-1."""
    _, starts, counts = np.unique(np.asarray(prediction_ids, dtype=object), return_index=True,
                                  return_counts=True)  # fmt: skip
    sizes = np.empty(len(prediction_ids), dtype=np.int64)
    for start, count in zip(starts.tolist(), counts.tolist(), strict=True):
        if not np.array_equal(slots[start : start + count], np.arange(count)):
            raise InvalidInputError(
                f"prediction {prediction_ids[start]!r} has slots {slots[start : start + count]}"
                f"; every slot 0..k-1 of a prediction must be logged"
            )
        sizes[start : start + count] = count
    return sizes.tolist()


def target_columns(
    log: DecisionLog,
    snapshot: Snapshot,
    policy: Policy,
    *,
    seed: int = 0,
    progress: Progress | None = None,
) -> TargetColumns:
    """What the target policy would have done on each logged row, from the snapshot."""
    unknown = sorted({item for item in log.item_ids if item not in snapshot.item_index})
    if unknown:
        raise NotFoundError(
            f"{len(unknown)} logged item(s) are not in snapshot v{snapshot.version}, "
            f"e.g. {unknown[0]!r}"
        )
    rng = np.random.default_rng(seed)
    low, high = float(log.reward.min()), float(log.reward.max())
    n = len(log.item_ids)
    out = np.zeros((3, n))
    cache: dict[tuple[str, tuple[int, ...], int, int], FloatArray] = {}
    heads: dict[str, tuple[UserPosterior, FloatArray]] = {}
    earlier: list[int] = []
    sizes = _slate_sizes(log.prediction_ids, log.slots)
    for row in range(n):
        if row == 0 or log.prediction_ids[row] != log.prediction_ids[row - 1]:
            earlier = []
        user, item = log.user_ids[row], snapshot.item_index[log.item_ids[row]]
        if user not in heads:
            prior = snapshot.prior_for(user)  # the service's prior (online.served_model)
            heads[user] = (prior, np.clip(score_items(snapshot.items, prior.mean()), low, high))
        posterior, predicted = heads[user]
        key = (user, tuple(earlier), int(log.slots[row]), sizes[row])
        if key not in cache:
            cache[key] = action_distribution(
                policy, snapshot.items, posterior, slot=key[2], slate_size=key[3],
                exclude=np.asarray(earlier, dtype=np.intp), draws=THOMPSON_DRAWS, rng=rng,
            )  # fmt: skip
        pi = cache[key]
        out[:, row] = (pi[item], predicted[item], float(pi @ predicted))
        earlier.append(item)
        if progress is not None:
            progress(row + 1, n)
    return TargetColumns(out[0], out[1], out[2])


def evaluate(
    log: DecisionLog,
    snapshot: Snapshot,
    spec: str,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    progress: Progress | None = None,
) -> dict[str, Estimate]:
    """IPS, SNIPS and DR estimates of the target policy `spec` on the logged decisions."""
    policy = make_policy(spec, seed=seed)
    target = target_columns(log, snapshot, policy, seed=seed, progress=progress)
    boot: dict[str, Any] = {"n_boot": n_boot, "confidence": confidence, "seed": seed}
    args = (log.propensity, target.target_probability, log.reward)
    return {
        "ips": ips(*args, **boot),
        "snips": snips(*args, **boot),
        "dr": doubly_robust(*args, target.reward_estimate, target.target_reward_estimate, **boot),
    }


def run_evaluate_policy(
    settings: VeloxSettings,
    *,
    logs: Path | None,
    policy: str,
    version: int | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    as_json: bool = False,
    missing_reward: float | None = None,
) -> dict[str, Any]:
    """`velox evaluate-policy`: load log and snapshot, estimate, print a table or JSON.

    Without `logs`, the decision log is joined from the model's drained decision and feedback
    logs under VELOX_HOME (jobs/velox_decision_log.py). Progress goes to stderr.
    """
    make_policy(policy)  # a bad spec fails before any file is read
    notes: dict[str, int] = {}
    if logs is None:
        joined = join_velox_logs(
            settings.home / "decisions" / settings.model,
            settings.home / "events" / settings.model,
            missing_reward,
        )
        log = decision_log(joined.table, f"the drained logs of {settings.model}")
        notes = {"answers": joined.answers, "answers_left_out": joined.left_out}
        if joined.left_out:
            print(
                f"left out {joined.left_out} of {joined.answers} answers with a shown item "
                "that got no reward (--missing-reward R counts those as R)",
                file=sys.stderr,
            )
    else:
        log = read_decision_log(logs)
    snapshot = Registry(settings.resolved_snapshot_root()).load(settings.model, version)
    progress = Progress(f"evaluating {policy}")
    estimates = evaluate(
        log, snapshot, policy, n_boot=n_boot, confidence=confidence, seed=seed, progress=progress
    )
    report: dict[str, Any] = {
        "policy": policy,
        "model": snapshot.model,
        "version": snapshot.version,
        "rows": len(log.item_ids),
        "predictions": len(set(log.prediction_ids)),
        "logged_mean_reward": float(log.reward.mean()),
        **notes,
        "estimates": {name: estimate.as_dict() for name, estimate in estimates.items()},
    }
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        _print_table(report, estimates, confidence)
    return report


def _print_table(report: dict[str, Any], estimates: dict[str, Estimate], confidence: float) -> None:
    from rich.console import Console
    from rich.table import Table

    title = (
        f"{report['policy']} on {report['rows']} logged decisions "
        f"({report['model']} v{report['version']}; logged mean reward "
        f"{report['logged_mean_reward']:.4f})"
    )
    table = Table(title=title)
    for header in ("estimator", "value", f"{confidence:.0%} CI", "ESS", "rows"):
        table.add_column(header, justify="left" if header == "estimator" else "right")
    for name, est in estimates.items():
        interval = f"[{est.ci_low:.4f}, {est.ci_high:.4f}]"
        table.add_row(name.upper(), f"{est.value:.4f}", interval, f"{est.ess:.1f}", str(est.n))
    Console().print(table)
