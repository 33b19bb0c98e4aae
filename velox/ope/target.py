"""What a target policy would do on a logged context: its distribution over the catalog.

Off-policy estimators need π(a | x) for the logged action and, for doubly robust, the whole
distribution (to take the reward model's expectation under π). For a slot j of a slate, the
context includes the items already placed in slots 0..j-1 (pass them as `exclude`), matching
the per-slot propensities the policies log. Exact for greedy, ε-greedy, LinUCB and the slate
policy; for Thompson sampling a Monte-Carlo estimate from `draws` draws of the policy's own
(scaled) posterior (the share of draws in which each item ranks first among the eligible
ones), which for slots after the first ignores what the earlier draws were (the
approximation the policy's own propensities make).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from velox.catalog import ItemMatrix
from velox.errors import InvalidInputError
from velox.policies import EpsilonGreedy, Greedy, LinUCB, Policy, ThompsonSampling
from velox.policies.base import Eligibility
from velox.policies.slate import SlatePolicy
from velox.posterior import UserPosterior
from velox.scoring import score_items, top_k

FloatArray = NDArray[np.float64]


def _one_hot(n: int, item: int) -> FloatArray:
    out = np.zeros(n)
    out[item] = 1.0
    return out


def _uniform(n: int, mask: NDArray[np.bool_] | None) -> FloatArray:
    out = np.ones(n) if mask is None else mask.astype(np.float64)
    out /= out.sum()
    return out


def _thompson(
    policy: ThompsonSampling,
    items: ItemMatrix,
    posterior: UserPosterior,
    mask: NDArray[np.bool_] | None,
    *,
    draws: int,
    rng: np.random.Generator,
) -> FloatArray:
    weights = policy.draw_weights(posterior, draws, rng)
    scores = items.features.astype(np.float64) @ weights
    if mask is not None:
        scores[~mask] = -np.inf
    counts = np.bincount(np.argmax(scores, axis=0), minlength=items.n)
    return counts / float(draws)


def action_distribution(
    policy: Policy,
    items: ItemMatrix,
    posterior: UserPosterior,
    *,
    slot: int = 0,
    slate_size: int = 1,
    allowed: NDArray[np.bool_] | None = None,
    exclude: NDArray[np.intp] | None = None,
    draws: int = 1000,
    rng: np.random.Generator | None = None,
) -> FloatArray:
    """π(· | x) for one slot over all n items (zero for ineligible ones); sums to 1.

    `slot` and `slate_size` matter only to the slate policy, whose last slot explores.
    """
    mask = Eligibility(allowed=allowed, exclude=exclude).mask(items.n)
    if mask is not None and not mask.any():
        raise InvalidInputError("no eligible item: the target policy has no action here")
    if not 0 <= slot < slate_size:
        raise InvalidInputError(f"slot must be in [0, {slate_size}), got {slot}")
    if isinstance(policy, ThompsonSampling):
        return _thompson(
            policy, items, posterior, mask, draws=draws, rng=rng or np.random.default_rng(0)
        )
    means = score_items(items, posterior.mean())
    best = int(top_k(means, 1, exclude=exclude, allowed=allowed)[0])
    if isinstance(policy, EpsilonGreedy):
        greedy = _one_hot(items.n, best)
        return (1.0 - policy.epsilon) * greedy + policy.epsilon * _uniform(items.n, mask)
    if isinstance(policy, SlatePolicy) and slot == slate_size - 1:
        if policy.pool is None:
            return _uniform(items.n, mask)
        pool = np.zeros(items.n, dtype=np.bool_)
        pool[top_k(means, policy.pool, exclude=exclude, allowed=allowed)] = True
        return _uniform(items.n, pool)
    if isinstance(policy, Greedy | SlatePolicy):
        return _one_hot(items.n, best)
    if isinstance(policy, LinUCB):
        chosen = policy.select(items, posterior, 1, allowed=allowed, exclude=exclude)
        return _one_hot(items.n, int(chosen.items[0]))
    raise InvalidInputError(f"no action distribution is known for {type(policy).__name__}")
