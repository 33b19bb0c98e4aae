"""A live `velox serve` whose model has score tables, over DuckDB or PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from feature_store.registry import Registry
from feature_store.score_tables.engines import load_table_into_engine
from tests.feature_store.score_tables.planted_table import publish_planted_table
from tests.online.live_server import LiveServer
from tests.online.synthetic import publish, synthetic_snapshot
from tests.support.postgres_database import temporary_database
from tests.support.redis_server import RedisServer
from velox.settings import VeloxSettings

MODEL = "movies"
TOP_N = 8


class TableServer:
    """A live server whose model has score tables, and how to publish (and load) more."""

    def __init__(self, root: str, server: LiveServer, scores_url: str | None) -> None:
        """Wrap `server`, serving `root`, loading tables into `scores_url` when given."""
        self.root = root
        self.server = server
        self.settings = VeloxSettings(snapshot_root=root, scores_url=scores_url)

    def publish_table(self, top_n: int | None = TOP_N) -> int:
        """Materialize the current snapshot by brute force, publish it and load it."""
        manifest = publish_planted_table(Registry(self.root), MODEL, top_n=top_n)
        if self.settings.scores_url:
            load_table_into_engine(self.settings, MODEL, manifest.table_version)
        return manifest.table_version


@contextmanager
def table_server(
    engine: str, root: str, home: str, redis_server: RedisServer
) -> Iterator[TableServer]:
    """`velox serve` over a synthetic `movies` (40 items, 5 users) with one top-8 table."""
    publish(root, MODEL, synthetic_snapshot(n_items=40, n_users=5))
    database = temporary_database("velox_reco") if engine == "postgres" else nullcontext(None)
    with database as url:
        env = {"VELOX_REDIS_URL": redis_server.url, "VELOX_SNAPSHOT_ROOT": root}
        env |= {"VELOX_MODEL": MODEL, **({"VELOX_SCORES_URL": url} if url else {})}
        server = LiveServer(Path(home), env)
        tables = TableServer(root, server, url)
        tables.publish_table()
        server.start()
        try:
            yield tables
        finally:
            server.stop()
