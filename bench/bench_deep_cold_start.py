"""Item cold start on MovieLens-100k: held-out items added through `PUT /items`, ranked.

    python -m bench.bench_deep_cold_start [--epochs 6] [--seed 1] [--warm-factors als|joint]

10 % of the items (seeded) lose all their events: both models train on the other items'
events only (`train_and_publish`, Spark local). Warm quality: each model's own time-ordered
per-user holdout (the last 20 % of each user's warm events; the same split for both), NDCG@10
and RMSE. Cold quality: `velox serve` runs over the deep snapshot, every held-out item is added
with `PUT /items/{item}` (its title, year and genres; 16 at a time, so the AIMD batcher works),
and each user's held-out-item ratings are the test interactions: recall@10 and NDCG@10 with the
held-out items ranked among all items (warm + added; the user's training items excluded;
relevant = rating above the training mean, as `batch.evaluate`). Baselines on the same cold
test: popularity (training counts; a held-out item has none), and content-only: per user, a
ridge regression (lambda 1) of their training ratings on [genre indicators, standardized year,
1]. Beside each scorer, the held-out items' share of the top-10 slots (about 0.1 when they
compete like the other items: a scorer that put every new item first would score well
here while ranking badly). ALS has no features for an item it never saw, so it cannot rank
the held-out items at all.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from numpy.typing import NDArray

from batch.datasets.movielens import GENRES, load_movielens_100k
from batch.datasets.reader import known_item_types, read_events
from batch.deep.calibration import top_share
from batch.deep.features import WARM_FACTORS
from batch.errors import GateRejectedError
from batch.evaluate import ranking_metrics
from batch.options import TrainOptions
from batch.prepare import ITEM, REWARD, USER, prepare_events
from batch.spark import get_spark
from batch.splits import TEST
from batch.train_command import train_and_publish
from feature_store.manifest import Manifest
from feature_store.registry import Registry
from tests.online.live_server import LiveServer
from velox.settings import VeloxSettings

MODEL = "movies"


def _split(seed: int, folder: Path) -> tuple[str, pa.Table, pa.Table, set[str], pa.Table]:
    """Warm events' path, the cold items' events, all items, the cold ids, the warm items."""
    files = load_movielens_100k(VeloxSettings().dataset_cache())
    events = pq.read_table(files.events)
    items = known_item_types(pq.read_table(files.items))
    ids = np.unique(events.column("item_id").to_numpy(zero_copy_only=False))
    rng = np.random.default_rng(seed)
    cold = set(rng.choice(ids, size=len(ids) // 10, replace=False).tolist())
    is_cold = pc.is_in(events.column("item_id"), pa.array(sorted(cold)))
    warm_path = folder / "warm-events.parquet"
    pq.write_table(events.filter(pc.invert(is_cold)).drop_columns(["date"]), warm_path)
    warm_items = items.filter(pc.invert(pc.is_in(items.column("item_id"), pa.array(sorted(cold)))))
    return str(warm_path), events.filter(is_cold), items, cold, warm_items


async def _put_all(url: str, items: list[dict[str, object]]) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    limit = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=url, timeout=60.0) as client:

        async def put(row: dict[str, object]) -> None:
            body = {"attributes": {k: row[k] for k in ("title", "year", "genres")}}
            async with limit:
                answer = await client.put(f"/items/{row['item_id']}", json=body)
            answer.raise_for_status()
            found[str(row["item_id"])] = answer.json()["features"]

        await asyncio.gather(*(put(row) for row in items))
    return found


def _content(items: list[dict[str, Any]]) -> NDArray[np.float64]:
    """[genre indicators, standardized year (0 if unknown), 1] per item."""
    years = np.array([np.nan if row["year"] is None else row["year"] for row in items], float)
    mean, std = np.nanmean(years), np.nanstd(years)
    z = np.nan_to_num((years - mean) / std)
    genres = np.array([[g in (row["genres"] or []) for g in GENRES] for row in items], np.float64)
    return np.hstack([genres, z[:, None], np.ones((len(items), 1))])


def _content_weights(
    content: NDArray[np.float64], rows: pa.Table, n_users: int
) -> NDArray[np.float64]:
    weights = np.zeros((n_users, content.shape[1]))
    train = rows.filter(pc.invert(rows.column(TEST)))
    u, i, r = (train.column(name).to_numpy() for name in (USER, ITEM, REWARD))
    for user in np.unique(u):
        x, y = content[i[u == user]], r[u == user]
        weights[user] = np.linalg.solve(x.T @ x + np.eye(x.shape[1]), x.T @ y)
    return weights


def _held_out_share(
    features: NDArray[np.float64], weights: NDArray[np.float64], rows: pa.Table, n_warm: int
) -> float:
    """Share of the top-10 slots (training items excluded) that go to held-out items, over the
    users with test rows: about 0.1 when held-out items compete like the others (10 % of the
    catalog), 1 when a scorer puts them above every other item."""
    train = rows.filter(pc.invert(rows.column(TEST)))
    tested = np.unique(rows.filter(rows.column(TEST)).column(USER).to_numpy())
    row_of = np.full(weights.shape[0], -1)
    row_of[tested] = np.arange(tested.size)
    users = row_of[train.column(USER).to_numpy()]
    kept = users >= 0
    held_out = np.arange(features.shape[0]) >= n_warm
    rated = (users[kept], train.column(ITEM).to_numpy()[kept])
    return top_share(weights[tested] @ features.T, held_out, rated)


def _train(
    warm_path: str, warm_items: pa.Table, root: str, args: argparse.Namespace
) -> dict[str, Manifest]:
    """ALS and the deep model on the warm events, both published under `root`."""
    spark = get_spark(master="local[2]", app_name="bench-cold-start")
    prepared = prepare_events(read_events(spark, warm_path))
    manifests = {}
    for kind in ("mf", "deep"):
        options = TrainOptions(
            dataset=None, model=MODEL if kind == "deep" else f"{MODEL}-mf", kind=kind,
            deep_epochs=args.epochs, deep_id_dropout=args.id_dropout, deep_dim=args.dim,
            deep_negatives=args.negatives, deep_calibrate_unseen=not args.no_calibration,
            deep_min_word_items=args.min_word_items, deep_warm_factors=args.warm_factors,
            device="cpu", seed=args.seed,
        )  # fmt: skip
        started = time.perf_counter()
        registry = Registry(root)
        try:
            manifests[kind] = train_and_publish(
                prepared, warm_items, options, registry, dataset="w"
            )
        except GateRejectedError as refused:  # published, not promoted: serve it anyway
            print(f"{kind}: {refused.message}")
            registry.promote(options.model, 1)
            manifests[kind] = registry.manifest(options.model, 1)
        print(f"{kind}: trained and published in {time.perf_counter() - started:.0f} s")
    spark.stop()
    return manifests


def _add_online(
    home: Path, root: str, cold_rows: list[dict[str, object]]
) -> dict[str, list[float]]:
    """Start `velox serve` over `root` and PUT every cold item; their features."""
    server = LiveServer(home / "home", {"VELOX_SNAPSHOT_ROOT": root, "VELOX_MODEL": MODEL})
    (home / "home").mkdir()
    server.start(timeout_s=180)
    try:
        started = time.perf_counter()
        added = asyncio.run(_put_all(server.url, cold_rows))
        print(f"{len(added)} held-out items added by PUT in {time.perf_counter() - started:.1f} s")
    finally:
        server.stop()
    return added


def _rows(
    warm_path: str, cold_events: pa.Table, users: dict[str, int], items: dict[str, int]
) -> pa.Table:
    """(u, i, r, test) rows: the warm events for training, the cold items' events as tests."""
    train = pq.read_table(warm_path, columns=["user_id", "item_id", "reward"])
    test = cold_events.filter(pc.is_in(cold_events.column("user_id"), pa.array(list(users))))
    both = pa.concat_tables([train, test.select(["user_id", "item_id", "reward"])])
    return pa.table({
        USER: pa.array([users[u] for u in both.column("user_id").to_pylist()], pa.int32()),
        ITEM: pa.array([items[i] for i in both.column("item_id").to_pylist()], pa.int32()),
        REWARD: both.column("reward"),
        TEST: pa.array([False] * train.num_rows + [True] * test.num_rows),
    })  # fmt: skip


