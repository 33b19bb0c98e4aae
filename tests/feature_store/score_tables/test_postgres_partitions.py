"""A PostgreSQL table version as user_id range partitions, filled by concurrent connections:
the same rows as one serial load, a query reads one partition, a failure or a crash between
partitions leaves the current version serving, overlapping parts are refused."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from feature_store.registry import Registry
from feature_store.score_tables import (
    ScoreEngineError,
    ScoreTableCorruptError,
    TableManifest,
    next_table_version,
    publish_staged_table,
    table_dir,
    write_part,
)
from feature_store.score_tables.postgres_engine import PostgresEngine
from feature_store.score_tables.postgres_partitions import (
    Partition,
    PartitionFill,
    attach_sql,
    plan_partitions,
)
from feature_store.score_tables.postgres_schema import PostgresConfig, qualified, relation_name
from feature_store.score_tables.sql_filter import top_rows_sql
from tests.feature_store.planted import planted_data
from tests.feature_store.score_tables.planted_table import publish_planted_table, read_parts

MODEL = "movies"
USERS = 16  # 4 parts of 4 users


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    """60 planted items (NULL titles and prices, genre lists) and 16 users."""
    registry = Registry(str(tmp_path / "snapshots"))
    registry.publish(MODEL, planted_data(seed=11, n=60, m=USERS))
    return registry


def config(url: str, **settings: int) -> PostgresConfig:
    """A config of a fresh schema: one partition per part, two filled at once, unless told."""
    schema = f"scores_{uuid.uuid4().hex[:12]}"
    base = {"load_workers": 2, "partition_rows": 1, **settings}
    return PostgresConfig(url=url, schema_name=schema, poll_interval_s=0.0, **base)


@pytest.fixture
def engines(registry: Registry, postgres_url: str) -> Iterator[list[PostgresEngine]]:
    """Engines made by `open_`, closed after the test."""
    opened: list[PostgresEngine] = []
    yield opened
    for engine in opened:
        engine.close()


def open_(engines: list[PostgresEngine], registry: Registry, cfg: PostgresConfig) -> PostgresEngine:
    """A PostgreSQL engine over the registry's tables, closed by the `engines` fixture."""
    engines.append(PostgresEngine(registry.storage, cfg))
    return engines[-1]


def rows_of(url: str, cfg: PostgresConfig, table_version: int) -> list[tuple[object, ...]]:
    """Every row of a loaded version, keys first, in (user_id, rank) order."""
    relation = qualified(cfg.schema_name, relation_name(MODEL, table_version))
    with psycopg.connect(url) as connection:
        return connection.execute(
            f"SELECT * FROM {relation} ORDER BY user_id, rank"  # noqa: S608
        ).fetchall()


def relations(url: str, schema: str) -> list[tuple[str, str]]:
    """(name, relkind) of every table of `schema` but the registry, by name."""
    with psycopg.connect(url) as connection:
        found = connection.execute(
            "SELECT relname, relkind::text FROM pg_class JOIN pg_namespace n "
            "ON n.oid = relnamespace WHERE nspname = %s AND relkind IN ('r', 'p') "
            "AND relname <> 'tables' ORDER BY 1",
            [schema],
        ).fetchall()
    return [(str(name), str(kind)) for name, kind in found]


