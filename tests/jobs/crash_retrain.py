"""Child process of the retrain crash tests: runs a retrain cycle, SIGKILLs itself at a stage.

Usage: python -m tests.jobs.crash_retrain POINT, with VELOX_HOME, VELOX_REDIS_URL and
VELOX_MODEL set. Points: `after-drain` (the log drained, training not started), `mid-train`
(Spark has read the events, the model is about to be fitted), `before-promote` (the new
version published, not yet promoted). The hooks wrap the real code; nothing else changes.
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import replace
from typing import Any

import redis

import batch.train_command
from jobs.retrain import RetrainOptions, run_retrain
from tests.jobs.retrain_support import OPTIONS
from velox.settings import VeloxSettings

POINTS = ("after-drain", "mid-train", "before-promote")


def _die(*_: Any, **__: Any) -> Any:
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    """Retrain with Spark on local[1], dying at the point given."""
    point = sys.argv[1]
    if point not in POINTS:
        raise SystemExit(f"unknown crash point {point!r}")
    settings = VeloxSettings()
    assert settings.redis_url is not None
    if point == "mid-train":
        batch.train_command.train_and_publish = _die
    run_retrain(
        RetrainOptions(replace(OPTIONS, master="local[1]")),
        settings,
        redis.Redis.from_url(settings.redis_url),
        before_promote=_die if point == "before-promote" else lambda: None,
        on_stage=lambda name: _die() if (point, name) == ("after-drain", "train") else None,
    )
    raise SystemExit("the retrain finished: the crash point was never reached")


if __name__ == "__main__":
    main()
