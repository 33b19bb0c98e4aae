"""A snapshot's catalog extended with items added online (features, ids, filter columns).

Built off the request path when the added items change or a new version is installed; the
result is an ordinary `Snapshot` whose catalog has the added items after the snapshot's own, so
/predict, `where`, /observe and rebasing work on it unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from feature_store.snapshot import Snapshot
from velox.catalog import ItemMatrix
from velox.filters import FilterCache
from velox.filters.columns import Column, ColumnKind, ItemColumns, ListColumn


def _extended_column(kind: ColumnKind, base: Column, values: Sequence[Any], n_base: int) -> Column:
    if kind is ColumnKind.STRING_LIST:
        assert isinstance(base, ListColumn)
        lists = [[str(v) for v in (value or [])] for value in values]
        lengths = np.array([len(v) for v in lists], dtype=np.int64)
        offsets = np.concatenate([base.offsets, base.offsets[-1] + np.cumsum(lengths)])
        added = np.array([v for row in lists for v in row], dtype=object)
        return ListColumn(offsets=offsets, values=np.concatenate([base.values, added]))
    assert isinstance(base, np.ndarray) and len(base) == n_base
    if kind is ColumnKind.NUMBER:
        numbers = [np.nan if v is None else float(v) for v in values]
        return np.concatenate([base.astype(np.float64), np.array(numbers, dtype=np.float64)])
    if kind is ColumnKind.BOOL:
        return np.concatenate([base, np.array([bool(v) for v in values], dtype=bool)])
    return np.concatenate([base, np.array(list(values), dtype=object)])


def extend_snapshot(
    snapshot: Snapshot,
    items: Sequence[str],
    attributes: Sequence[Mapping[str, Any]],
    features: NDArray[np.float32],
) -> Snapshot:
    """`snapshot` with `items` (not in it) appended: their features and attribute columns."""
    if not items:
        return snapshot
    n = snapshot.items.n
    matrix = ItemMatrix.from_features(
        np.vstack([snapshot.items.features, features.astype(np.float32)])
    )
    ids = np.concatenate([snapshot.item_ids, np.array(list(items), dtype=object)])
    index = dict(snapshot.item_index)
    index.update({item: n + k for k, item in enumerate(items)})
    base = snapshot.columns
    data: dict[str, Column] = {}
    for name, kind in base.kinds.items():
        values = list(items) if name == "item" else [a.get(name) for a in attributes]
        data[name] = _extended_column(kind, base.data[name], values, n)
    columns = ItemColumns(kinds=base.kinds, data=data, n=len(ids))
    return dataclasses.replace(
        snapshot,
        items=matrix,
        item_ids=ids,
        item_index=index,
        columns=columns,
        filters=FilterCache(columns),
    )
