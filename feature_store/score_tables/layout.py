"""Names of a model's score tables under a snapshot root (spec: docs/score_tables.md).

    <root>/<model>/score_tables/CURRENT                   text: the table version served
    <root>/<model>/score_tables/<T>/manifest.json         one immutable table version T
    <root>/<model>/score_tables/<T>/part-NNNNN.parquet
    <root>/<model>/score_tables/.staging-<T>/             a build in progress (kept on a crash,
                                                          so a rerun resumes it)
    <root>/<model>/score_tables/.staging-<T>/.part-NNNNN.parquet.tmp-<uuid>   a part being written

Why here: the snapshot registry takes only `v<N>` directories of `<root>/<model>/` for
versions (`Registry.versions`, `next_version`, `gc` all go through `parse_version_dir`), so
`score_tables` is never mistaken for a snapshot version nor collected as a leftover;
tests/feature_store/score_tables/test_format.py pins that.
"""

from __future__ import annotations

import re

from feature_store.layout import check_model_name

SCORE_TABLES = "score_tables"
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
STAGING_PREFIX = ".staging-"
LOCK = ".lock"

USER_ID = "user_id"
RANK = "rank"
ITEM_ID = "item_id"
SCORE = "score"
KEY_COLUMNS = (USER_ID, RANK, ITEM_ID, SCORE)
"""The first four columns of every part, in this order; no attribute may take these names."""

_TABLE_DIR = re.compile(r"[1-9][0-9]{0,17}")
_PART = re.compile(r"part-([0-9]{5})\.parquet")


def tables_dir(model: str) -> str:
    """`<model>/score_tables`, relative to the snapshot root."""
    return f"{check_model_name(model)}/{SCORE_TABLES}"


def table_dir(model: str, table_version: int) -> str:
    """`<model>/score_tables/<T>`: one published table version."""
    return f"{tables_dir(model)}/{table_version}"


def staging_dir(model: str, table_version: int) -> str:
    """`<model>/score_tables/.staging-<T>`: where table version T is built before it exists."""
    return f"{tables_dir(model)}/{STAGING_PREFIX}{table_version}"


def current_file(model: str) -> str:
    """`<model>/score_tables/CURRENT`: the served table version, as decimal text."""
    return f"{tables_dir(model)}/{CURRENT}"


def part_name(index: int) -> str:
    """`part-NNNNN.parquet` for the part of number `index` (0-based, in user_id order)."""
    if not 0 <= index <= 99_999:
        raise ValueError(f"part index {index} is outside 0..99999")
    return f"part-{index:05d}.parquet"


def parse_part_name(name: str) -> int | None:
    """The index of a part file name, or None for any other name (temporaries included)."""
    match = _PART.fullmatch(name)
    return int(match.group(1)) if match else None


def parse_table_dir(name: str) -> int | None:
    """The table version of a directory name like `7`, or None for any other name."""
    return int(name) if _TABLE_DIR.fullmatch(name) else None


def parse_staging_dir(name: str) -> int | None:
    """The table version of a staging directory name like `.staging-7`, or None."""
    if not name.startswith(STAGING_PREFIX):
        return None
    return parse_table_dir(name.removeprefix(STAGING_PREFIX))
