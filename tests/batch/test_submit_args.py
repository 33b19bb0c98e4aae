"""The spark-submit entry point exposes every TrainOptions field as an option."""

from __future__ import annotations

from dataclasses import fields

from batch.options import TrainOptions
from batch.submit_train import build_parser, options_from_args


def test_defaults_match_train_options() -> None:
    args = build_parser().parse_args([])
    assert options_from_args(args, "default") == TrainOptions()


def test_every_field_but_master_is_an_option() -> None:
    dests = {action.dest for action in build_parser()._actions}
    assert {f.name for f in fields(TrainOptions)} - dests == {"master"}  # spark-submit's own


def test_options_are_parsed_and_events_replace_the_dataset() -> None:
    argv = ["--events", "/data/events", "--rank", "8", "--reg-param", "0.2", "--implicit"]
    argv += ["--no-promote", "--items", "/data/items.parquet", "--gate-tolerance", "0.05"]
    options = options_from_args(build_parser().parse_args(argv), "shop")
    assert options == TrainOptions(
        dataset=None,
        events_path="/data/events",
        items_path="/data/items.parquet",
        model="shop",
        rank=8,
        reg_param=0.2,
        implicit=True,
        promote=False,
        gate_tolerance=0.05,
    )