def _print(table: dict[str, dict[str, float]], manifests: dict[str, Manifest]) -> None:
    base = table["popularity"]["ndcg@10"]
    print(f"{'cold items':20} {'recall@10':>10} {'NDCG@10':>9} {'vs popularity':>14} {'share':>6}")
    for name, found in table.items():
        ratio = f"{found['ndcg@10'] / base:.1f}x" if base else "-"
        print(
            f"{name:20} {found['recall@10']:>10.4f} {found['ndcg@10']:>9.4f} {ratio:>14} "
            f"{found['share']:>6.3f}"
        )
    print("share: held-out items' share of the top-10 slots (10 % of the catalog is held out)")
    print(f"{'warm items (holdout)':20} {'NDCG@10':>9} {'RMSE':>8}")
    for kind, manifest in manifests.items():
        ndcg, rmse = manifest.metrics["holdout_ndcg@10"], manifest.metrics["holdout_rmse"]
        print(f"{kind:20} {ndcg:>9.4f} {rmse:>8.4f}")
    deep, als = manifests["deep"].metrics, manifests["mf"].metrics
    print(
        f"deep / ALS: NDCG@10 {deep['holdout_ndcg@10'] / als['holdout_ndcg@10']:.3f}x, "
        f"RMSE {deep['holdout_rmse'] / als['holdout_rmse']:.3f}x"
    )


