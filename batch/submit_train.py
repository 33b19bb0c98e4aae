"""spark-submit entry point of the training job: the same code path as `velox train`.

    spark-submit --master local[2] batch/submit_train.py --dataset movielens-100k
    spark-submit --master spark://host:7077 batch/submit_train.py --events s3://bucket/events \\
        --snapshot-root s3://bucket/snapshots

The master (and every other Spark setting) comes from spark-submit; each `TrainOptions` field
is an option here (`--reg-param 0.15`, `--implicit`, `--no-promote`, ...).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import MISSING, fields
from typing import Any

from batch.options import TrainOptions

# Option names that differ from the field name; `master` comes from spark-submit itself.
RENAMED = {"events_path": "events", "items_path": "items"}
SKIPPED = ("master", "model")


def _value_type(default: Any) -> type:
    return type(default) if isinstance(default, int | float) else str


def build_parser() -> argparse.ArgumentParser:
    """An argparse parser with one option per `TrainOptions` field."""
    parser = argparse.ArgumentParser(prog="submit_train.py", description=__doc__.split("\n")[0])
    parser.add_argument("--home", help="VELOX_HOME (dataset cache, default snapshot root)")
    parser.add_argument("--snapshot-root", help="snapshot root: a path or a pyarrow URI")
    parser.add_argument("--model", help="model name (default: VELOX_MODEL or 'default')")
    for field in fields(TrainOptions):
        if field.name in SKIPPED:
            continue
        flag = "--" + RENAMED.get(field.name, field.name).replace("_", "-")
        default = field.default if field.default is not MISSING else None
        if isinstance(default, bool):
            if default:
                flag = "--no-" + flag[2:]
            action = "store_false" if default else "store_true"
            parser.add_argument(flag, dest=field.name, action=action)
        else:
            parser.add_argument(flag, dest=field.name, type=_value_type(default), default=default)
    return parser


def options_from_args(args: argparse.Namespace, model: str) -> TrainOptions:
    """The `TrainOptions` of parsed arguments (an --events path replaces the dataset)."""
    values = {f.name: getattr(args, f.name) for f in fields(TrainOptions) if f.name not in SKIPPED}
    if values["events_path"] is not None:
        values["dataset"] = None
    return TrainOptions(model=model, **values)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, train, evaluate and publish; 0 on success, 1 on a Velox error."""
    from rich.console import Console

    from batch.train_command import run_train
    from velox.errors import VeloxError
    from velox.settings import VeloxSettings

    args = build_parser().parse_args(argv)
    overrides = {"home": args.home, "snapshot_root": args.snapshot_root, "model": args.model}
    settings = VeloxSettings(**{k: v for k, v in overrides.items() if v is not None})
    try:
        run_train(options_from_args(args, settings.model), settings)
    except VeloxError as error:
        Console(stderr=True).print(f"[red]error:[/red] {error.message}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
