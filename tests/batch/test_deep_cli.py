"""`velox train --deep-warm-factors`: the value reaches TrainOptions; a bad one is a usage error."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import batch.train_command
from batch.deep.features import WARM_FACTORS
from batch.options import TrainOptions
from velox import cli
from velox.cli import app


def test_the_cli_offers_the_trainers_warm_factors() -> None:
    assert cli.WARM_FACTORS == WARM_FACTORS


@pytest.mark.parametrize("value", WARM_FACTORS)
def test_deep_warm_factors_reaches_the_train_options(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    seen: list[TrainOptions] = []
    monkeypatch.setattr(batch.train_command, "run_train", lambda options, _: seen.append(options))
    args = ["train", "--dataset", "synthetic", "--kind", "deep", "--deep-warm-factors", value]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    assert [options.deep_warm_factors for options in seen] == [value]


def test_a_bad_deep_warm_factors_value_is_a_one_line_usage_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Exit status 2 and one line naming the option and its choices; nothing is trained."""
    seen: list[TrainOptions] = []
    monkeypatch.setattr(batch.train_command, "run_train", lambda options, _: seen.append(options))
    args = ["train", "--dataset", "synthetic", "--kind", "deep", "--deep-warm-factors", "ALS2"]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 2
    assert done.output.strip().splitlines() == [
        "error: --deep-warm-factors must be als or joint, not 'ALS2'"
    ]
    assert seen == []
