"""Find a training job's dataset and read it: events into Spark, attribute tables into Arrow."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as sf

from batch.datasets.files import DatasetFiles
from batch.datasets.movielens import NAME as MOVIELENS
from batch.datasets.movielens import load_movielens_100k
from batch.datasets.synthetic import SyntheticSpec, load_synthetic
from batch.errors import DatasetError, EventsSchemaError
from batch.events_schema import ITEM_ATTRIBUTE_TYPES, REQUIRED_FIELDS
from batch.options import TrainOptions
from velox.settings import VeloxSettings

DATASETS = ("synthetic", MOVIELENS)


def resolve_dataset(options: TrainOptions, settings: VeloxSettings) -> tuple[str, DatasetFiles]:
    """A label for the dataset (recorded in the manifest) and where its files are."""
    if options.events_path is not None:
        if not Path(options.events_path).exists() and "://" not in options.events_path:
            raise DatasetError(f"events path {options.events_path} does not exist")
        if not _is_csv(options.events_path):
            _check_parquet_footers(options.events_path)
        files = DatasetFiles(events=options.events_path, items=options.items_path)
        return f"events:{options.events_path}", files
    cache = settings.dataset_cache()
    if options.dataset == MOVIELENS:
        return MOVIELENS, load_movielens_100k(cache)
    if options.dataset == "synthetic":
        spec = SyntheticSpec(n_events=options.synthetic_events, seed=options.seed)
        return f"synthetic-{options.synthetic_events}", load_synthetic(cache, spec)
    raise DatasetError(f"unknown dataset {options.dataset!r}; choose one of {', '.join(DATASETS)}")


def local_bytes(path: str) -> int | None:
    """Bytes of the files at a local `path` (a file or a folder), None for a URI."""
    if "://" in path:
        return None
    local = Path(path)
    if local.is_file():
        return local.stat().st_size
    return sum(f.stat().st_size for f in local.rglob("*") if f.is_file())


def _is_csv(path: str) -> bool:
    if path.endswith(".csv"):
        return True
    local = Path(path)
    return local.is_dir() and any(local.rglob("*.csv")) and not any(local.rglob("*.parquet"))


def _check_parquet_footers(path: str) -> None:
    """Refuse local files that are not Parquet before Spark does (with pages of Java)."""
    if "://" in path:
        return
    local = Path(path)
    for file in [local] if local.is_file() else sorted(local.rglob("*.parquet")):
        try:
            pq.read_schema(file)
        except (OSError, pa.ArrowInvalid) as error:
            raise DatasetError(f"cannot read events at {file}: {error}") from error


def read_events(spark: SparkSession, path: str) -> DataFrame:
    """Events from Parquet (a file or a date-partitioned folder) or CSV with a header row.

    Columns are matched by name and cast to the events schema; missing nullable columns are
    added as null. CSV timestamps are ISO-8601 text.
    """

    from batch.events_schema import spark_events_schema

    try:
        if _is_csv(path):
            frame = spark.read.option("header", "true").csv(path)
        else:
            frame = spark.read.parquet(path)
    except AnalysisException as error:
        raise DatasetError(f"cannot read events at {path}: {error}") from error
    missing = [name for name in REQUIRED_FIELDS if name not in frame.columns]
    if missing:
        raise EventsSchemaError(f"events at {path} lack the column(s) {', '.join(missing)}")
    columns = []
    for field in spark_events_schema().fields:
        source = sf.col(field.name) if field.name in frame.columns else sf.lit(None)
        columns.append(source.cast(field.dataType).alias(field.name))
    return frame.select(*columns)


def read_attributes(path: str | None, key: str) -> pa.Table | None:
    """An item or user attribute table (Parquet) keyed by `key`, or None without a path."""
    if path is None:
        return None
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as error:
        raise DatasetError(f"cannot read attributes at {path}: {error}") from error
    if key not in table.column_names:
        raise DatasetError(f"attribute table {path} has no {key} column")
    return table.set_column(table.column_names.index(key), key, table.column(key).cast(pa.string()))


def known_item_types(table: pa.Table) -> pa.Table:
    """`table` with the known attribute columns (title, year, genres, price) cast to their types."""
    for name, kind in ITEM_ATTRIBUTE_TYPES.items():
        if name in table.column_names:
            index = table.column_names.index(name)
            table = table.set_column(index, name, table.column(name).cast(kind))
    return table
