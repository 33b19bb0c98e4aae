"""The validation gate: never promote a model that is worse than the current one.

Metrics are compared when the current snapshot was evaluated on the same dataset with the same
protocol; otherwise the current snapshot is re-scored on this run's headline test rows that it
never trained on, beside the new model (batch.evaluate_current, `versus_comparisons`), and
when even that is impossible the verdict says why. RMSE must not rise, and recall / NDCG must
not fall, by more than a relative `tolerance`; coverage is reported but not gated (a narrower
catalog is not by itself worse).
The most-popular baseline's metrics are not the model's and are never compared across versions;
instead `beats_popularity` refuses a model whose NDCG on the headline protocol is below the
most-popular list's beyond sampling noise (95 % intervals apart; measured in the same run on the
same users, batch.protocol) when the served version ranks above its list; otherwise a warning
says that the model does not beat popularity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from batch.errors import GateRejectedError

GATED = ("rmse", "recall@", "ndcg@")


@dataclass(frozen=True)
class Comparison:
    """One metric of the new model next to the current one's."""

    name: str
    new: float
    current: float
    worse: bool
    interval: tuple[float, float] | None = None
    """95 % interval of the relative change, when the comparison is on re-scored rows."""

    @property
    def change(self) -> float:
        """Relative change (new - current) / |current|."""
        return (self.new - self.current) / abs(self.current) if self.current else 0.0


BASELINE = "most_popular_"


def is_gated(name: str) -> bool:
    """True for the metrics the gate checks (the model's, not the baseline's)."""
    return BASELINE not in name and any(marker in name for marker in GATED)


def ranks_above_popularity(metrics: dict[str, float], protocol: str) -> bool:
    """Whether these metrics put the model's NDCG@k on `protocol` above the most-popular list."""
    pairs = []
    for name, value in metrics.items():
        popular = f"{protocol}_{BASELINE}{name.removeprefix(f'{protocol}_')}"
        if name.startswith(f"{protocol}_ndcg@") and popular in metrics:
            pairs.append((value, metrics[popular]))
    return bool(pairs) and all(new > baseline for new, baseline in pairs)


def beats_popularity(
    metrics: dict[str, float],
    intervals: dict[str, list[float]],
    protocol: str,
    served: dict[str, float],
) -> list[Comparison]:
    """The model's NDCG@k on `protocol` against the most-popular list's (`intervals`: that
    protocol's 95 % intervals by metric).

    Worse — refused — when it ranks below the list beyond sampling noise (its interval wholly
    below the list's) while the served version (`served`: its metrics) ranks above its own
    list: a version that ranks is never replaced by one that does not. A first version, or
    one replacing a version that did not beat its list either, is never left unserved for
    this; `popularity_warnings` says so.
    """
    enforce = ranks_above_popularity(served, protocol)
    found = []
    for name in sorted(metrics):
        metric = name.removeprefix(f"{protocol}_")
        popular = f"{protocol}_{BASELINE}{metric}"
        if name.startswith(f"{protocol}_ndcg@") and popular in metrics:
            mine, theirs = intervals.get(metric), intervals.get(BASELINE + metric)
            new, baseline = metrics[name], metrics[popular]
            apart = mine[1] < theirs[0] if mine and theirs else new <= baseline
            found.append(Comparison(f"{name} vs most popular", new, baseline, enforce and apart))
    return found


def popularity_warnings(comparisons: list[Comparison]) -> list[str]:
    """One line per comparison where the model does not rank above the list but passed."""
    return [
        f"warning: {c.name}: {c.new:.4f} vs {c.current:.4f}: this model does not rank better "
        "than recommending the most popular items (not refused: within the 95 % intervals, or "
        "no served version ranks better)"
        for c in comparisons
        if not c.worse and c.new <= c.current
    ]


