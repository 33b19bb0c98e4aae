"""Run the installed `velox` entry point as a user would: a subprocess, outside the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

VELOX = Path(sys.executable).parent / "velox"


def run_velox(
    args: list[str],
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout_s: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    """`velox ARGS` in `cwd` with `VELOX_HOME=<cwd>/home`, no other caller VELOX_* variable."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("VELOX_")}
    full_env = {**inherited, "VELOX_HOME": str(cwd / "home"), "COLUMNS": "100", **(env or {})}
    return subprocess.run(
        [str(VELOX), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
