"""Two-tower training speed: samples/s and time to a fixed validation RMSE, GPU vs CPU.

    python -m bench.bench_deep_train --prepare .bench20      # here: ml-100k → a data bundle
    python3 bench/bench_deep_train.py --data .bench20 --device cuda --device cpu

The bundle (no Spark needed to read it) holds MovieLens-100k's ratings as dense (u, i, r) with a
seeded 90/10 random split, and the items' attributes (title, year, genres). Every run trains the
same `batch.deep.train_torch.train_two_tower` (what `velox train --kind deep` runs with
`--deep-warm-factors joint`, and for implicit feedback; the default hybrid trains ALS and a small
distilled tower instead, batch/deep/hybrid.py) for a fixed number of epochs; the validation
RMSE of the network's score is taken after each epoch. Printed: samples/s over all epochs, and
the seconds until the validation RMSE first reached `--target`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from batch.deep.inputs import attribute_rows, build_spec
from batch.deep.train_torch import TowerJob, train_two_tower
from feature_store.tower.encode import encode_items

SEED = 7


def prepare(folder: Path) -> None:
    """Write the ml-100k bundle into `folder` (needs the dataset cache: runs here, not there)."""
    import pyarrow.parquet as pq

    from batch.datasets.movielens import load_movielens_100k
    from batch.datasets.reader import known_item_types
    from velox.settings import VeloxSettings

    files = load_movielens_100k(VeloxSettings().dataset_cache())
    events = pq.read_table(files.events, columns=["user_id", "item_id", "reward"])
    users, u = np.unique(
        events.column("user_id").to_numpy(zero_copy_only=False), return_inverse=True
    )
    items, i = np.unique(
        events.column("item_id").to_numpy(zero_copy_only=False), return_inverse=True
    )
    r = events.column("reward").to_numpy()
    test = np.random.default_rng(SEED).random(len(r)) < 0.1
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "train.npz", u=u[~test], i=i[~test], r=r[~test])
    np.savez(folder / "valid.npz", u=u[test], i=i[test], r=r[test])
    table = known_item_types(pq.read_table(files.items))
    rows = attribute_rows([str(item) for item in items], table)
    meta = {"n_users": len(users), "items": rows}
    (folder / "meta.json").write_text(json.dumps(meta))


def run(folder: Path, device: str, epochs: int, batch: int, target: float) -> dict[str, object]:
    """Train once on `device`; samples/s, time to the target RMSE, the final RMSE."""
    meta = json.loads((folder / "meta.json").read_text())
    train = np.load(folder / "train.npz")
    spec = build_spec(
        _attribute_table(meta["items"]),
        embed_dim=32,
        hidden=128,
        out_dim=32,
        text_buckets=4096,
        global_mean=float(train["r"].mean()),
        block_scales=[1.0, 1.0],  # rating and exposure blocks, as `velox train --kind deep`
    )
    ids = np.arange(1, len(meta["items"]) + 1)
    valid = np.load(folder / "valid.npz")
    job = TowerJob(
        rows_path=str(folder / "train.npz"),
        spec_json=spec.to_json(),
        items=encode_items(spec, meta["items"], ids),
        n_users=int(meta["n_users"]),
        implicit=False,
        epochs=epochs,
        batch_size=batch,
        device=device,
        seed=SEED,
        validation=(valid["u"], valid["i"], valid["r"]),
    )
    started = time.perf_counter()
    result = train_two_tower(job)
    assert result is not None
    reached = next((s for s, rmse in result.history if rmse <= target), None)
    return {
        "device": result.device,
        "batch": batch,
        "samples_per_s": result.samples_per_s,
        "seconds_to_target": reached,
        "final_rmse": result.history[-1][1],
        "train_seconds": result.seconds,
        "wall_seconds": time.perf_counter() - started,
        "history": result.history,
    }


def _attribute_table(rows: list[dict[str, object]]) -> object:
    import pyarrow as pa

    schema = pa.schema(
        [("title", pa.string()), ("year", pa.int32()), ("genres", pa.list_(pa.string()))]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def main() -> None:
    """Prepare the bundle, or train on each --device and print the table (and JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prepare", type=Path, help="write the ml-100k bundle here and exit")
    parser.add_argument("--data", type=Path, default=Path(".bench20"))
    parser.add_argument("--device", action="append", help="cuda, cpu (repeatable)")
    parser.add_argument("--batch", type=int, action="append", help="batch sizes (repeatable)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--target", type=float, default=0.95, help="validation RMSE to reach")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.prepare is not None:
        prepare(args.prepare)
        return
    results = [
        run(args.data, device, args.epochs, batch, args.target)
        for device in args.device or ["cpu"]
        for batch in args.batch or [1024]
    ]
    import torch

    card = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    base = results[-1]["samples_per_s"]
    print(f"card: {card}; torch {torch.__version__}; threads {torch.get_num_threads()}")
    print(
        f"{'device':8} {'batch':>6} {'samples/s':>11} {'vs last':>8} {'s to RMSE':>10} {'RMSE':>7}"
    )
    for row in results:
        ratio = float(row["samples_per_s"]) / float(base)  # type: ignore[arg-type]
        reached = row["seconds_to_target"]
        shown = f"{reached:.1f}" if isinstance(reached, float) else "never"
        print(
            f"{row['device']:8} {row['batch']:>6} {row['samples_per_s']:>11.0f} {ratio:>7.1f}x "
            f"{shown:>10} {row['final_rmse']:>7.4f}"
        )
    if args.json is not None:
        args.json.write_text(json.dumps({"card": card, "results": results}, indent=1))


if __name__ == "__main__":
    main()
