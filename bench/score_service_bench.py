"""Part 4 of bench_score_queries: /recommendations vs /predict on one served catalog (wrk)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa

from bench.bench_service import Result, run_wrk, start_server, stop
from feature_store.registry import Registry
from feature_store.score_tables import part_name, publish_staged_table, table_schema, write_part
from feature_store.score_tables.engines import load_table_into_engine
from tests.online.synthetic import publish, synthetic_snapshot
from tests.support.redis_server import free_port
from velox.settings import VeloxSettings

MODEL = "movies"
USERS = 2000
# `price < 2.5`, URL-encoded with Lua's `%` escaped: price = i % 25, so 12 % of the items.
TEN_PERCENT = "where=price%%20%%3C%%202.5"


def _lua(path: str) -> str:
    return (
        "request = function()\n"
        f'  return wrk.format("GET", string.format("{path}", math.random(0, {USERS - 1})))\n'
        "end\n"
    )


def publish_served_table(root: str, rows: int) -> None:
    """Each user's exact top-`rows` of the served snapshot (score contract, vectorized)."""
    registry = Registry(root)
    snapshot = registry.load(MODEL)
    scores = snapshot.items.features.astype(np.float64) @ snapshot.user_weights.astype(np.float64).T
    top = np.argsort(-scores, axis=0, kind="stable")[:rows].T  # users x rows, ties by index
    storage = registry.storage
    path = Path(root) / MODEL / "v1" / "items.arrow"
    with pa.memory_map(str(path)) as source:
        attributes = pa.ipc.open_file(source).read_all().drop_columns(["item_id", "features"])
    keys = {
        "user_id": pa.array(np.repeat(snapshot.user_ids, rows), pa.string()),
        "rank": pa.array(np.tile(np.arange(1, rows + 1, dtype=np.int32), len(snapshot.user_ids))),
        "item_id": pa.array(snapshot.item_ids[top.ravel()], pa.string()),
        "score": pa.array(np.take_along_axis(scores.T, top, axis=1).ravel()),
    }
    picked = attributes.take(pa.array(top.ravel()))
    part = pa.table({**keys, **dict(zip(picked.column_names, picked.columns, strict=True))})
    order = np.argsort(np.asarray(snapshot.user_ids, dtype=str), kind="stable")
    part = part.take(pa.array((order[:, None] * rows + np.arange(rows)).ravel()))
    files = {
        part_name(0): write_part(storage, MODEL, 1, 0, part.cast(table_schema(attributes.schema)))
    }
    publish_staged_table(
        storage, MODEL, 1, snapshot_version=1, top_n=rows, users=len(snapshot.user_ids),
        items=len(snapshot.item_ids), weights="snapshot", attributes=attributes.schema, files=files,
    )  # fmt: skip


def _serve(home: Path, env: dict[str, str]) -> tuple[object, str]:
    port = free_port()
    command = [
        sys.executable,
        "-c",
        "from velox.cli import main; main()",
        "serve",
        "--port",
        str(port),
    ]
    process = start_server(
        command, {**env, "VELOX_HOME": str(home)}, f"http://127.0.0.1:{port}/readyz"
    )
    return process, f"http://127.0.0.1:{port}"


def service_rows(postgres_url: str, rows: int, items: int, seconds: int) -> None:
    """Serve one catalog with its table (DuckDB, then PostgreSQL) and compare with wrk."""
    home = Path(tempfile.mkdtemp(prefix="velox-bench-reco-"))
    root = str(home / "snapshots")
    publish(root, MODEL, synthetic_snapshot(n_items=items, dim=32, n_users=USERS, seed=3))
    publish_served_table(root, rows)
    load_table_into_engine(VeloxSettings(snapshot_root=root, scores_url=postgres_url), MODEL, 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VELOX_")}
    env |= {"VELOX_SNAPSHOT_ROOT": root, "VELOX_MODEL": MODEL}
    runs = [
        ("duckdb", env, [
            ("/predict (thompson)", "/predict?user=known%d&k=10"),
            ("/predict greedy", "/predict?user=known%d&k=10&explore=false"),
            ("/recommendations", "/recommendations?user=known%d&k=10"),
            ("/recommendations ~10%", f"/recommendations?user=known%d&k=10&{TEN_PERCENT}"),
        ]),
        ("postgres", {**env, "VELOX_SCORES_URL": postgres_url}, [
            ("/predict greedy", "/predict?user=known%d&k=10&explore=false"),
            ("/recommendations", "/recommendations?user=known%d&k=10"),
            ("/recommendations ~10%", f"/recommendations?user=known%d&k=10&{TEN_PERCENT}"),
            ("/recommendations fresh", "/recommendations?user=known%d&k=10&fresh=true"),
        ]),
    ]  # fmt: skip
    results: list[tuple[str, Result]] = []
    for engine, server_env, paths in runs:
        server, base = _serve(home, server_env)
        try:
            for name, path in paths:
                try:
                    results.append(
                        (engine, run_wrk(name, base + "/readyz", seconds, 16, _lua(path)))
                    )
                except KeyError:  # bench_service's parser reads no p99 of 1 s or more
                    print(f"{engine} {name}: p99 >= 1 s (wrk summary not parsed)")
        finally:
            stop(server)  # type: ignore[arg-type]
    shutil.rmtree(home)
    header = ("server engine", "endpoint", "req/s", "p50 ms", "p99 ms", "non-2xx", "vs greedy")
    print("\n{:<14}{:<26}{:>8}{:>8}{:>8}{:>8}{:>10}".format(*header))
    greedy = {engine: r.requests_per_s for engine, r in results if r.name == "/predict greedy"}
    greedy = {engine: greedy.get(engine, float("nan")) for engine, _ in results}
    for engine, r in results:
        print(
            f"{engine:<14}{r.name:<26}{r.requests_per_s:>8.0f}{r.p50_ms:>8.2f}{r.p99_ms:>8.2f}"
            f"{r.errors:>8}{r.requests_per_s / greedy[engine]:>9.2f}x"
        )
