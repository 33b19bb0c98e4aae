"""Drop old score table versions from storage, keeping the newest few and the current one.

Added by the materialize side (`velox materialize --keep N`); PostgreSQL's loaded copies
follow `VELOX_SCORES_KEEP` separately (postgres_load.py).
"""

from __future__ import annotations

from feature_store.score_tables.layout import MANIFEST, table_dir
from feature_store.score_tables.versions import current_table_version, list_table_versions
from feature_store.storage import SnapshotStorage


def drop_old_tables(storage: SnapshotStorage, model: str, keep: int) -> list[int]:
    """Remove all but the `keep` newest table versions (never CURRENT's); returns those removed.

    A reader that just moved to the newest version may still be finishing a query on the one
    before, so `keep` is at least 1 and 2 is the safe default.
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    current = current_table_version(storage, model)
    versions = list_table_versions(storage, model)
    dropped = [v for v in versions[: max(len(versions) - keep, 0)] if v != current]
    for version in dropped:
        # The manifest first: a version without one is no longer listed, even if the removal
        # of its parts is cut short.
        storage.remove_file(f"{table_dir(model, version)}/{MANIFEST}")
        storage.remove_tree(table_dir(model, version))
    return dropped
