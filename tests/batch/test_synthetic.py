"""The synthetic generator: planted linear truth, chunked date-partitioned output, seeded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from batch.datasets.synthetic import SyntheticSpec, generate_synthetic, load_synthetic
from batch.errors import DatasetError
from batch.events_schema import EVENTS_SCHEMA

SPEC = SyntheticSpec(n_events=2_500, rank=3, noise=0.0, n_users=40, n_items=30, chunk_events=1_000)


def _events(path: str) -> dict[str, np.ndarray]:
    table = ds.dataset(path, partitioning="hive").to_table()
    return {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}


def test_noiseless_rewards_are_exactly_the_planted_model(tmp_path: Path) -> None:
    truth = generate_synthetic(tmp_path / "d", SPEC)
    events = _events(truth.files.events)
    assert len(events["event_id"]) == 2_500 and len(set(events["event_id"])) == 2_500
    users = np.array([truth.user_ids.index(u) for u in events["user_id"]])
    items = np.array([truth.item_ids.index(i) for i in events["item_id"]])
    planted = (
        truth.mean
        + truth.user_bias[users]
        + truth.item_bias[items]
        + np.einsum("ij,ij->i", truth.user_factors[users], truth.item_factors[items])
    )
    np.testing.assert_allclose(events["reward"], planted, rtol=0, atol=1e-12)


def test_written_in_chunks_partitioned_by_date_in_the_events_schema(tmp_path: Path) -> None:
    truth = generate_synthetic(tmp_path / "d", SPEC)
    files = sorted(Path(truth.files.events).rglob("*.parquet"))
    assert {f.name.split("-")[1] for f in files} == {"00000", "00001", "00002"}  # 3 chunks
    assert all(f.parent.name.startswith("date=2024-") for f in files)
    schema = pq.read_schema(files[0])
    assert [f.name for f in schema] == EVENTS_SCHEMA.names
    items = pq.read_table(truth.files.items)
    assert items.column_names == ["item_id", "title", "year", "genres", "price"]
    assert items.column("item_id").to_pylist() == truth.item_ids


def test_same_seed_same_data_other_seed_other_data(tmp_path: Path) -> None:
    first = _events(generate_synthetic(tmp_path / "a", SPEC).files.events)
    again = _events(generate_synthetic(tmp_path / "b", SPEC).files.events)
    other = generate_synthetic(tmp_path / "c", SyntheticSpec(n_events=2_500, seed=7, n_users=40))
    order_a, order_b = np.argsort(first["event_id"]), np.argsort(again["event_id"])
    np.testing.assert_array_equal(first["reward"][order_a], again["reward"][order_b])
    assert not np.array_equal(
        np.sort(first["reward"]), np.sort(_events(other.files.events)["reward"])
    )


def test_cached_dataset_is_reused(tmp_path: Path) -> None:
    files = load_synthetic(tmp_path, SPEC)
    marker = Path(files.events).parent / "_COMPLETE"
    stamp = marker.stat().st_mtime_ns
    assert load_synthetic(tmp_path, SPEC) == files
    assert marker.stat().st_mtime_ns == stamp


def test_bad_spec_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="events >= 1"):
        generate_synthetic(tmp_path / "d", SyntheticSpec(n_events=0))
    assert not (tmp_path / "d").exists()
