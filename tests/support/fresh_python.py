"""Run a script in a new Python process of this interpreter, with the checkout importable.

For what is process-wide (torch's thread count, the garbage collector's frozen generation):
the pytest process, which also trains models and serves apps, keeps its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]


def fresh_python(script: str, *args: str, **env: str) -> list[int]:
    """The integers `script` prints, run with `args` and `env` (added to this environment,
    less the VELOX_ settings)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("VELOX_")}
    environment.update(env, PYTHONPATH=str(CHECKOUT))
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True, text=True, env=environment, timeout=120, check=True,
    )  # fmt: skip
    return [int(word) for word in done.stdout.split()]
