"""The evaluation protocol: three-way splits, and choices fixed before any test row is read."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as sf

from batch import head_choice
from batch.datasets.reader import read_events
from batch.datasets.synthetic import SyntheticSpec, generate_synthetic
from batch.options import TrainOptions
from batch.prepare import REWARD, USER, PreparedEvents, prepare_events
from batch.protocol import HEADLINE, run_protocol, split_parts
from batch.splits import HELD_OUT, PART, TEST, TRAIN, VALIDATION, for_choosing, for_testing
from batch.stages import StageTimer
from batch.train_als import fit_features

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SPEC = SyntheticSpec(n_events=3_000, rank=3, noise=0.5, n_users=80, n_items=60, seed=11)
OPTIONS = TrainOptions(dataset=None, model="protocol", rank=3, iterations=5, max_eval_users=100)


@pytest.fixture(scope="module")
def prepared(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> PreparedEvents:
    """3,000 planted events, read and indexed by Spark."""
    data = generate_synthetic(tmp_path_factory.mktemp("protocol") / "data", SPEC)
    return prepare_events(read_events(spark, data.files.events))


def test_every_split_orders_train_before_validation_before_test(prepared: PreparedEvents) -> None:
    parts = split_parts(prepared.frame, OPTIONS)
    micros = sf.unix_micros("timestamp").alias("t")
    table = parts[HEADLINE].select(micros, PART).toArrow()
    t, part = table.column("t").to_numpy(), table.column(PART).to_numpy()
    assert t[part == TRAIN].max() < t[part == VALIDATION].min()
    assert t[part == VALIDATION].max() < t[part == HELD_OUT].min()
    assert abs((part == HELD_OUT).mean() - 0.2) < 0.02
    per_user = parts["holdout"].select(USER, micros, PART, "event_id").toArrow().to_pylist()
    for user in {row[USER] for row in per_user}:
        mine = sorted((r["t"], r["event_id"], r[PART]) for r in per_user if r[USER] == user)
        assert [p for *_, p in mine] == sorted(p for *_, p in mine)  # train, validation, test
    shares = np.bincount(parts["random_split"].toArrow().column(PART).to_numpy()) / SPEC.n_events
    np.testing.assert_allclose(shares, [0.6, 0.2, 0.2], atol=0.03)
    for frame in parts.values():
        assert for_choosing(frame).filter(sf.col(PART) == HELD_OUT).count() == 0
        testing = for_testing(frame)
        assert testing.filter(sf.col(TEST) != (sf.col(PART) == HELD_OUT)).count() == 0


def test_test_rows_are_not_read_before_every_choice_is_fixed(
    prepared: PreparedEvents, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two exposure priors instead of eleven keep the test short; 32 candidates remain.
    monkeypatch.setattr(head_choice, "EXPOSURE_GRID", ((0.0, 0.0), (1.0, 0.0)))
    shape = (prepared.n_users, prepared.n_items)
    honest = run_protocol(prepared, OPTIONS, StageTimer(), fit_features)
    # Flip every rating of the headline split's test part (5 - r): a protocol that looked at
    # them before choosing would choose differently or score its candidates differently.
    parts = split_parts(prepared.frame, OPTIONS)[HEADLINE]
    flipped = sf.when(sf.col(PART) == HELD_OUT, 5.0 - sf.col(REWARD)).otherwise(sf.col(REWARD))
    poisoned = parts.withColumn(REWARD, flipped).drop(PART).cache()
    tampered = run_protocol(replace(prepared, frame=poisoned), OPTIONS, StageTimer(), fit_features)
    assert tampered.choice == honest.choice
    assert tampered.candidates == honest.candidates  # every validation score, exactly
    # ... while the test metrics are computed on exactly those rows.
    assert tampered.metrics[f"{HEADLINE}_rmse"] > honest.metrics[f"{HEADLINE}_rmse"] + 0.5
    assert honest.model.user_weights.shape[1:] == (shape[0], 2 * OPTIONS.rank + 2)
