"""Publishers racing on one model get distinct versions and every promotion is recorded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from feature_store.registry import Registry
from tests.feature_store.planted import planted_data

REPO = Path(__file__).resolve().parents[2]
PUBLISHERS, EACH = 4, 3


def test_concurrent_publishers_get_distinct_versions(tmp_path: Path) -> None:
    root = tmp_path / "snapshots"
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.feature_store.publish_many",
                str(root),
                f"p{i}",
                str(100 * i),
                str(EACH),
            ],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(PUBLISHERS)
    ]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("ready-*"))) < PUBLISHERS and time.monotonic() < deadline:
        time.sleep(0.01)
    (tmp_path / "go").touch()
    reports = [json.loads(child.communicate(timeout=120)[0]) for child in children]
    assert [child.returncode for child in children] == [0] * PUBLISHERS

    claimed = sorted(v for report in reports for v in report["versions"])
    assert claimed == list(range(1, PUBLISHERS * EACH + 1))
    registry = Registry(str(root))
    assert registry.versions("m") == claimed
    for report in reports:
        seed = 100 * int(report["tag"][1:])
        for k, version in enumerate(report["versions"]):
            snapshot = registry.load("m", version)
            assert snapshot.manifest.extra["tag"] == report["tag"]
            expected = planted_data(seed=seed + k).item_features
            np.testing.assert_array_equal(snapshot.items.features, expected)

    # CURRENT updates are serialized: each of the 12 promotions left its trace.
    current = registry.current("m")
    assert current is not None
    assert sorted([*registry.history("m"), current]) == claimed
