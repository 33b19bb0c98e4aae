"""The scoring backends: numpy and torch (on the CPU here) against a sorted brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch.materialize.errors import DeviceUnavailableError
from batch.materialize.plan import part_rows
from batch.materialize.scoring import NumpyScorer, resolve_device
from batch.materialize.torch_scorer import PIPELINE_CHUNKS, TorchScorer


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


def test_identical_items_tied_at_the_cut_come_in_item_order() -> None:
    # Real-valued factors where 40 items share one vector (cold items with the prior's
    # features, say): every user has a run of 40 equal scores, cut by k for some users.
    rng = np.random.default_rng(11)
    items, weights = rng.normal(size=(400, 8)), rng.normal(size=(60, 8))
    items[200:240] = items[7]
    for k in (5, 30, 120):
        want = brute_top(weights, items, k)
        for scorer in (
            NumpyScorer(items, k, chunk_scores=4_000),
            TorchScorer(items, k, device="cpu", chunk_scores=4_000),
        ):
            assert scorer.top(weights).items.tolist() == want


def test_a_torch_call_is_cut_into_pipeline_chunks_within_the_score_budget() -> None:
    scorer = TorchScorer(np.ones((100, 2)), 3, device="cpu", chunk_scores=10_000)
    assert PIPELINE_CHUNKS == 8
    assert scorer.chunk_rows(1_000) == 100  # the budget: 10,000 scores of 100 items
    assert scorer.chunk_rows(400) == 50  # 8 chunks
    assert scorer.chunk_rows(10) == 12  # no chunk below 1/8 of the budget


def test_no_users_give_an_empty_answer() -> None:
    for scorer in (NumpyScorer(np.ones((4, 2)), 3), TorchScorer(np.ones((4, 2)), 3, "cpu")):
        top = scorer.top(np.empty((0, 2)))
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


def test_blocks_cover_the_users_in_order_in_two_reused_buffers() -> None:
    """The torch scorer streams chunk after chunk through the same two host buffers, call
    after call; each block, read when it comes, is the exact top k of its users."""
    rng = np.random.default_rng(3)
    items, weights = rng.integers(-2, 3, (50, 3)).astype(float), rng.normal(size=(40, 3))
    scorer = TorchScorer(items, 6, device="cpu", chunk_scores=500, part_users=40)
    want = brute_top(weights, items, 6)
    seen: list[np.ndarray] = []
    for _ in range(2):
        covered = 0
        for rows, block in scorer.blocks(weights):
            assert rows.start == covered and block.items.shape == (rows.stop - rows.start, 6)
            assert block.items.tolist() == want[rows]
            seen.append(block.items)
            covered = rows.stop
        assert covered == 40
    assert len(seen) == 2 * 8  # PIPELINE_CHUNKS chunks of 5 users (the budget: 10)
    for i, first in enumerate(seen[:2]):  # chunk c sits in buffer c % 2, in every call
        assert all(np.shares_memory(first, later) for later in seen[i::2])
    assert not np.shares_memory(seen[0], seen[1])


def test_a_part_built_from_streamed_blocks_equals_the_numpy_part() -> None:
    """part_table copies each block before the next overwrites it."""
    import pyarrow as pa

    from batch.materialize.part_task import ItemSide, part_table
    from batch.materialize.users import SelectedUsers

    rng = np.random.default_rng(5)
    features, weights = rng.normal(size=(30, 4)), rng.normal(size=(25, 4))
    items = ItemSide(
        ids=pa.array([f"i{n:02d}" for n in range(30)]),
        features=features,
        attributes=pa.table({"year": pa.array(np.arange(30) + 1990)}),
    )
    users = SelectedUsers(ids=pa.array([f"u{n:02d}" for n in range(25)]), weights=weights, known=25)
    streamed = TorchScorer(features, 5, device="cpu", chunk_scores=90, part_users=25)
    numpy_part = part_table(users, NumpyScorer(features, 5).blocks(weights), items)
    part = part_table(users, streamed.blocks(weights), items)
    assert (
        part.drop_columns(["score"]).to_pylist() == numpy_part.drop_columns(["score"]).to_pylist()
    )
    np.testing.assert_allclose(part["score"].to_numpy(), numpy_part["score"].to_numpy(), rtol=1e-12)
    assert numpy_part.num_rows == 25 * 5 and part.schema == numpy_part.schema


def test_parts_on_a_card_hold_enough_scores() -> None:
    assert part_rows(1_000_000, "cpu", 10_000, 500) == 1_000_000
    assert part_rows(1_000_000, "cuda", 10_000, 500) == 13_422 * 500  # 2^27 scores / 10^4
    assert part_rows(1_000_000, "cuda", 1_000_000, 500) == 1_000_000


def test_a_call_of_one_chunk_runs_the_one_chunk_steps_with_ties_ordered() -> None:
    """A call that fits one chunk goes through the steps a card captures as one graph: each
    size gets its runner (the latest ONE_CHUNK_GRAPHS kept), reused call after call, and
    tied rows are still put in the exact order afterwards."""
    from batch.materialize.torch_scorer import ONE_CHUNK_GRAPHS

    rng = np.random.default_rng(9)
    items = rng.integers(-2, 3, (60, 3)).astype(float)  # many tied scores
    scorer = TorchScorer(items, 7, device="cpu", chunk_scores=14_400, part_users=30)
    assert scorer.chunk_rows(30) == 30  # 240 users a chunk, 1/8 of it is the floor
    assert list(scorer._one_chunk) == [30]  # prepared for the parts' size
    blocks = []
    for users in (30, 30, 12, 30, 5):
        weights = rng.integers(-2, 3, (users, 3)).astype(float)
        [(rows, block)] = list(scorer.blocks(weights))
        assert rows == slice(0, users)
        assert block.items.tolist() == brute_top(weights, items, 7)
        blocks.append(block.items)
    assert np.shares_memory(blocks[0], blocks[1]) and np.shares_memory(blocks[0], blocks[3])
    assert ONE_CHUNK_GRAPHS == 2 and list(scorer._one_chunk) == [30, 5]
