"""Build and publish a score table version (protocol: docs/score_tables.md).

Parts are written into `.staging-<T>/`, each to a temporary name and renamed when complete, so
a crashed build keeps its finished parts and a rerun writes only the missing ones. Publishing
writes the manifest (fsynced), renames the staging directory to `<T>` (the commit point) and
then replaces `CURRENT` atomically, exactly as snapshots are published.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from feature_store.pointer import utc_now
from feature_store.score_tables.columns import attribute_types
from feature_store.score_tables.errors import InvalidScoreTableError
from feature_store.score_tables.layout import (
    LOCK,
    MANIFEST,
    current_file,
    parse_part_name,
    part_name,
    staging_dir,
    table_dir,
    tables_dir,
)
from feature_store.score_tables.manifest import (
    TABLE_FORMAT_VERSION,
    PartFile,
    TableManifest,
    Weights,
)
from feature_store.storage import SnapshotStorage, sha256_hex

ROW_GROUP_ROWS = 16_384


def write_part(
    storage: SnapshotStorage, model: str, table_version: int, index: int, part: pa.Table
) -> PartFile:
    """Write one part into the staging directory; it appears under its name only complete."""
    directory = staging_dir(model, table_version)
    storage.make_dir(directory)
    sink = pa.BufferOutputStream()
    # Small row groups: a user's rows are one contiguous run, and DuckDB reads (or skips) whole
    # row groups by their user_id range, so a point query decodes ~ROW_GROUP_ROWS rows.
    pq.write_table(part, sink, row_group_size=ROW_GROUP_ROWS)
    data = sink.getvalue()
    # replace_file writes a temporary, fsyncs it and renames it: the name means "complete".
    storage.replace_file(f"{directory}/{part_name(index)}", data.to_pybytes())
    return PartFile(sha256=sha256_hex(data), rows=part.num_rows)


def staged_parts(storage: SnapshotStorage, model: str, table_version: int) -> dict[str, PartFile]:
    """The complete parts already in the staging directory: sha256 and row count of each."""
    directory = staging_dir(model, table_version)
    found = {}
    for name in storage.list_dir(directory):
        if parse_part_name(name) is None:
            continue
        data = storage.read_buffer(f"{directory}/{name}")
        rows = pq.ParquetFile(pa.BufferReader(data)).metadata.num_rows
        found[name] = PartFile(sha256=sha256_hex(data), rows=rows)
    return found


def switch_current(storage: SnapshotStorage, model: str, table_version: int) -> None:
    """Point `CURRENT` at `table_version` (one atomic replace)."""
    with storage.lock(f"{tables_dir(model)}/{LOCK}"):
        storage.replace_file(current_file(model), f"{table_version}\n".encode())


def publish_staged_table(
    storage: SnapshotStorage,
    model: str,
    table_version: int,
    *,
    snapshot_version: int,
    top_n: int | None,
    users: int,
    items: int,
    weights: Weights,
    attributes: pa.Schema,
    files: dict[str, PartFile] | None = None,
    make_current: bool = True,
) -> TableManifest:
    """Publish the staged parts of `table_version` and (by default) make it current.

    `files` are the parts' entries as `write_part` returned them; None hashes the staged parts
    (after a resumed build). `attributes` is the schema of the attribute columns.
    """
    staged = staged_parts(storage, model, table_version) if files is None else files
    if not staged:
        raise InvalidScoreTableError(f"score table {model} {table_version} has no staged parts")
    manifest = TableManifest(
        format_version=TABLE_FORMAT_VERSION,
        model=model,
        snapshot_version=snapshot_version,
        table_version=table_version,
        top_n=top_n,
        users=users,
        items=items,
        rows=sum(part.rows for part in staged.values()),
        created_at=utc_now(),
        weights=weights,
        columns=attribute_types(attributes),
        files=dict(sorted(staged.items())),
    )
    manifest.validate()
    staging = staging_dir(model, table_version)
    missing = sorted(set(manifest.files) - set(storage.list_dir(staging)))
    if missing:
        raise InvalidScoreTableError(f"{staging} lacks the parts {missing}")
    # replace_file syncs the staging directory too: the parts' entries are durable with it.
    storage.replace_file(f"{staging}/{MANIFEST}", manifest.to_json().encode())
    if not storage.rename_dir(staging, table_dir(model, table_version)):
        raise InvalidScoreTableError(f"score table {model} {table_version} already exists")
    storage.sync_dir(tables_dir(model))
    if make_current:
        switch_current(storage, model, table_version)
    return manifest
