"""A known user's online prior is its batch head's posterior: mean w0 and precision λI + Σ x xᵀ
from the snapshot, so the online update (and a rebase's replay) continues the batch ridge."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from feature_store.snapshot import load_snapshot
from online.rebase import replay
from online.served_model import PRIOR_CACHE_USERS, ServedModel, prior_cache_users
from online.settings import RewardSettings
from online.weight_store import FeedbackEvent, LoggedEvent
from tests.online.synthetic import publish, synthetic_snapshot
from velox.packed import pack_upper
from velox.policies import make_policy
from velox.posterior import closed_form_mean
from velox.state_codec import decode_state, encode_state

USERS, DIM, LAM = 4, 5, 2.0


def _served(tmp_path: Path) -> tuple[ServedModel, list[np.ndarray], list[np.ndarray]]:
    """A snapshot whose users' weights and Gram matrices are the batch ridge over known
    training events; returns it served, with each user's training items and rewards."""
    data = synthetic_snapshot(n_items=30, dim=DIM, n_users=USERS, seed=4)
    features = data.item_features.astype(np.float64)
    rng = np.random.default_rng(4)
    items = [rng.integers(0, 30, size=5 + 20 * u) for u in range(USERS)]
    rewards = [rng.uniform(1, 5, size=len(chosen)) for chosen in items]
    weights = np.array(
        [
            closed_form_mean(data.prior_mean, LAM, features[chosen], r)
            for chosen, r in zip(items, rewards, strict=True)
        ]
    )
    grams = np.array([features[chosen].T @ features[chosen] for chosen in items])
    data = replace(
        data,
        lam=LAM,
        user_weights=weights.astype(np.float32),
        user_counts=np.array([len(chosen) for chosen in items], dtype=np.int64),
        user_grams=pack_upper(grams).astype(np.float32),
    )
    snapshot = load_snapshot(str(tmp_path), "m", publish(str(tmp_path), "m", data))
    return ServedModel.build(snapshot, make_policy("greedy"), RewardSettings()), items, rewards


def _logged(user: str, items: np.ndarray, rewards: np.ndarray) -> list[LoggedEvent]:
    return [
        LoggedEvent(f"{n}-0", FeedbackEvent(f"e{n}", user, f"i{item}", float(r), n), None)
        for n, (item, r) in enumerate(zip(items, rewards, strict=True))
    ]


def test_known_prior_has_the_batch_mean_and_precision(tmp_path: Path) -> None:
    served, items, _ = _served(tmp_path)
    features = served.snapshot.items.features.astype(np.float64)
    for row in range(USERS):
        prior = served.prior(f"known{row}")
        x = features[items[row]]
        np.testing.assert_array_equal(prior.mean(), served.snapshot.user_weights[row])
        np.testing.assert_allclose(prior.precision(), LAM * np.eye(DIM) + x.T @ x, rtol=1e-6)
        assert prior.count == 0 and served.prior(f"known{row}") is prior
    assert served.prior("stranger") is served.population_prior


def test_replayed_events_continue_the_batch_ridge(tmp_path: Path) -> None:
    served, items, rewards = _served(tmp_path)
    features = served.snapshot.items.features.astype(np.float64)
    rng = np.random.default_rng(9)
    for row in range(USERS):
        user = f"known{row}"
        new_items, new_rewards = rng.integers(0, 30, size=70), rng.uniform(1, 5, size=70)
        posterior = served.prior(user).copy()
        assert replay(served, posterior, _logged(user, new_items, new_rewards), (1, 5)) == 70
        # Exactly: the published prior N(w0, A) plus the events, in closed form.
        prior, precision = served.prior(user), served.prior(user).precision()
        x1 = features[new_items]
        exact = np.linalg.solve(
            precision + x1.T @ x1, precision @ prior.mean() + x1.T @ new_rewards
        )
        np.testing.assert_allclose(posterior.mean(), exact, rtol=1e-9, atol=1e-10)
        # And so the batch ridge over the training events and the new ones (up to the float32
        # rounding of the published weights and Gram matrices).
        both = closed_form_mean(
            served.snapshot.prior_mean, LAM, features[np.r_[items[row], new_items]],
            np.r_[rewards[row], new_rewards],
        )  # fmt: skip
        np.testing.assert_allclose(posterior.mean(), both, rtol=1e-4, atol=1e-5)
        # What /observe stores decodes to the same posterior.
        decoded = decode_state(encode_state(posterior))
        np.testing.assert_array_equal(decoded.mean(), posterior.mean())


def test_updating_a_copy_leaves_the_cached_carried_prior_unchanged(tmp_path: Path) -> None:
    served, _, _ = _served(tmp_path)
    prior = served.prior("known2")
    mean, precision = prior.mean().copy(), prior.precision()
    updated = prior.copy()
    updated.update(served.snapshot.items.features[3].astype(np.float64), 4.0)
    assert not np.array_equal(updated.mean(), mean)
    np.testing.assert_array_equal(served.prior("known2").mean(), mean)
    np.testing.assert_array_equal(served.prior("known2").precision(), precision)


def test_the_prior_cache_is_bounded_by_memory_with_grams(tmp_path: Path) -> None:
    served, _, _ = _served(tmp_path)
    assert prior_cache_users(served.snapshot) == PRIOR_CACHE_USERS  # d = 5: 592 bytes each
    plain = replace(served.snapshot, user_grams=None)
    assert prior_cache_users(plain) == PRIOR_CACHE_USERS