def check_popularity(
    comparisons: list[Comparison], intervals: dict[str, list[float]], protocol: str, published: int
) -> None:
    """Raise `GateRejectedError` if the model ranks clearly below the most-popular list.

    `intervals` are the protocol's 95 % intervals by metric name (without the protocol prefix).
    """
    worse = [c for c in comparisons if c.worse]
    if not worse:
        return
    listed = []
    for c in worse:
        metric = c.name.removeprefix(f"{protocol}_").removesuffix(" vs most popular")
        model, popular = intervals.get(metric), intervals.get(BASELINE + metric)
        span = (
            f" (95 % intervals [{model[0]:.4f}, {model[1]:.4f}] vs [{popular[0]:.4f}, "
            f"{popular[1]:.4f}])"
            if model and popular
            else ""
        )
        listed.append(f"{c.name}: {c.new:.4f} vs {c.current:.4f}{span}")
    raise GateRejectedError(
        f"version {published} ranks worse than recommending the most popular items: "
        f"{'; '.join(listed)}. It was published but not promoted "
        f"(`velox models promote {published}` to use it anyway)."
    )


def lower_is_better(name: str) -> bool:
    """True for error metrics (RMSE)."""
    return name.removesuffix(UNSEEN).endswith("rmse")


def compare_metrics(
    new: dict[str, float], current: dict[str, float], tolerance: float
) -> list[Comparison]:
    """The gated metrics present in both, each marked worse if it regressed beyond tolerance."""
    found = []
    for name in sorted(set(new) & set(current)):
        if not is_gated(name):
            continue
        old, value = current[name], new[name]
        if lower_is_better(name):
            worse = value > old * (1.0 + tolerance)
        else:
            worse = value < old * (1.0 - tolerance)
        found.append(Comparison(name=name, new=value, current=old, worse=worse))
    return found


HOLDOUT_KEYS = (
    ("dataset", "dataset"),
    ("evaluation", "evaluation protocol"),
    ("events", "events"),
    ("users", "users"),
    ("items_with_events", "items with events"),
)
"""What makes a holdout: the split is a deterministic function of the events and protocol."""
LOG_SUFFIX = "+log"


def holdout_difference(new_extra: dict[str, Any], current_extra: dict[str, Any]) -> str | None:
    """None when both versions were evaluated on one holdout (same events, same protocol);
    otherwise what differs, e.g. `dataset movielens-100k+log -> movielens-100k`."""
    differences = []
    for key, label in HOLDOUT_KEYS:
        new, old = new_extra.get(key), current_extra.get(key)
        if new != old:
            differences.append(label if key == "evaluation" else f"{label} {old} -> {new}")
    return "; ".join(differences) or None


def comparable(new_extra: dict[str, Any], current_extra: dict[str, Any]) -> bool:
    """True when both snapshots were evaluated on one holdout (same events, same protocol)."""
    return holdout_difference(new_extra, current_extra) is None


UNSEEN = " (rows unseen by the current version)"
"""Suffix of the metric names compared on re-scored rows (`versus_comparisons`)."""


def versus_comparisons(
    versus: dict[str, float], protocol: str, tolerance: float
) -> list[Comparison]:
    """The gated metrics of `batch.evaluate_current.versus_current`'s result, new vs current.

    Worse only beyond `tolerance` and beyond sampling noise (the 95 % interval of the change,
    users resampled in pairs, wholly on the worse side of zero): on the few rows a current
    version has not seen, a point estimate alone would refuse good versions by chance.
    """
    found = []
    for key, value in sorted(versus.items()):
        metric = key.removeprefix("new_")
        theirs = versus.get(f"current_{metric}", math.nan)
        if not (key.startswith("new_") and math.isfinite(value) and math.isfinite(theirs)):
            continue
        name = f"{protocol}_{metric}{UNSEEN}"
        for c in compare_metrics({name: value}, {name: theirs}, tolerance):
            low, high = versus[f"change_low_{metric}"], versus[f"change_high_{metric}"]
            noise = low <= 0.0 if lower_is_better(metric) else high >= 0.0
            found.append(replace(c, worse=c.worse and not noise, interval=(low, high)))
    return found