def main() -> None:
    """Train both models on the warm items, add the cold ones online, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--id-dropout", type=float, default=0.5)
    parser.add_argument("--dim", type=int, default=32, help="deep_dim: k per block")
    parser.add_argument("--negatives", type=int, default=4, help="drawn items per rating row")
    parser.add_argument(
        "--no-calibration", action="store_true", help="deep_calibrate_unseen off (the A/B)"
    )
    parser.add_argument(
        "--min-word-items", type=int, default=TrainOptions.deep_min_word_items,
        help="deep_min_word_items: a title word is read when this many trained items have it",
    )  # fmt: skip
    parser.add_argument(
        "--warm-factors", choices=WARM_FACTORS, default=TrainOptions.deep_warm_factors,
        help="deep_warm_factors: als (the hybrid model) or joint (the two towers trained jointly)",
    )  # fmt: skip
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="velox-cold-"))
    warm_path, cold_events, items, cold, warm_items = _split(args.seed, home)
    root = str(home / "snapshots")
    manifests = _train(warm_path, warm_items, root, args)
    snapshot = Registry(root).load(MODEL)
    attributes = {row["item_id"]: row for row in items.to_pylist()}
    added = _add_online(home, root, [attributes[item] for item in sorted(cold)])
    catalog = [*snapshot.item_ids.tolist(), *sorted(added)]
    features = np.vstack([snapshot.items.features, np.array([added[i] for i in sorted(added)])])
    users = {user: k for k, user in enumerate(snapshot.user_ids.tolist())}
    rows = _rows(warm_path, cold_events, users, {item: k for k, item in enumerate(catalog)})
    above = float(pc.mean(rows.filter(pc.invert(rows.column(TEST))).column(REWARD)).as_py())
    weights = snapshot.user_weights.astype(np.float64)
    training = rows.filter(pc.invert(rows.column(TEST))).column(ITEM).to_numpy()
    popular = np.bincount(training, minlength=len(catalog))[:, None].astype(np.float64)
    content = _content([attributes[item] for item in catalog])
    scorers = {
        "deep (PUT /items)": (features.astype(np.float64), weights),
        "popularity": (popular, np.ones((len(users), 1))),
        "content-only ridge": (content, _content_weights(content, rows, len(users))),
    }
    table = {
        name: {
            **ranking_metrics(x, w, rows, k=10, relevant_above=above),
            "share": _held_out_share(x, w, rows, len(snapshot.item_ids)),
        }
        for name, (x, w) in scorers.items()
    }
    table["ALS (no features)"] = {"recall@10": 0.0, "ndcg@10": 0.0, "share": 0.0}
    print(f"{int(pc.sum(rows.column(TEST)).as_py())} test ratings on held-out items")
    _print(table, manifests)


if __name__ == "__main__":
    main()
