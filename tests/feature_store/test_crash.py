"""A publisher killed at any step leaves only complete versions and CURRENT unchanged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from feature_store.registry import Registry
from tests.feature_store.crash_publish import POINTS
from tests.feature_store.planted import planted_data

REPO = Path(__file__).resolve().parents[2]
COMMITTED = {"after-rename", "pointer-replace"}  # the rename is the commit point


@pytest.mark.parametrize("point", POINTS)
def test_crash_mid_publish_leaves_the_registry_consistent(tmp_path: Path, point: str) -> None:
    registry = Registry(str(tmp_path))
    registry.publish("m", planted_data(seed=1))

    child = subprocess.run(
        [sys.executable, "-m", "tests.feature_store.crash_publish", str(tmp_path), point],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr

    expected = [1, 2] if point in COMMITTED else [1]
    assert registry.versions("m") == expected
    assert registry.current("m") == 1
    current = registry.load("m")
    np.testing.assert_array_equal(current.items.features, planted_data(seed=1).item_features)
    if point in COMMITTED:
        complete = registry.load("m", 2)
        np.testing.assert_array_equal(
            complete.items.features, planted_data(seed=2, n=400).item_features
        )

    leftovers = registry.gc("m", older_than_s=0)
    assert len(leftovers) == (0 if point == "after-rename" else 1)
    names = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert names == [".lock", "CURRENT", *(f"v{v}" for v in expected)]

    manifest = registry.publish("m", planted_data(seed=3))
    assert manifest.version == expected[-1] + 1
    assert registry.current("m") == manifest.version
    assert registry.rollback("m") == 1
