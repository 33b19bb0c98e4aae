"""The compiled selection loops give exactly the numpy answers, and are built by the install."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from velox import kernels
from velox.kernels import slot_wins, slot_wins_numpy, top_k_rows_f32


def test_the_install_built_the_extension() -> None:
    # The README's install compiles velox/_kernels.c; without it every selection falls back
    # to the slower numpy loops, which this says out loud instead of hiding.
    assert kernels.COMPILED


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    st.integers(0, 12), st.sampled_from([1, 2, 15, 16, 17, 100, 511, 512, 1682, 3000]),
    st.integers(1, 30), st.integers(0, 2**32 - 1),
)  # fmt: skip
def test_top_k_rows_f32_is_the_stable_descending_order(
    n: int, m: int, levels: int, seed: int
) -> None:
    # Few levels: ties everywhere, so the lower-index rule decides many places; sizes on both
    # sides of the block-threshold path (m >= 16 k) and of whole blocks.
    rng = np.random.default_rng(seed)
    scores = (rng.integers(0, levels, size=(n, m)) - levels / 2).astype(np.float32) / np.float32(3)
    for k in sorted({1, min(m, 7), min(m, 32), m}):
        expected = np.array([np.lexsort((np.arange(m), -row))[:k] for row in scores])
        got = top_k_rows_f32(scores, k)
        assert got.dtype == np.intp
        np.testing.assert_array_equal(got, expected.reshape(n, k))


def test_top_k_rows_f32_refuses_nan_where_it_leaves_too_few_items() -> None:
    scores = np.full((1, 40), np.nan, dtype=np.float32)
    scores[0, 3] = 1.0
    with pytest.raises(ValueError, match="finite"):
        top_k_rows_f32(scores, 2)


def test_top_k_rows_f32_takes_a_strided_view() -> None:
    scores = np.random.default_rng(3).normal(size=(5, 900)).astype(np.float32)
    view = scores[:, ::3]
    np.testing.assert_array_equal(top_k_rows_f32(view, 10), np.argsort(-view, axis=1)[:, :10])


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    st.integers(0, 6), st.integers(1, 40), st.integers(1, 40), st.integers(1, 8),
    st.integers(0, 2**32 - 1),
)  # fmt: skip
def test_slot_wins_matches_numpy(b: int, c: int, d: int, levels: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, levels, size=(b, c, d)).astype(np.float64)
    for n_chosen in sorted({1, max(1, c // 2), c}):
        got = slot_wins(draws, n_chosen)
        np.testing.assert_array_equal(got, slot_wins_numpy(draws.copy(), n_chosen))


def test_slot_wins_counts_a_known_case() -> None:
    # Candidates (rows) x draws (columns); slot j wins a draw when it beats every later row.
    draws = np.array([[[3.0, 1.0, 2.0], [2.0, 5.0, 2.0], [1.0, 4.0, 9.0]]])
    np.testing.assert_array_equal(slot_wins(draws, 2), [[1, 2]])
    np.testing.assert_array_equal(slot_wins(draws, 3), [[1, 2, 3]])


def test_wrong_buffer_sizes_raise_instead_of_reading_past_an_array() -> None:
    from velox import _kernels

    with pytest.raises(ValueError, match="buffer sizes"):
        _kernels.top_k_rows_f32(np.zeros(10, np.float32), 2, 10, 3, np.empty(6, np.int64))
    with pytest.raises(ValueError, match="buffer sizes"):
        _kernels.slot_wins(np.zeros(12), 1, 3, 5, 2, np.empty(2, np.int64))


def test_velox_no_kernels_switches_to_numpy() -> None:
    code = "from velox import kernels; print(kernels.COMPILED)"
    env = {"VELOX_NO_KERNELS": "1", "PATH": "/usr/bin:/bin"}
    shown = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert shown.stdout.strip() == "False"
