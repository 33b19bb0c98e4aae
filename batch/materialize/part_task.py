"""One Spark task: score a contiguous range of users against every item, write one part.

Runs on an executor, which reads the snapshot (verified once per Python worker, then kept)
and the staged users from storage by itself: a task carries only a few numbers, never data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray
from pyarrow import ipc

from batch.materialize.plan import USERS
from batch.materialize.scoring import Blocks, Scorer, make_scorer
from batch.materialize.users import SelectedUsers
from feature_store.arrow_tables import read_factors
from feature_store.score_tables.columns import table_schema
from feature_store.score_tables.layout import staging_dir
from feature_store.score_tables.publish import write_part
from feature_store.snapshot_files import open_snapshot_files
from feature_store.storage import SnapshotStorage, open_storage

CRASH_EXIT = 70  # the exit status of a worker stopped by the crash hook (tests)


@dataclass(frozen=True)
class PartTask:
    """Which part to build: the snapshot, the staging table version, the user range."""

    root: str
    model: str
    snapshot_version: int
    table_version: int
    index: int
    start: int
    stop: int
    k: int
    device: str
    crash: bool = False


@dataclass
class ItemSide:
    """One snapshot's items sorted by item_id: ids, float64 features, attribute columns."""

    ids: pa.Array
    features: NDArray[np.float64]
    attributes: pa.Table
    scorers: dict[tuple[int, str], Scorer] = field(default_factory=dict)

    def scorer(self, k: int, device: str, part_users: int) -> Scorer:
        """The scorer for top `k` on `device`, built once per worker (its host buffers sized
        for parts of `part_users` users)."""
        key = (k, device)
        if key not in self.scorers:
            self.scorers = {key: make_scorer(self.features, k, device, part_users)}
        return self.scorers[key]


_ITEMS: dict[tuple[str, str, int], ItemSide] = {}


def item_side(storage: SnapshotStorage, model: str, version: int) -> ItemSide:
    """The item side of a snapshot version, read and verified once per process."""
    key = (storage.description, model, version)
    if key not in _ITEMS:
        files = open_snapshot_files(storage, model, version)
        items = files.items
        order = pc.sort_indices(items.column("item_id"))
        features = read_factors(items, "features", files.manifest.dim, "item")
        _ITEMS.clear()  # one snapshot at a time: a worker that moves on frees the last one
        _ITEMS[key] = ItemSide(
            ids=items.column("item_id").take(order),
            features=features[order.to_numpy()].astype(np.float64),
            attributes=pa.Table.from_batches([items.select(items.schema.names[2:])]).take(order),
        )
    return _ITEMS[key]


def read_staged_users(storage: SnapshotStorage, path: str, start: int, stop: int) -> SelectedUsers:
    """Users [start, stop) of the staged `.users.arrow`."""
    reader = ipc.open_file(pa.BufferReader(storage.read_buffer(path)))
    table = reader.read_all().slice(start, stop - start)
    return SelectedUsers.from_table(table)


def part_table(users: SelectedUsers, blocks: Blocks, items: ItemSide) -> pa.Table:
    """The rows of one part: per user its top items by rank, attributes beside each row.

    Built block by block, each read before the next is asked for (a scorer may reuse a
    block's arrays).
    """
    schema = table_schema(items.attributes.schema)
    pieces = []
    for rows, top in blocks:
        n_users, k = top.items.shape
        flat = pa.array(top.items.reshape(-1))  # read by the takes below, not kept
        columns = [
            users.ids.take(pa.array(np.repeat(np.arange(rows.start, rows.stop), k))),
            pa.array(np.tile(np.arange(1, k + 1, dtype=np.int32), n_users)),
            items.ids.take(flat),
            pa.array(top.scores.reshape(-1).copy()),
            *(column.combine_chunks() for column in items.attributes.take(flat).columns),
        ]
        pieces.append(pa.Table.from_arrays(columns, schema=schema))
    return pa.concat_tables(pieces) if pieces else schema.empty_table()


def run_part(task: PartTask) -> tuple[int, str, int]:
    """Build and write one part; returns (index, sha256, rows)."""
    storage = open_storage(task.root)
    items = item_side(storage, task.model, task.snapshot_version)
    staging = staging_dir(task.model, task.table_version)
    users = read_staged_users(storage, f"{staging}/{USERS}", task.start, task.stop)
    scorer = items.scorer(task.k, task.device, task.stop - task.start)
    table = part_table(users, scorer.blocks(users.weights), items)
    if task.crash:
        os._exit(CRASH_EXIT)  # a hard death mid-job, like a killed executor
    part = write_part(storage, task.model, task.table_version, task.index, table)
    return task.index, part.sha256, part.rows
