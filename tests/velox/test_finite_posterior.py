"""A posterior never holds a mean that could score inf or NaN: updates refuse rewards that
could overflow, and decoding refuses a stored state whose mean is not finite (issue 23)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from velox.errors import NonFiniteError, StateEncodingError
from velox.posterior import MAX_ABS_REWARD, UserPosterior
from velox.state_codec import MAX_MEAN_NORM, decode_state, encode_state


@pytest.mark.parametrize("reward", [1e50, -1e300, 2 * MAX_ABS_REWARD, float("nan")])
def test_update_refuses_a_reward_beyond_the_bound_and_changes_nothing(reward: float) -> None:
    """The state after a refused update is the state before it."""
    posterior = UserPosterior.prior(np.zeros(3), lam=1.0)
    posterior.update(np.ones(3), 2.0)
    before = encode_state(posterior)
    with pytest.raises(NonFiniteError):
        posterior.update(np.ones(3), reward)
    assert encode_state(posterior) == before


@given(st.floats(min_value=-MAX_ABS_REWARD, max_value=MAX_ABS_REWARD))
def test_rewards_within_the_bound_keep_float32_scores_finite(reward: float) -> None:
    """Any accepted reward leaves a mean whose float32 scores of unit-norm items are finite."""
    posterior = UserPosterior.prior(np.zeros(4), lam=1e-3)
    x = np.array([1.0, 0.0, 0.0, 0.0])
    posterior.update(x, reward)
    scores = np.eye(4, dtype=np.float32) @ posterior.mean().astype(np.float32)
    assert np.all(np.isfinite(scores))


@pytest.mark.parametrize("poison", [float("nan"), float("inf"), 10 * MAX_MEAN_NORM])
def test_decode_refuses_a_state_whose_mean_cannot_score(poison: float) -> None:
    """A stored state with a NaN, infinite or huge mean is refused, not scored."""
    posterior = UserPosterior.prior(np.zeros(3), lam=1.0)
    posterior.update(np.ones(3), 1.0)
    data = bytearray(encode_state(posterior))
    mean_offset = 40 + 8 * (6 + 3)  # header, packed A (d(d+1)/2 = 6), b (d = 3)
    data[mean_offset : mean_offset + 8] = np.float64(poison).tobytes()
    with pytest.raises(StateEncodingError, match="mean"):
        decode_state(bytes(data))
