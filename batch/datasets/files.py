"""A dataset on disk: events as Parquet partitioned by date, items and users as Parquet files."""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from batch.errors import DatasetError
from batch.events_schema import PARTITION_COLUMN, conform_events, with_date_partition

COMPLETE_MARKER = "_COMPLETE"


@dataclass(frozen=True)
class DatasetFiles:
    """Where a dataset's tables live; `items` and `users` are optional attribute tables."""

    events: str
    items: str | None = None
    users: str | None = None


def dataset_layout(root: Path) -> DatasetFiles:
    """The file names of a dataset written by `write_dataset` under `root`."""
    users = root / "users.parquet"
    return DatasetFiles(
        events=str(root / "events"),
        items=str(root / "items.parquet"),
        users=str(users) if users.exists() else None,
    )


def is_complete(root: Path) -> bool:
    """True when a dataset under `root` was written completely (its marker exists)."""
    return (root / COMPLETE_MARKER).exists()


def write_events_chunk(events: pa.Table, events_dir: Path, chunk: int) -> None:
    """Append one chunk of events to `events_dir`, one file per date partition."""
    pq.write_to_dataset(
        with_date_partition(conform_events(events)),
        root_path=str(events_dir),
        partition_cols=[PARTITION_COLUMN],
        basename_template=f"part-{chunk:05d}-{{i}}.parquet",
        existing_data_behavior="overwrite_or_ignore",
    )


class DatasetWriter:
    """Writes a dataset into a temporary folder and renames it into place when complete."""

    def __init__(self, root: Path) -> None:
        """Prepare to write the dataset that will live at `root`."""
        self.root = root
        self.staging = root.parent / f".tmp-{root.name}-{uuid.uuid4().hex}"
        self._chunks = 0

    def __enter__(self) -> DatasetWriter:
        """Create the staging folder."""
        self.staging.mkdir(parents=True)
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        """Move the staging folder into place on success, delete it on failure."""
        if kind is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            return
        (self.staging / COMPLETE_MARKER).touch()
        if self.root.exists():
            shutil.rmtree(self.root)
        os.replace(self.staging, self.root)

    def add_events(self, events: pa.Table) -> None:
        """Append a chunk of events (any size that fits in memory)."""
        write_events_chunk(events, self.staging / "events", self._chunks)
        self._chunks += 1

    def set_items(self, items: pa.Table) -> None:
        """Write the item attributes table (`item_id` plus attribute columns)."""
        if "item_id" not in items.column_names:
            raise DatasetError("an items table needs an item_id column")
        pq.write_table(items, self.staging / "items.parquet")

    def set_users(self, users: pa.Table) -> None:
        """Write the user attributes table (`user_id` plus attribute columns)."""
        if "user_id" not in users.column_names:
            raise DatasetError("a users table needs a user_id column")
        pq.write_table(users, self.staging / "users.parquet")
