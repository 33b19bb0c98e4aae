"""Options of the training job, shared by `velox train`, `velox retrain` and spark-submit."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainOptions:
    """What to train on and how; defaults are the tuned movielens-100k settings.

    `rank`, `reg_param`, `iterations` and `seed` go to Spark's ALS (both factorizations);
    `implicit_alpha` is the confidence scale of implicit ALS. Evaluation holds out the last
    `holdout_fraction` of each user's events (users with at least `min_user_events`) and
    ranks the top `top_k` items for about `max_eval_users` users (a seeded hash sample).
    `rmse_budget`: the head is the best-ranking one on validation among those whose RMSE is
    within this relative margin of the lowest (batch.head_choice).
    `kind` is `mf` (ALS) or `deep` (the torch two-tower model, batch/deep; its `deep_*`
    options and `device` — auto, cpu, cuda — are described in docs/batch.md).
    """

    dataset: str | None = "synthetic"
    events_path: str | None = None
    model: str = "default"
    rank: int = 16
    reg_param: float = 0.15
    iterations: int = 8
    implicit: bool = False
    seed: int = 42
    master: str | None = None
    synthetic_events: int = 100_000
    gate_tolerance: float = 0.02
    promote: bool = True
    items_path: str | None = None
    implicit_alpha: float = 1.0
    holdout_fraction: float = 0.2
    min_user_events: int = 5
    top_k: int = 10
    max_eval_users: int = 5000
    rmse_budget: float = 0.01
    kind: str = "mf"
    deep_dim: int = 32
    deep_embed: int = 32
    deep_hidden: int = 128
    deep_epochs: int = 6
    deep_batch_size: int = 1024
    deep_lr: float = 3e-3
    deep_weight_decay: float = 1e-5
    deep_id_dropout: float = 0.5
    deep_text_buckets: int = 4096
    deep_negatives: int = 4
    deep_calibrate_unseen: bool = True
    deep_min_word_items: int = 20
    deep_warm_factors: str = "als"
    deep_distill_epochs: int = 400
    device: str = "auto"
