"""The service's featurization settings: torch threads (VELOX_FEATURIZE_THREADS) and batching.

torch's thread count is process-wide, so each thread case runs in a fresh Python process.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from online.settings import ServiceSettings
from tests.support.fresh_python import fresh_python

SCRIPT = """
import sys, tempfile
import pyarrow as pa
import torch
from feature_store.registry import Registry
from online.featurize.tower import FeatureCache, ServedTower
from tests.online.deep_snapshot import publish_deep

root = tempfile.mkdtemp()
items = pa.table({"item_id": ["a", "b"], "year": pa.array([1990, 2000], pa.int32())})
publish_deep(root, "m", items)
before = torch.get_num_threads()
tower = ServedTower(Registry(root).load("m"), FeatureCache(), int(sys.argv[1]))
print(before, torch.get_num_threads(), len(tower.features([{"year": 1995}])))
"""


def threads_before_and_after(threads: int) -> list[int]:
    return fresh_python(SCRIPT, str(threads), OMP_NUM_THREADS="2")


def test_a_served_tower_sets_torch_threads_and_zero_leaves_them() -> None:
    assert threads_before_and_after(1) == [2, 1, 1]
    assert threads_before_and_after(0) == [2, 2, 1]


def test_the_setting_defaults_to_one_thread_and_refuses_negative_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert ServiceSettings().featurize_threads == 1
    monkeypatch.setenv("VELOX_FEATURIZE_THREADS", "-1")
    with pytest.raises(ValidationError, match="featurize_threads"):
        ServiceSettings()


def test_the_service_featurizes_with_its_batching_and_thread_settings() -> None:
    import threading

    import redis

    from online.main import added_items_for

    settings = ServiceSettings(
        featurize_batch_slo_ms=35, featurize_max_wait_ms=0.5, featurize_threads=3
    )
    items = added_items_for(settings, redis.Redis(port=1), threading.RLock())  # not connected
    assert (items.slo_s, items.max_wait_s, items.torch_threads) == (0.035, 0.0005, 3)
    with pytest.raises(ValidationError, match="featurize_batch_slo_ms"):
        ServiceSettings(featurize_batch_slo_ms=0)
    with pytest.raises(ValidationError, match="featurize_max_wait_ms"):
        ServiceSettings(featurize_max_wait_ms=-1)
