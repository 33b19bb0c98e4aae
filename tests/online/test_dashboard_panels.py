"""The panel list, the optional panels' extension point, and the keys shared with `jobs`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from feature_store.registry import Registry
from jobs.cycle_log import counters_key, records_key
from online.dashboard.extensions import OPTIONAL_PANELS, Extensions
from online.dashboard.overview import cycle_counts_key, cycle_records_key
from online.dashboard.panels import PANELS
from online.dashboard.schemas import ExtensionMetric
from online.service import Service
from online.settings import ServiceSettings
from online.weight_store import RedisStoreConfig, open_store
from tests.online.synthetic import publish, synthetic_snapshot


def test_cycle_log_keys_are_those_jobs_writes() -> None:
    """`online` repeats jobs.cycle_log's key names (it may not import jobs): they agree."""
    for model in ("default", "movies", "a.b-c_1"):
        assert cycle_counts_key(model) == counters_key(model)
        assert cycle_records_key(model) == records_key(model)


def test_every_panel_has_a_renderer_and_a_route() -> None:
    """Each listed panel has a render function in panels.js and a data path of its own."""
    script = (Path(__file__).parents[2] / "online/dashboard/static/panels.js").read_text()
    for panel in PANELS:
        assert f"function {panel.id}(" in script
        assert panel.data_path == f"/dashboard/data/{panel.id}" and panel.refresh_s >= 1.0


def test_optional_panels_show_what_providers_give(tmp_path: Path, redis_url: str) -> None:
    """No provider: not available (with why). A provider: its metrics. A failing one: its
    error, and the other panels still answer."""
    root = str(tmp_path / "snapshots")
    publish(root, "movies", synthetic_snapshot())
    store = open_store(RedisStoreConfig(url=redis_url))
    service = Service(ServiceSettings(model="movies"), store, Registry(root))
    extensions = Extensions()

    async def tables(_: Service) -> list[ExtensionMetric] | None:
        return [ExtensionMetric(label="table version", value=3), ExtensionMetric(
            label="age", value=12.5, unit="s")]  # fmt: skip

    async def broken(_: Service) -> list[ExtensionMetric] | None:
        raise RuntimeError("batcher gone")

    async def nothing_yet(_: Service) -> list[ExtensionMetric] | None:
        return None

    before = asyncio.run(extensions.report(service)).panels
    assert [(p.id, p.available, p.reason) for p in before] == [
        (p.id, False, p.absent) for p in OPTIONAL_PANELS
    ]
    extensions.register("score_tables", tables)
    extensions.register("items_online", broken)
    extensions.register("featurization", nothing_yet)
    after = asyncio.run(extensions.report(service)).panels
    assert after[0].available and [m.value for m in after[0].metrics] == [3, 12.5]
    assert (after[1].available, after[1].reason) == (False, "RuntimeError: batcher gone")
    assert (after[2].available, after[2].reason) == (False, OPTIONAL_PANELS[2].absent)
    with pytest.raises(KeyError, match="no optional panel 'cluster'"):
        extensions.register("cluster", tables)


def test_the_featurization_panel_shows_the_batchers_numbers() -> None:
    """Planted batches (4 items in 10 ms, 8 in 20 ms): the panel's numbers are theirs."""
    from collections.abc import Sequence
    from types import SimpleNamespace
    from typing import cast

    from online.dashboard.providers import featurization
    from online.featurize.aimd import AimdController
    from online.featurize.batcher import AdaptiveBatcher

    def run(values: Sequence[int]) -> Sequence[int]:
        return values

    batcher: AdaptiveBatcher[int, int] = AdaptiveBatcher(run, AimdController(slo_s=0.025, size=9))
    batcher.batches += [(4, 0.010), (8, 0.020)]
    items = SimpleNamespace(batchers=lambda: [("movies", 3, batcher)])
    service = cast(Service, SimpleNamespace(items=items))
    found = {m.label: m for m in asyncio.run(featurization(service)) or []}
    assert (found["movies v3 next batch size"].value, found["movies v3 mean batch"].value) == (9, 6)
    latency, slo = found["movies v3 p99 batch latency"], found["movies v3 SLO"]
    assert isinstance(latency.value, float) and abs(latency.value - 19.9) < 1e-9
    assert isinstance(slo.value, float) and abs(slo.value - 25.0) < 1e-9
    assert (latency.unit, slo.unit, found["movies v3 mean batch"].unit) == ("ms", "ms", "items")
    assert found["movies v3 batches seen"].value == 2
    assert asyncio.run(featurization(cast(Service, SimpleNamespace(items=None)))) is None