def test_parallel_partitioned_load_equals_the_parts_and_a_serial_load(
    registry: Registry, postgres_url: str, engines: list[PostgresEngine]
) -> None:
    """4 partitions by 2 connections hold the very rows of the parts, as one partition does."""
    manifest = publish_planted_table(registry, MODEL, top_n=20)
    parallel = config(postgres_url)
    serial = config(postgres_url, load_workers=1, partition_rows=10**9)
    for cfg in (parallel, serial):
        open_(engines, registry, cfg).load(MODEL, manifest.table_version)
    kinds = [kind for _, kind in relations(postgres_url, parallel.schema_name)]
    assert (kinds.count("p"), kinds.count("r")) == (1, 4)
    kinds = [kind for _, kind in relations(postgres_url, serial.schema_name)]
    assert (kinds.count("p"), kinds.count("r")) == (1, 1)
    loaded = rows_of(postgres_url, parallel, manifest.table_version)
    assert loaded == rows_of(postgres_url, serial, manifest.table_version)
    parts = read_parts(registry, MODEL, manifest.table_version)
    keys = [parts.column(name).to_pylist() for name in ("user_id", "rank", "item_id")]
    assert [row[:3] for row in loaded] == list(zip(*keys, strict=True))
    assert [row[3] for row in loaded] == parts.column("score").to_pylist()  # exact float64


def _plan(cursor: psycopg.Cursor[tuple[object, ...]], query: str) -> str:
    return "\n".join(str(row[0]) for row in cursor.execute(query).fetchall())


def test_a_user_query_reads_one_partition_through_its_covering_index(
    registry: Registry, postgres_url: str, engines: list[PostgresEngine]
) -> None:
    """EXPLAIN of the engine's statement: pruned to the user's partition at plan time and, as a
    prepared statement with a generic plan, at executor start; an index-only scan there."""
    manifest = publish_planted_table(registry, MODEL, top_n=20)
    cfg = config(postgres_url)
    open_(engines, registry, cfg).load(MODEL, manifest.table_version)
    relation = relation_name(MODEL, manifest.table_version)
    statement = top_rows_sql(qualified(cfg.schema_name, relation), None, "postgres")
    with psycopg.connect(postgres_url) as connection, connection.cursor() as cursor:
        custom = _plan(cursor, "EXPLAIN " + statement.replace("%s", "'user-13'", 1) % 10)
        cursor.execute("SET plan_cache_mode = force_generic_plan")
        cursor.execute("PREPARE q(text, bigint) AS " + statement.replace("%s", "$1", 1) % "$2")
        generic = _plan(cursor, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) EXECUTE q('user-13', 10)")
    users = sorted(f"user-{u}" for u in range(USERS))
    holder = f"{relation}_p{users.index('user-13') // 4:05d}"
    for plan in (custom, generic):
        scanned = [name for name in (f"{relation}_p{i:05d}" for i in range(4)) if name in plan]
        assert scanned == [holder], plan
        assert "Index Only Scan" in plan
    assert "Subplans Removed: 3" in generic


def test_attach_skips_the_validation_scan(registry: Registry, postgres_url: str) -> None:
    """Each partition's CHECK constraint implies its bound: PostgreSQL says so (DEBUG1) and
    does not scan it when it is attached."""
    manifest = publish_planted_table(registry, MODEL, top_n=5)
    cfg = config(postgres_url)
    relation = relation_name(MODEL, manifest.table_version)
    partitions = plan_partitions(registry.storage, manifest, relation, 1)
    assert [p.lower for p in partitions][1:] == [p.upper for p in partitions][:-1]
    fill = PartitionFill(postgres_url, cfg.schema_name, registry.storage, manifest, 0)
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{cfg.schema_name}"')
        for partition in partitions:
            fill.fill(partition, threading.Event())
        notices: list[str] = []
        connection.add_notice_handler(lambda notice: notices.append(str(notice.message_primary)))
        connection.execute("SET client_min_messages = debug1")
        with connection.transaction():
            for statement in attach_sql(cfg.schema_name, relation, manifest.columns, partitions):
                connection.execute(statement)
    implied = [n for n in notices if "is implied by existing constraints" in n]
    assert len(implied) == len(partitions) == 4


class _Crash(BaseException):
    """Stands for the process dying: no clean-up code runs."""


