"""The scoring backends: numpy and torch (on the CPU here) against a sorted brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch.materialize.errors import DeviceUnavailableError
from batch.materialize.scoring import NumpyScorer, TorchScorer, resolve_device


def brute_top(weights: np.ndarray, items: np.ndarray, k: int) -> list[list[int]]:
    """Each user's k best item rows: score descending, then row ascending."""
    scores = weights @ items.T
    return [sorted(range(len(items)), key=lambda i: (-row[i], i))[:k] for row in scores]


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 40),
    m=st.integers(1, 12),
    d=st.integers(1, 4),
    k_fraction=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**32 - 1),
    chunk=st.integers(1, 200),
)
def test_numpy_and_torch_pick_the_same_exact_top_k(
    n: int, m: int, d: int, k_fraction: float, seed: int, chunk: int
) -> None:
    rng = np.random.default_rng(seed)
    # Small integers: exact scores with many ties, the hard case for a top-k selection.
    items = rng.integers(-2, 3, size=(n, d)).astype(np.float64)
    weights = rng.integers(-2, 3, size=(m, d)).astype(np.float64)
    k = max(1, round(k_fraction * n))
    want = brute_top(weights, items, k)
    for scorer in (
        NumpyScorer(items, k, chunk_scores=chunk),
        TorchScorer(items, k, device="cpu", chunk_scores=chunk),
    ):
        top = scorer.top(weights)
        assert top.items.tolist() == want
        assert np.array_equal(top.scores, np.take_along_axis(weights @ items.T, top.items, 1))


def test_real_valued_scores_agree_between_backends() -> None:
    rng = np.random.default_rng(7)
    items, weights = rng.normal(size=(3000, 16)), rng.normal(size=(50, 16))
    a = NumpyScorer(items, 100, chunk_scores=20_000).top(weights)
    b = TorchScorer(items, 100, device="cpu", chunk_scores=50_000).top(weights)
    assert a.items.tolist() == b.items.tolist() == brute_top(weights, items, 100)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-12)


def test_no_users_give_an_empty_answer() -> None:
    top = NumpyScorer(np.ones((4, 2)), 3).top(np.empty((0, 2)))
    assert top.items.shape == top.scores.shape == (0, 3)


def test_devices() -> None:
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda")
    with pytest.raises(ValueError, match="device must be one of"):
        resolve_device("tpu")


def test_cuda_without_a_card_is_a_named_error() -> None:
    import torch

    if torch.cuda.is_available():  # a CUDA machine: the error cannot happen there
        assert resolve_device("cuda") == "cuda"
        return
    with pytest.raises(DeviceUnavailableError, match="--device cuda"):
        resolve_device("cuda")