def noise_notes(comparisons: list[Comparison], tolerance: float) -> list[str]:
    """One line per re-scored metric beyond `tolerance` that was not refused (noise)."""
    return [
        f"gate: {c.name} {c.new:.4f} vs {c.current:.4f} ({c.change:+.1%}) is beyond the "
        f"tolerance {tolerance:.1%} but within sampling noise (95 % interval of the change "
        f"[{c.interval[0]:+.1%}, {c.interval[1]:+.1%}] includes 0): not refused"
        for c in comparisons
        if c.interval is not None
        and not c.worse
        and abs(c.change) > tolerance
        and (c.change > 0) == lower_is_better(c.name)
    ]


def gate_outcome(
    current: int | None,
    current_extra: dict[str, Any],
    new_extra: dict[str, Any],
    comparisons: list[Comparison],
    tolerance: float,
    *,
    rescored: str | None = None,
    unable: str | None = None,
) -> list[str]:
    """What the gate did, in words: compared (and passed), or why it could not compare.

    When the holdouts differ, `rescored` says on which rows the current version was re-scored
    (batch.evaluate_current.describe), or `unable` why it could not be.
    """
    if current is None:
        return ["gate: no current version to compare with (first version)"]
    difference = holdout_difference(new_extra, current_extra)
    lines = []
    if difference is not None and rescored is not None:
        lines.append(
            f"gate: the holdouts differ ({difference}), so the current v{current} was "
            f"re-scored on this run's holdout: {rescored}"
        )
    if difference is not None and (rescored is None or not comparisons):
        why = unable or ("no gated metric could be computed on those rows" if rescored else "")
        lines.append(
            f"gate: NOT compared with the current v{current}: the holdouts differ "
            f"({difference}) and v{current} could not be scored on this run's holdout: {why}. "
            "Nothing was compared; the gate did not stop this version"
            if why
            else f"gate: NOT compared with the current v{current}: the holdouts differ "
            f"({difference}), so their metrics cannot be compared"
        )
    elif not comparisons:
        lines.append(f"gate: v{current} has none of the gated metrics; nothing was compared")
    elif not any(c.worse for c in comparisons):
        names = ", ".join(c.name for c in comparisons)
        notes = noise_notes(comparisons, tolerance)
        within = f"within {tolerance:.1%}" + (" or sampling noise" if notes else "")
        lines += [f"gate: passed against v{current} on one holdout ({names} {within})", *notes]
    else:
        lines.append(f"gate: FAILED against v{current} on one holdout (see below)")
    if drops_feedback_log(current_extra, new_extra):
        lines.append(
            f"gate: the current v{current} was trained with the drained feedback log "
            f"({current_extra.get('dataset')}); this version was not "
            f"({new_extra.get('dataset')}), so it would drop that feedback: it is not made "
            "current (`velox retrain` trains on the dataset and the log; `velox models "
            "promote` uses this version anyway)"
        )
    return lines


def drops_feedback_log(current_extra: dict[str, Any], new_extra: dict[str, Any]) -> bool:
    """True when the current version learned from the drained feedback log and the new one
    did not (`<dataset>+log` before, a plain dataset now): promoting it loses that feedback."""
    old_data, new_data = str(current_extra.get("dataset")), str(new_extra.get("dataset"))
    return old_data.endswith(LOG_SUFFIX) and not new_data.endswith(LOG_SUFFIX)


def check_gate(
    comparisons: list[Comparison], tolerance: float, current: int, published: int
) -> None:
    """Raise `GateRejectedError` naming every metric that regressed beyond `tolerance`."""
    worse = [c for c in comparisons if c.worse]
    if worse:
        listed = ", ".join(
            f"{c.name} {c.new:.4f} vs {c.current:.4f} ({c.change:+.1%}"
            + (
                f", 95 % interval [{c.interval[0]:+.1%}, {c.interval[1]:+.1%}])"
                if c.interval
                else ")"
            )
            for c in worse
        )
        raise GateRejectedError(
            f"version {published} is worse than the current version {current} beyond the "
            f"tolerance {tolerance:.1%}: {listed}. It was published but not promoted "
            f"(`velox models promote {published}` to use it anyway)."
        )
