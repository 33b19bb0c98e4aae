"""`PUT /items/{item}` on a live server: featurized by the served tower, served by every
worker, filterable, learnable by the closed form, persisted, and known after a retrain."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pyarrow.compute as pc
import pytest
import redis

from batch.errors import GateRejectedError
from batch.options import TrainOptions
from feature_store.added_items import items_key
from feature_store.registry import Registry
from feature_store.tower.encode import encode_items
from feature_store.tower.network import featurize, load_tower
from jobs.retrain import RetrainOptions, run_retrain
from tests.batch.deep_planted import PlantedContent, planted_content
from tests.online.deep_snapshot import publish_deep
from tests.online.live_server import LiveServer
from tests.online.synthetic import publish, synthetic_snapshot
from tests.support.redis_server import RedisServer
from velox.posterior import closed_form_mean
from velox.settings import VeloxSettings

NEW = {"title": "the horror film of 2031", "year": 2031, "genres": ["horror"]}


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> PlantedContent:
    """Planted content data (60 users, 30 items)."""
    return planted_content(tmp_path_factory.mktemp("data"), n_users=60, n_items=30, per_user=15)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """VELOX_HOME of the module's server."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
    home: Path,
    redis_server: RedisServer,
    planted: PlantedContent,
) -> Iterator[tuple[LiveServer, str]]:
    """Two workers serving deep model `movies` (24 warm items) and mf model `flat`."""
    redis.Redis.from_url(redis_server.url).flushall()
    root = str(tmp_path_factory.mktemp("snapshots"))
    cold = planted.items["item_id"][24:]
    publish_deep(
        root, "movies", planted.items.filter(pc.invert(pc.is_in(planted.items["item_id"], cold)))
    )
    publish(root, "flat", synthetic_snapshot())
    env = {
        "VELOX_REDIS_URL": redis_server.url,
        "VELOX_SNAPSHOT_ROOT": root,
        "VELOX_MODEL": "movies",
    }
    server = LiveServer(home, env, workers=2)
    server.start()
    yield server, root
    server.stop()
    redis.Redis.from_url(redis_server.url).flushall()


def _wait_all_workers(client: httpx.Client, path: str, check: str) -> httpx.Response:
    """Poll until 8 answers in a row (both workers) pass `check` on their JSON."""
    deadline, streak = time.monotonic() + 20, 0
    answer = client.get(path)
    while streak < 8:
        assert time.monotonic() < deadline, answer.text
        answer = client.get(path)
        streak = streak + 1 if answer.status_code == 200 and check in answer.text else 0
    return answer


BAD = [
    ({"attributes": {"colour": "red"}}, 400, "unknown attribute"),
    ({"attributes": {"year": "1999"}}, 400, "finite number"),
    ({"attributes": {"genres": "horror"}}, 400, "list"),
    ({"attributes": {"title": "x" * 1001}}, 400, "characters"),
    ({"title": "no attributes key"}, 422, "attributes"),
]


def test_bad_items_are_refused_and_not_stored(
    served: tuple[LiveServer, str], redis_server: RedisServer
) -> None:
    server, _ = served
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        for body, status, words in BAD:
            answer = client.put("/items/bad-1", json=body)
            assert answer.status_code == status and words in answer.json()["error"], answer.text
        nan = client.put(
            "/items/bad-2",
            content=b'{"attributes": {"year": NaN}}',
            headers={"content-type": "application/json"},
        )
        assert 400 <= nan.status_code < 500, nan.text
        flat = client.put("/items/x?model=flat", json={"attributes": {}})
        assert flat.status_code == 409 and "no item tower" in flat.json()["error"]
        assert client.get("/predict?user=u1&item=bad-1").status_code == 404
    stored = redis.Redis.from_url(redis_server.url)
    assert stored.hlen(items_key("movies")) == 0 and stored.hlen(items_key("flat")) == 0


@pytest.mark.slow
@pytest.mark.spark
def test_put_predict_observe_retrain(
    served: tuple[LiveServer, str], redis_server: RedisServer, planted: PlantedContent, home: Path
) -> None:
    server, root = served
    snapshot = Registry(root).load("movies")
    assert snapshot.tower_spec is not None and snapshot.model_weights is not None
    expected = featurize(
        load_tower(snapshot.tower_spec, snapshot.model_weights),
        snapshot.tower_spec,
        encode_items(snapshot.tower_spec, [NEW]),
    )[0]
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        put = client.put("/items/new-1", json={"attributes": NEW})
        assert put.status_code == 200, put.text
        x = np.array(put.json()["features"], dtype=np.float32)
        np.testing.assert_allclose(x, expected, rtol=1e-6)
        where = "/predict?user=u1&k=3&explore=false&where=year%20%3E%3D%202030"
        top = _wait_all_workers(client, where, "new-1").json()
        assert [entry["item"] for entry in top["items"]] == ["new-1"]
        genre = client.get("/predict?user=u1&k=50&explore=false&where=genres%20contains%20'horror'")
        assert "new-1" in [entry["item"] for entry in genre.json()["items"]]

        # A time among the planted events', so that time-ordered evaluations stay well defined.
        event = {"user": "u1", "item": "new-1", "reward": 4.5, "timestamp": "2023-11-15T10:00:00Z"}
        observed = client.post("/observe", json=event)
        assert observed.status_code == 200, observed.text
        w = closed_form_mean(
            snapshot.w0_for("u1"), snapshot.lam, x.astype(np.float64)[None, :], np.array([4.5])
        )
        score = client.get("/predict?user=u1&item=new-1").json()
        assert score["score"] == pytest.approx(float(x.astype(np.float64) @ w), rel=1e-5)

        server.stop()  # the added item lives in Redis: a restarted service serves it again
        server.start()
        again = client.get("/predict?user=u1&item=new-1")
        assert again.status_code == 200 and again.json()["score"] == pytest.approx(score["score"])

        options = TrainOptions(
            dataset=None, events_path=planted.events_path, items_path=planted.items_path,
            model="movies", kind="deep", deep_epochs=10, deep_dim=4, deep_embed=8,
            deep_hidden=16, deep_distill_epochs=60, max_eval_users=50, device="cpu",
        )  # fmt: skip
        settings = VeloxSettings(home=home, snapshot_root=root, model="movies")
        client_redis = redis.Redis.from_url(redis_server.url)
        try:
            report = run_retrain(RetrainOptions(train=options), settings, client_redis)
            assert report.promoted and report.manifest.version == 2
        except GateRejectedError:  # published, but worse than the random v1 on some metric
            Registry(root).promote("movies", 2)  # as `velox models promote 2` would
        retrained = Registry(root).load("movies", 2)
        assert "new-1" in retrained.item_index  # a known item of the new version
        _wait_all_workers(client, "/predict?user=u1&item=new-1", '"version":2')
        refused = client.put("/items/new-1", json={"attributes": NEW})
        assert refused.status_code == 422 and "training data" in refused.json()["error"]
