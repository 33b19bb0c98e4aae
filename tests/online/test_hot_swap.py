"""Hot swap under continuous load: no failed request, no response mixing two versions."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from feature_store.pointer import CurrentPointer
from feature_store.registry import Registry
from online.schemas import PredictResponse
from tests.online.live_server import LiveServer
from tests.online.synthetic import publish, synthetic_snapshot


@pytest.fixture
def swap_server(tmp_path: Path, redis_url: str) -> Iterator[tuple[LiveServer, str]]:
    """A server over its own registry root, with v1 published."""
    root = str(tmp_path / "snapshots")
    publish(root, "movies", synthetic_snapshot())
    env = {"VELOX_REDIS_URL": redis_url, "VELOX_SNAPSHOT_ROOT": root, "VELOX_MODEL": "movies"}
    server = LiveServer(tmp_path, env)
    server.start()
    yield server, root
    server.stop()


class Load:
    """Greedy /predict and /observe for fresh users in a loop, recording every answer."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: list[PredictResponse] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10.0) as client:
            n = 0
            while not self._stop.is_set():
                n += 1
                params: dict[str, str | int] = {"user": f"load{n}", "k": 5, "explore": "false"}
                predict = client.get("/predict", params=params)
                observe = client.post(
                    "/observe", json={"user": f"load{n}", "item": "i1", "reward": 1}
                )
                for response in (predict, observe):
                    if response.status_code != 200:
                        self.failures.append(response.text)
                self.answers.append(predict.json())

    def wait_for_version(self, version: int, timeout_s: float = 20.0) -> None:
        """Block until an answer from `version` was recorded."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(answer.get("version") == version for answer in self.answers[-20:]):
                return
            time.sleep(0.05)
        raise AssertionError(f"version {version} was never served")


def corrupt_and_point_current_at(root: str, model: str) -> int:
    """Publish a version, flip a byte of its items file, make CURRENT name it (bit rot)."""
    registry = Registry(root)
    version = registry.publish(model, synthetic_snapshot(shift=5.0), promote=False).version
    items = Path(root) / model / f"v{version}" / "items.arrow"
    data = bytearray(items.read_bytes())
    data[len(data) // 2] ^= 0xFF
    items.write_bytes(bytes(data))
    current = Path(root) / model / "CURRENT"
    pointer = CurrentPointer.from_json(current.read_bytes()).promoted(version)
    current.write_bytes(pointer.to_json())
    return version


def test_swap_under_load_fails_nothing_and_never_mixes_versions(
    swap_server: tuple[LiveServer, str],
) -> None:
    server, root = swap_server
    with Load(server.url) as load:
        load.wait_for_version(1)
        publish(root, "movies", synthetic_snapshot(shift=1.0))
        load.wait_for_version(2)
        bad = corrupt_and_point_current_at(root, "movies")
        time.sleep(0.5)  # several polls of the watcher
    assert load.failures == []
    registry = Registry(root)
    snapshots = {v: registry.load("movies", v) for v in (1, 2)}
    versions = [answer["version"] for answer in load.answers]
    assert set(versions) == {1, 2}
    assert versions == sorted(versions)  # once swapped, never back
    assert bad not in versions
    for answer in load.answers:
        snapshot = snapshots[answer["version"]]
        expected = snapshot.items.features.astype(np.float64) @ snapshot.prior_mean
        for entry in answer["items"]:
            row = snapshot.item_index[entry["item"]]
            assert entry["score"] == pytest.approx(expected[row], rel=1e-5, abs=1e-6)
    models = httpx.get(server.url + "/models").json()
    assert models["models"][0]["version"] == 2
    assert "now serving movies v2" in server.log()
    assert f"not serving movies v{bad}, keeping the old version" in server.log()


def test_a_server_started_before_any_snapshot_serves_the_first_one(
    tmp_path: Path, redis_url: str
) -> None:
    server = LiveServer(tmp_path, {"VELOX_REDIS_URL": redis_url, "VELOX_MODEL": "movies"})
    server.start(ready=False)
    try:
        assert httpx.get(server.url + "/readyz").status_code == 503
        answer = httpx.get(server.url + "/predict", params={"user": "u"})
        assert answer.status_code == 503
        assert "no snapshot" in answer.json()["error"]
        publish(str(tmp_path / "snapshots"), "movies", synthetic_snapshot())
        deadline = time.monotonic() + 20
        while httpx.get(server.url + "/readyz").status_code != 200:
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.05)
        assert httpx.get(server.url + "/predict", params={"user": "u"}).json()["version"] == 1
    finally:
        server.stop()
