"""A deep model that arrives after startup imports torch after the service froze its collector:
building its tower freezes torch too, so full collections stay off its ~200,000 objects.

Each case runs in a fresh process (the freeze and torch's import are process-wide).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa

from tests.online.deep_snapshot import publish_deep

SCRIPT = """
import gc, sys
from feature_store.registry import Registry
from online.collector import quiet_collector
from online.featurize.tower import FeatureCache, ServedTower

snapshot = Registry(sys.argv[1]).load("m")
if sys.argv[2] == "service":
    quiet_collector()
assert "torch" not in sys.modules
tower = ServedTower(snapshot, FeatureCache(), 1)
assert "torch" in sys.modules and len(tower.features([{"year": 1995}])) == 1
print(len(gc.get_objects()), gc.get_freeze_count())
"""


def tracked_and_frozen(root: Path, process: str) -> tuple[int, int]:
    """Objects the collector still walks, and objects frozen, after the tower's build."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(root), process],
        capture_output=True, text=True, env=env, timeout=120, check=True,
    )  # fmt: skip
    tracked, frozen = (int(word) for word in done.stdout.split())
    return tracked, frozen


def test_a_tower_built_after_the_freeze_freezes_torch_in_a_service_process(
    tmp_path: Path,
) -> None:
    items = pa.table({"item_id": ["a", "b"], "year": pa.array([1990, 2000], pa.int32())})
    publish_deep(str(tmp_path), "m", items)
    tracked, frozen = tracked_and_frozen(tmp_path, "service")
    # torch alone brings over 100,000 tracked objects; frozen, the collector walks only what
    # the few lines after the freeze made.
    assert frozen > 100_000
    assert tracked < 10_000
    # Elsewhere (velox train, tests, a notebook) the collector is left as Python sets it.
    tracked, frozen = tracked_and_frozen(tmp_path, "plain")
    assert frozen == 0
    assert tracked > 100_000
