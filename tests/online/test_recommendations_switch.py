"""Tables switched (and a damaged one refused) while /recommendations is under load."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from feature_store.registry import Registry
from feature_store.score_tables import ScoreTableCorruptError, switch_current, table_dir
from feature_store.score_tables.engines import load_table_into_engine
from tests.feature_store.score_tables.planted_table import publish_planted_table
from tests.online.table_server import MODEL, TOP_N, TableServer, table_server
from tests.support.redis_server import RedisServer

CLIENTS = 4


class Load:
    """`CLIENTS` threads asking /recommendations in a loop; every status and table seen."""

    def __init__(self, url: str) -> None:
        """Prepare the clients of `url`."""
        self.url = url
        self.statuses: Counter[int] = Counter()
        self.versions: Counter[int] = Counter()
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(CLIENTS)]

    def _run(self, index: int) -> None:
        with httpx.Client(base_url=self.url, timeout=10.0) as client:
            while not self.stop.is_set():
                response = client.get("/recommendations", params={"user": f"known{index}", "k": 5})
                version = (
                    response.json().get("table_version") if response.status_code == 200 else None
                )
                with self._lock:
                    self.statuses[response.status_code] += 1
                    if version is not None:
                        self.versions[version] += 1

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def wait_for(self, version: int, timeout_s: float = 20.0) -> None:
        """Block until some answer came from table `version`."""
        deadline = time.monotonic() + timeout_s
        while self.versions[version] == 0:
            assert time.monotonic() < deadline, f"table {version} never served: {self.versions}"
            time.sleep(0.05)


def publish_damaged(tables: TableServer) -> int:
    """A table version whose first part no longer matches its sha256, made current."""
    registry = Registry(tables.root)
    manifest = publish_planted_table(registry, MODEL, top_n=TOP_N, make_current=False)
    part = Path(tables.root) / table_dir(MODEL, manifest.table_version) / "part-00000.parquet"
    data = bytearray(part.read_bytes())
    data[len(data) // 3] ^= 0xFF
    part.write_bytes(bytes(data))
    switch_current(registry.storage, MODEL, manifest.table_version)
    if tables.settings.scores_url:
        with pytest.raises(ScoreTableCorruptError):
            load_table_into_engine(tables.settings, MODEL, manifest.table_version)
    return manifest.table_version


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["duckdb", "postgres"])
def test_switching_tables_under_load_fails_no_request(
    engine: str, tmp_path: Path, redis_server: RedisServer
) -> None:
    """v1 -> v2 -> damaged v3 (refused, v2 serves on) -> v4 -> v5 (v1-v3 dropped): all 200."""
    root, home = tmp_path / "snapshots", tmp_path / "home"
    root.mkdir()
    home.mkdir()
    with (
        table_server(engine, str(root), str(home), redis_server) as tables,
        Load(tables.server.url) as load,
    ):
        load.wait_for(1)
        load.wait_for(tables.publish_table())
        damaged = publish_damaged(tables)
        time.sleep(2.5)  # more than the engine's poll interval: it saw v3 and refused it
        load.wait_for(tables.publish_table())
        load.wait_for(tables.publish_table(top_n=None))
        time.sleep(0.5)
    assert set(load.statuses) == {200}, load.statuses
    assert damaged not in load.versions
    assert sum(load.statuses.values()) > 50
