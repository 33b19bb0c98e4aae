"""Bad data is refused with a named error before anything is written."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feature_store.errors import (
    FeatureStoreError,
    InvalidAttributesError,
    InvalidFactorsError,
    InvalidModelNameError,
    InvalidSnapshotDataError,
    VersionNotFoundError,
)
from feature_store.registry import Registry
from feature_store.snapshot_data import SnapshotData
from tests.feature_store.planted import planted_data
from velox.errors import InvalidInputError


def _with_nan_at(matrix: np.ndarray, row: int, value: float) -> np.ndarray:
    bad = matrix.copy()
    bad[row, 0] = value
    return bad


BASE = planted_data(seed=11)
BAD_FACTORS: dict[str, Callable[[SnapshotData], SnapshotData]] = {
    "nan item feature": lambda d: replace(
        d, item_features=_with_nan_at(d.item_features, 3, np.nan)
    ),
    "inf item feature": lambda d: replace(
        d, item_features=_with_nan_at(d.item_features, 0, np.inf)
    ),
    "nan user weight": lambda d: replace(d, user_weights=_with_nan_at(d.user_weights, 2, np.nan)),
    "float64 features": lambda d: replace(d, item_features=d.item_features.astype(np.float64)),
    "1-d features": lambda d: replace(d, item_features=d.item_features[:, 0].copy()),
    "list features": lambda d: replace(d, item_features=d.item_features.tolist()),
    "too few item ids": lambda d: replace(d, item_ids=list(d.item_ids)[:-1]),
    "duplicate item id": lambda d: replace(d, item_ids=[*list(d.item_ids)[:-1], d.item_ids[0]]),
    "empty item id": lambda d: replace(d, item_ids=["", *list(d.item_ids)[1:]]),
    "non-string item id": lambda d: replace(d, item_ids=np.arange(40)),
    "no items": lambda d: replace(
        d, item_ids=[], item_features=np.zeros((0, 6), np.float32), item_attributes=None
    ),
    "user dim mismatch": lambda d: replace(d, user_weights=d.user_weights[:, :5].copy()),
    "too many user ids": lambda d: replace(d, user_ids=[*d.user_ids, "extra"]),
    "negative count": lambda d: replace(d, user_counts=-d.user_counts - 1),
    "float counts": lambda d: replace(d, user_counts=d.user_counts.astype(np.float64)),
    "short prior": lambda d: replace(d, prior_mean=np.zeros(5)),
    "nan prior": lambda d: replace(d, prior_mean=np.full(6, np.nan)),
    "nan model weight": lambda d: replace(d, model_weights={"w": np.array([np.nan])}),
    "object model weight": lambda d: replace(d, model_weights={"w": np.array(["a"], object)}),
}
BAD_ATTRIBUTES: dict[str, Callable[[SnapshotData], SnapshotData]] = {
    "row count": lambda d: replace(d, item_attributes=pa.table({"x": [1, 2]})),
    "reserved name": lambda d: replace(d, item_attributes=pa.table({"item": list(range(40))})),
    "timestamp type": lambda d: replace(
        d, item_attributes=pa.table({"t": pa.array(np.arange(40), pa.timestamp("s"))})
    ),
    "null bool": lambda d: replace(
        d, item_attributes=pa.table({"b": pa.array([None] + [True] * 39, pa.bool_())})
    ),
    "list of ints": lambda d: replace(d, item_attributes=pa.table({"l": [[1]] * 40})),
    "not a table": lambda d: replace(d, item_attributes={"x": list(range(40))}),
}
BAD_SCALARS: dict[str, Callable[[SnapshotData], SnapshotData]] = {
    "zero lambda": lambda d: replace(d, lam=0.0),
    "nan lambda": lambda d: replace(d, lam=float("nan")),
    "negative noise": lambda d: replace(d, noise_std=-1.0),
    "empty kind": lambda d: replace(d, kind=""),
    "nan metric": lambda d: replace(d, metrics={"rmse": float("nan")}),
    "extra not json": lambda d: replace(d, extra={"f": object()}),
    "cutoff not str": lambda d: replace(d, training_cutoff=12),  # type: ignore[arg-type]
}
CASES = [
    *[(name, make, InvalidFactorsError) for name, make in BAD_FACTORS.items()],
    *[(name, make, InvalidAttributesError) for name, make in BAD_ATTRIBUTES.items()],
    *[(name, make, InvalidSnapshotDataError) for name, make in BAD_SCALARS.items()],
]


@pytest.mark.parametrize(("name", "make", "error"), CASES, ids=[c[0] for c in CASES])
def test_bad_data_is_refused_and_nothing_is_written(
    tmp_path: Path,
    name: str,
    make: Callable[[SnapshotData], SnapshotData],
    error: type[FeatureStoreError],
) -> None:
    registry = Registry(str(tmp_path))
    registry.publish("m", BASE)
    bad = make(BASE)
    with pytest.raises(error) as raised:
        bad.validate()
    assert raised.value.status == 400
    assert isinstance(raised.value, InvalidInputError)
    with pytest.raises(error):
        registry.publish("m", bad)
    assert registry.versions("m") == [1]
    assert registry.current("m") == 1
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [".lock", "CURRENT", "v1"]


@settings(max_examples=30, deadline=None)
@given(
    row=st.integers(0, 39),
    col=st.integers(0, 5),
    value=st.sampled_from([np.nan, np.inf, -np.inf]),
    target=st.sampled_from(["item_features", "user_weights"]),
)
def test_any_single_non_finite_value_is_refused(
    row: int, col: int, value: float, target: str
) -> None:
    matrix = getattr(BASE, target).copy()
    row = min(row, matrix.shape[0] - 1)
    matrix[row, col] = value
    with pytest.raises(InvalidFactorsError, match=f"row {row}"):
        replace(BASE, **{target: matrix}).validate()


@pytest.mark.parametrize("model", ["", "../escape", "a/b", ".hidden", "x" * 129, "bad name"])
def test_unsafe_model_names_are_refused(tmp_path: Path, model: str) -> None:
    registry = Registry(str(tmp_path))
    with pytest.raises(InvalidModelNameError):
        registry.publish(model, BASE)
    with pytest.raises(InvalidModelNameError):
        registry.load(model)
    assert list(tmp_path.iterdir()) == []


def test_parent_must_be_an_existing_version(tmp_path: Path) -> None:
    registry = Registry(str(tmp_path))
    with pytest.raises(VersionNotFoundError):
        registry.publish("m", BASE, parent=4)
    with pytest.raises(InvalidSnapshotDataError):
        registry.publish("m", BASE, parent=0)
    first = registry.publish("m", BASE)
    assert registry.publish("m", BASE, parent=first.version).parent == 1


def test_huge_finite_factors_are_accepted(tmp_path: Path) -> None:
    """Their float32 sum overflows to inf; the exact check still finds every value finite."""
    huge = np.full_like(BASE.item_features, np.finfo(np.float32).max)
    with np.errstate(over="ignore"):
        assert not np.isfinite(huge.sum())
    registry = Registry(str(tmp_path))
    registry.publish("m", replace(BASE, item_features=huge))
    np.testing.assert_array_equal(registry.load("m").items.features, huge)
