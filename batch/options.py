"""Options of the training job, shared by `velox train`, `velox retrain` and spark-submit."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainOptions:
    """What to train on and how; defaults are the tuned movielens-100k settings."""

    dataset: str | None = "synthetic"
    events_path: str | None = None
    model: str = "default"
    rank: int = 16
    reg_param: float = 0.1
    iterations: int = 15
    implicit: bool = False
    seed: int = 42
    master: str | None = None
    synthetic_events: int = 100_000
    gate_tolerance: float = 0.02
    promote: bool = True