def _fail_at(monkeypatch: pytest.MonkeyPatch, failing: int, error: BaseException) -> list[str]:
    """Make the fill of partition number `failing` raise `error`; returns the names filled."""
    filled: list[str] = []
    real = PartitionFill.fill

    def fill(self: PartitionFill, partition: Partition, stop: threading.Event) -> None:
        if partition.name.endswith(f"_p{failing:05d}"):
            raise error
        real(self, partition, stop)
        filled.append(partition.name)

    monkeypatch.setattr(PartitionFill, "fill", fill)
    return filled


@pytest.mark.parametrize("error", [psycopg.OperationalError("server gone"), _Crash()])
def test_a_failure_between_partitions_leaves_the_current_version_serving(
    registry: Registry,
    postgres_url: str,
    engines: list[PostgresEngine],
    monkeypatch: pytest.MonkeyPatch,
    error: BaseException,
) -> None:
    """Partitions 0 and 1 are committed, 2 fails: the old version answers, the new one is not
    registered and has no parent; an error drops the committed partitions, a crash leaves
    them to the next load, which drops them and loads the version whole."""
    first = publish_planted_table(registry, MODEL, top_n=5)
    cfg = config(postgres_url, load_workers=1)
    engine = open_(engines, registry, cfg)
    engine.load(MODEL, first.table_version)
    before = engine.top_k(MODEL, "user-3", 10)
    second = publish_planted_table(registry, MODEL, top_n=10)
    new = relation_name(MODEL, second.table_version)
    filled = _fail_at(monkeypatch, 2, error)
    with pytest.raises(ScoreEngineError if isinstance(error, psycopg.Error) else _Crash):
        engine.load(MODEL, second.table_version)
    assert filled == [f"{new}_p00000", f"{new}_p00001"]
    assert engine.top_k(MODEL, "user-3", 10) == before
    left = [name for name, _ in relations(postgres_url, cfg.schema_name) if name.startswith(new)]
    assert left == ([] if isinstance(error, psycopg.Error) else filled)  # no parent either way
    monkeypatch.undo()
    engine.load(MODEL, second.table_version)
    answer = engine.top_k(MODEL, "user-3", 10)
    assert (answer.table_version, len(answer.rows)) == (second.table_version, 10)
    kinds = [k for name, k in relations(postgres_url, cfg.schema_name) if name.startswith(new)]
    assert (kinds.count("p"), kinds.count("r")) == (1, 4)


def _overlapping_version(registry: Registry, manifest: TableManifest) -> int:
    """A copy of `manifest`'s table whose part 0 also holds the first row of part 1's user."""
    storage = registry.storage
    directory = Path(storage.description) / table_dir(MODEL, manifest.table_version)
    parts = [pq.read_table(directory / name) for name in sorted(manifest.files)]
    parts[0] = pa.concat_tables([parts[0], parts[1].slice(0, 1)])
    version = next_table_version(storage, MODEL)
    files = {}
    for index, part in enumerate(parts):
        files[f"part-{index:05d}.parquet"] = write_part(storage, MODEL, version, index, part)
    schema = parts[0].schema
    publish_staged_table(
        storage,
        MODEL,
        version,
        snapshot_version=manifest.snapshot_version,
        top_n=manifest.top_n,
        users=manifest.users,
        items=manifest.items,
        weights=manifest.weights,
        attributes=pa.schema([schema.field(name) for name in manifest.columns]),
        files=files,
        make_current=False,
    )
    return version


def test_parts_whose_users_overlap_are_refused(
    registry: Registry, postgres_url: str, engines: list[PostgresEngine]
) -> None:
    """A row of part 0 inside part 1's range breaks its CHECK constraint: a named error."""
    manifest = publish_planted_table(registry, MODEL, top_n=5)
    engine = open_(engines, registry, config(postgres_url))
    engine.load(MODEL, manifest.table_version)
    bad = _overlapping_version(registry, manifest)
    with pytest.raises(ScoreTableCorruptError, match="overlap"):
        engine.load(MODEL, bad)
    assert engine.top_k(MODEL, "user-3", 3).table_version == manifest.table_version
