"""The validation gate: never promote a model that is worse than the current one.

Metrics are compared when the current snapshot was evaluated on the same dataset with the same
protocol. RMSE must not rise, and recall / NDCG must not fall, by more than a relative
`tolerance`; coverage is reported but not gated (a narrower catalog is not by itself worse).
"""

from __future__ import annotations

from dataclasses import dataclass
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

    @property
    def change(self) -> float:
        """Relative change (new - current) / |current|."""
        return (self.new - self.current) / abs(self.current) if self.current else 0.0


def is_gated(name: str) -> bool:
    """True for the metrics the gate checks."""
    return any(marker in name for marker in GATED)


def lower_is_better(name: str) -> bool:
    """True for error metrics (RMSE)."""
    return name.endswith("rmse")


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


def comparable(new_extra: dict[str, Any], current_extra: dict[str, Any]) -> bool:
    """True when both snapshots were evaluated on the same dataset with the same protocol."""
    keys = ("dataset", "evaluation")
    return all(new_extra.get(key) == current_extra.get(key) for key in keys)


def check_gate(
    comparisons: list[Comparison], tolerance: float, current: int, published: int
) -> None:
    """Raise `GateRejectedError` naming every metric that regressed beyond `tolerance`."""
    worse = [c for c in comparisons if c.worse]
    if worse:
        listed = ", ".join(
            f"{c.name} {c.new:.4f} vs {c.current:.4f} ({c.change:+.1%})" for c in worse
        )
        raise GateRejectedError(
            f"version {published} is worse than the current version {current} beyond the "
            f"tolerance {tolerance:.1%}: {listed}. It was published but not promoted "
            f"(`velox models promote {published}` to use it anyway)."
        )
