"""Off-policy evaluation stays unbiased over decisions made through the retrieval cascade.

Planted world: 3000 items with an ANN index, users' true weights θ_u near their batch
weights, rewards x·θ_u + noise. The service logs ε-greedy through the cascade (propensities
relative to each decision's candidate set); IPS then estimates greedy-through-the-cascade,
whose true value is known exactly: the mean of x·θ_u over greedy's choice in each logged
candidate set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from online.retrieval.cascade import CascadeConfig
from online.retrieval.served_cascade import ServedCascade
from tests.feature_store.test_ann_index import publish_catalog
from velox.ope import ips
from velox.policies import make_policy
from velox.posterior import UserPosterior

DECISIONS = 3000


def test_ips_over_cascade_decisions_recovers_the_true_value(tmp_path: Path) -> None:
    snapshot = publish_catalog(tmp_path).load("big")
    assert snapshot.ann is not None
    rng = np.random.default_rng(11)
    users = [f"u{u}" for u in range(50)]
    truth = {u: snapshot.w0_for(u) + rng.normal(0, 0.5, snapshot.dim) for u in users}
    cascade = ServedCascade(snapshot, snapshot.ann, CascadeConfig(), seed=5)
    logging, greedy = make_policy("egreedy:0.3", seed=6), make_policy("greedy")
    features = snapshot.items.features.astype(np.float64)
    propensity, target, reward, true_value = [], [], [], []
    for _ in range(DECISIONS):
        user = users[rng.integers(len(users))]
        posterior = UserPosterior.prior(snapshot.w0_for(user), snapshot.lam, snapshot.noise_std)
        shown, found = cascade.select(logging, posterior, 1, None, None, explore=True)
        chosen = greedy.select(found.catalog, posterior, 1).items[0]
        best = int(found.rows[chosen])
        action = int(shown.items[0])
        propensity.append(float(shown.propensities[0]))
        target.append(1.0 if action == best else 0.0)
        reward.append(float(features[action] @ truth[user] + rng.normal(0, 0.5)))
        true_value.append(float(features[best] @ truth[user]))
    estimate = ips(propensity, target, reward, n_boot=400, seed=0)
    value = float(np.mean(true_value))
    weights = np.array(target) / np.array(propensity)
    stderr = float(np.std(weights * np.array(reward)) / np.sqrt(DECISIONS))
    assert abs(estimate.value - value) < 3.5 * stderr, (estimate, value, stderr)
    assert estimate.ess > DECISIONS / 3  # the greedy item is logged with probability >= 0.7
