"""The item tower's input spec from an attribute table, and attribute rows in id order.

Column roles by Arrow type: list<string> → categorical (a vocabulary of its values);
string → categorical when it has few distinct values (at most `MAX_VOCABULARY` and under
half the rows), else hashed text words (titles, descriptions); int and float → numeric
(standardized). Boolean columns are not read by the tower. Tables come with their known
columns already cast (`batch.datasets.reader.known_item_types`); this module needs no Spark.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa

from feature_store.item_columns import RESERVED_COLUMNS
from feature_store.tower.encode import item_words
from feature_store.tower.spec import Categorical, Numeric, TowerSpec

MAX_VOCABULARY = 1000


def _is_text(column: pa.ChunkedArray) -> bool:
    values = [v for v in column.to_pylist() if v is not None]
    distinct = len(set(values))
    return distinct > MAX_VOCABULARY or distinct >= 0.5 * max(len(values), 1)


def _vocabulary(values: Sequence[Any]) -> list[str]:
    counts = Counter(str(v) for v in values if v is not None)
    ordered = sorted(counts, key=lambda v: (-counts[v], v))
    return ordered[:MAX_VOCABULARY]


def build_spec(
    attributes: pa.Table | None,
    *,
    embed_dim: int,
    hidden: int,
    out_dim: int,
    text_buckets: int,
    global_mean: float,
    max_text_tokens: int = 16,
    block_scales: list[float] | None = None,
) -> TowerSpec:
    """The spec of a tower over `attributes`' columns (none: the tower sees only ids)."""
    categorical: dict[str, Categorical] = {}
    text: list[str] = []
    numeric: dict[str, Numeric] = {}
    if attributes is not None:
        table = attributes
        for name in table.column_names:
            column = table.column(name)
            kind = column.type
            if name in RESERVED_COLUMNS:
                continue
            if pa.types.is_list(kind) or pa.types.is_large_list(kind):
                flat = [v for row in column.to_pylist() for v in (row or [])]
                categorical[name] = Categorical(_vocabulary(flat), is_list=True)
            elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
                if _is_text(column):
                    text.append(name)
                else:
                    categorical[name] = Categorical(_vocabulary(column.to_pylist()), False)
            elif pa.types.is_integer(kind) or pa.types.is_floating(kind):
                found = np.array([v for v in column.to_pylist() if v is not None], np.float64)
                found = found[np.isfinite(found)]
                mean = float(found.mean()) if found.size else 0.0
                std = float(found.std()) if found.size > 1 else 1.0
                numeric[name] = Numeric(mean, std if std > 0 else 1.0)
    return TowerSpec(
        embed_dim=embed_dim,
        hidden=hidden,
        out_dim=out_dim,
        global_mean=global_mean,
        text_buckets=text_buckets,
        max_text_tokens=max_text_tokens,
        categorical=categorical,
        text=text,
        numeric=numeric,
        block_scales=block_scales or [1.0],
    )


def attribute_rows(items: Sequence[str], attributes: pa.Table | None) -> list[dict[str, Any]]:
    """One attribute dict per item of `items` (empty for items the table lacks)."""
    if attributes is None:
        return [{} for _ in items]
    table = attributes
    names = [n for n in table.column_names if n not in RESERVED_COLUMNS]
    rows = {str(row["item_id"]): {n: row[n] for n in names} for row in table.to_pylist()}
    return [rows.get(item, {}) for item in items]


def keep_shared_words(
    spec: TowerSpec, rows: Sequence[Mapping[str, Any]], min_items: int
) -> TowerSpec:
    """`spec` reading only the word buckets found in at least `min_items` of `rows` (the items
    with training events): a word of one or two titles names an item, as its id does, and would
    let the text carry the item's identity past the id dropout; new items' rare words would meet
    untrained embeddings. `min_items` <= 1 or no text column: `spec` unchanged."""
    if min_items <= 1 or not spec.text:
        return spec
    counts = Counter(bucket for row in rows for bucket in item_words(spec, row))
    return replace(spec, text_kept=sorted(b for b, n in counts.items() if n >= min_items))
