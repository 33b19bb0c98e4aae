"""Score tables: every user's top-N items, materialized, versioned, queried with indexes.

Format and layout: docs/score_tables.md. The materialize job writes parts with `write_part`
and publishes them with `publish_staged_table`; the query side reads `current_table_version`,
checks a version with `verify_table` and serves it through a `ScoreEngine`.
"""

from feature_store.score_tables.columns import (
    ITEM,
    KEY_SCHEMA,
    arrow_type,
    attribute_types,
    filter_kinds,
    table_schema,
)
from feature_store.score_tables.errors import (
    InvalidScoreTableError,
    ScoreEngineError,
    ScoreTableCorruptError,
    ScoreTableError,
    ScoreTableNotFoundError,
)
from feature_store.score_tables.layout import (
    KEY_COLUMNS,
    current_file,
    part_name,
    staging_dir,
    table_dir,
    tables_dir,
)
from feature_store.score_tables.manifest import TABLE_FORMAT_VERSION, PartFile, TableManifest
from feature_store.score_tables.publish import (
    publish_staged_table,
    staged_parts,
    switch_current,
    write_part,
)
from feature_store.score_tables.versions import (
    current_table_version,
    list_table_versions,
    next_table_version,
    read_table_manifest,
    staged_table_versions,
    verify_table,
)

__all__ = [
    "ITEM",
    "KEY_COLUMNS",
    "KEY_SCHEMA",
    "TABLE_FORMAT_VERSION",
    "InvalidScoreTableError",
    "PartFile",
    "ScoreEngineError",
    "ScoreTableCorruptError",
    "ScoreTableError",
    "ScoreTableNotFoundError",
    "TableManifest",
    "arrow_type",
    "attribute_types",
    "current_file",
    "current_table_version",
    "filter_kinds",
    "list_table_versions",
    "next_table_version",
    "part_name",
    "publish_staged_table",
    "read_table_manifest",
    "staged_parts",
    "staged_table_versions",
    "staging_dir",
    "switch_current",
    "table_dir",
    "table_schema",
    "tables_dir",
    "verify_table",
    "write_part",
]
