"""ServedModel's priors: a known user's prior is its batch-trained w0, cached and never changed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from feature_store.snapshot import load_snapshot
from online.served_model import ServedModel
from online.settings import RewardSettings
from tests.online.synthetic import publish, synthetic_snapshot
from velox.policies import make_policy


def _served(tmp_path: Path) -> ServedModel:
    data = synthetic_snapshot(n_items=40, dim=5, n_users=6, seed=3)
    version = publish(str(tmp_path), "m", data)
    snapshot = load_snapshot(str(tmp_path), "m", version)
    return ServedModel.build(snapshot, make_policy("greedy"), RewardSettings())


def test_known_user_prior_is_its_w0_and_cached(tmp_path: Path) -> None:
    served = _served(tmp_path)
    user = served.snapshot.user_ids[2]
    prior = served.prior(user)
    np.testing.assert_array_equal(prior.mean(), served.snapshot.user_weights[2].astype(np.float64))
    np.testing.assert_array_equal(prior.statistic_b(), served.snapshot.lam * prior.mean())
    assert prior.count == 0
    assert served.prior(user) is prior
    assert served.prior("nobody-knows-me") is served.population_prior


def test_updating_a_copy_leaves_the_cached_prior_unchanged(tmp_path: Path) -> None:
    served = _served(tmp_path)
    user = served.snapshot.user_ids[0]
    before = served.prior(user).mean().copy()
    updated = served.prior(user).copy()
    updated.update(served.snapshot.items.features[3].astype(np.float64), 4.0)
    assert updated.count == 1 and not np.array_equal(updated.mean(), before)
    np.testing.assert_array_equal(served.prior(user).mean(), before)
    assert served.prior(user).count == 0
