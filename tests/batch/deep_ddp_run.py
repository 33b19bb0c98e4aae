"""Train one planted two-tower job here and through `run_training` on a Spark master; print
JSON. Run as `python -m tests.batch.deep_ddp_run FOLDER MASTER PROCESSES` (its own process:
the test's process may already hold a local SparkSession)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from pyspark.sql import SparkSession

from batch.deep.inputs import attribute_rows, build_spec
from batch.deep.launch import run_training
from batch.deep.train_torch import TowerJob, train_two_tower
from feature_store.tower.encode import encode_items
from tests.batch.deep_planted import planted_content

EPOCHS = 20


def planted_job(folder: Path) -> TowerJob:
    """The planted content ratings as a CPU `TowerJob` (rows in an .npz), a fifth for validation."""
    planted = planted_content(folder / "data")
    events = pq.read_table(planted.events_path)
    ids = planted.items.column("item_id").to_pylist()
    users = events.column("user_id").to_pylist()
    user_row = {user: row for row, user in enumerate(sorted(set(users)))}
    item_row = {item: row for row, item in enumerate(ids)}
    u = np.array([user_row[user] for user in users], np.int64)
    i = np.array([item_row[item] for item in events.column("item_id").to_pylist()], np.int64)
    r = events.column("reward").to_numpy().astype(np.float64)
    held = np.arange(len(r)) % 5 == 0
    np.savez(folder / "rows.npz", u=u[~held], i=i[~held], r=r[~held])
    attributes = planted.items.drop_columns(["item_id"])
    spec = build_spec(attributes, embed_dim=8, hidden=32, out_dim=8, text_buckets=64,
                      global_mean=float(r[~held].mean()), block_scales=[1.0])  # fmt: skip
    encoded = encode_items(spec, attribute_rows(ids, planted.items), np.arange(1, len(ids) + 1))
    return TowerJob(
        rows_path=str(folder / "rows.npz"), spec_json=spec.to_json(), items=encoded,
        n_users=len(user_row), implicit=False, epochs=EPOCHS, device="cpu",
        validation=(u[held], i[held], r[held]),
    )  # fmt: skip


def main() -> None:
    folder, master, processes = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    job = planted_job(folder)
    assert job.validation is not None
    rewards = job.validation[2]
    here = train_two_tower(job)
    assert here is not None
    spark = SparkSession.builder.master(master).appName("velox-ddp-test").getOrCreate()
    try:
        there = run_training(spark, job, processes=processes)
    finally:
        spark.stop()
    print(json.dumps({
        "constant_rmse": float(np.sqrt(np.mean((rewards - rewards.mean()) ** 2))),
        "here_rmse": here.history[-1][1], "here_processes": here.processes,
        "cluster_rmse": there.history[-1][1], "cluster_processes": there.processes,
        "cluster_epochs": len(there.history),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
