"""The costly depth measured at publish: the shallowest depth whose recall reaches the target."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from feature_store import ann_tuning
from feature_store.ann_index import build_index, load_index, params_for
from feature_store.layout import MANIFEST
from tests.feature_store.test_ann_index import publish_catalog


def test_publish_records_the_measured_depth_and_recall(tmp_path: Path) -> None:
    """3000 items, 16 lists: every depth is capped at the 16 lists, which find the exact
    answer, so the recorded depth is 16 with recall 1."""
    registry = publish_catalog(tmp_path)
    manifest = json.loads((tmp_path / "big" / "v1" / MANIFEST).read_text())
    assert manifest["extra"]["ann_tuning"]["recall"] == {"16": 1.0}
    assert manifest["extra"]["ann_index"]["nprobe_costly"] == 16
    snapshot = registry.load("big")
    assert snapshot.ann is not None and snapshot.ann.params.nprobe_costly == 16


def test_the_shallowest_depth_reaching_the_target_is_chosen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Unclustered vectors (no list holds a user's best items): starting from 1 list the
    search doubles its depth until the measured recall reaches the target; every depth
    before the chosen one measured below it, and the chosen one's recall is recomputed here."""
    monkeypatch.setattr(ann_tuning, "FIRST_DEPTH", 1)
    rng = np.random.default_rng(5)
    features = rng.standard_normal((20_000, 8)).astype(np.float32)
    users = rng.standard_normal((300, 8))
    params = params_for(features, min_items=1000)
    assert params is not None and params.nlist == 32
    index = load_index(build_index(features, params), params, 20_000, 8, "t")
    chosen, tuning = ann_tuning.tuned(index, features, users)
    recalls = {int(depth): recall for depth, recall in tuning["recall"].items()}
    assert list(recalls) == [2**i for i in range(len(recalls))]
    assert chosen.nprobe_costly == max(recalls)
    assert recalls[chosen.nprobe_costly] >= ann_tuning.TARGET_RECALL or chosen.nprobe_costly == 32
    assert all(recall < ann_tuning.TARGET_RECALL for depth, recall in recalls.items()
               if depth < chosen.nprobe_costly)  # fmt: skip
    assert recalls[1] < ann_tuning.TARGET_RECALL  # one list of 32 is not enough here
    queries = users[np.sort(np.random.default_rng(params.seed).choice(300, 256, False))]
    truth = ann_tuning.exact_top(features, queries.astype(np.float32))
    again = ann_tuning._recall(
        index, features, queries.astype(np.float32), truth, chosen.nprobe_costly,
        chosen.candidates_costly,
    )  # fmt: skip
    assert round(again, 4) == recalls[chosen.nprobe_costly]
