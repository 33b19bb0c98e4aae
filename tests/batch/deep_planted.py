"""Planted content data: ratings driven by item genres and year, with some items held out.

r(u, i) = 3 + sum over the item's genres g of pref[u, g] + slope[u] * year_z(i) + noise
The title holds the genre names as words too, so every input column carries the signal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from batch.events_schema import conform_events

START_US = 1_700_000_000_000_000
DAY_US = 86_400_000_000
GENRES = ("action", "comedy", "drama", "horror", "romance", "scifi")


@dataclass(frozen=True)
class PlantedContent:
    """Events (warm items only), the item table (all items), and which items are cold."""

    events_path: str
    items_path: str
    items: pa.Table
    cold: list[str]
    cold_events: pa.Table


def _item_rows(n_items: int, rng: np.random.Generator) -> list[dict[str, object]]:
    rows = []
    for k in range(n_items):
        genres = sorted(set(rng.choice(GENRES, size=int(rng.integers(1, 3))).tolist()))
        year = int(rng.integers(1950, 2020))
        rows.append({"item_id": f"i{k}", "title": f"the {' '.join(genres)} film {k}",
                     "year": year, "genres": genres})  # fmt: skip
    return rows


def planted_content(
    folder: Path, n_users: int = 160, n_items: int = 100, per_user: int = 40, seed: int = 3
) -> PlantedContent:
    """Write the planted events and items under `folder`; the last 20 % of items are cold."""
    rng = np.random.default_rng(seed)
    items = _item_rows(n_items, rng)
    pref = rng.normal(0.0, 1.0, (n_users, len(GENRES)))
    slope = rng.normal(0.0, 0.5, n_users)
    years = np.array([row["year"] for row in items], dtype=np.float64)
    year_z = (years - years.mean()) / years.std()
    has = np.array([[g in row["genres"] for g in GENRES] for row in items], dtype=np.float64)  # type: ignore[operator]
    cold = {f"i{k}" for k in range(int(n_items * 0.8), n_items)}
    columns: dict[str, list[object]] = {
        n: [] for n in ("event_id", "user_id", "item_id", "reward", "timestamp")
    }
    for u in range(n_users):
        for i in rng.choice(n_items, size=per_user, replace=False):
            reward = 3.0 + has[i] @ pref[u] + slope[u] * year_z[i] + rng.normal(0.0, 0.3)
            columns["event_id"].append(f"u{u}-i{i}")
            columns["user_id"].append(f"u{u}")
            columns["item_id"].append(f"i{i}")
            columns["reward"].append(float(reward))
            # Seconds spread over a day from 2023-11-14T22:13:20Z, users interleaved in time.
            columns["timestamp"].append(START_US + int(rng.integers(0, DAY_US)))
    table = pa.table(columns)
    table = table.set_column(
        4, "timestamp", table.column("timestamp").cast(pa.timestamp("us", tz="UTC"))
    )
    events = conform_events(table)
    is_cold = np.isin(np.array(columns["item_id"]), list(cold))
    warm_events = events.filter(pa.array(~is_cold))
    cold_events = events.filter(pa.array(is_cold))
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(warm_events, folder / "events.parquet")
    item_table = pa.Table.from_pylist(
        items,
        schema=pa.schema(
            [("item_id", pa.string()), ("title", pa.string()), ("year", pa.int32()),
             ("genres", pa.list_(pa.string()))]
        ),
    )  # fmt: skip
    pq.write_table(item_table, folder / "items.parquet")
    return PlantedContent(
        events_path=str(folder / "events.parquet"),
        items_path=str(folder / "items.parquet"),
        items=item_table,
        cold=sorted(cold),
        cold_events=cold_events,
    )
