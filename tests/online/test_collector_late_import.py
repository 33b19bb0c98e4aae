"""A deep model that arrives after startup imports torch after the service froze its collector:
its install freezes torch too, so full collections stay off its ~200,000 objects.

Each case runs in a fresh process (the freeze and torch's import are process-wide), set up as
`online.main` sets a service up, with the session's Redis.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from tests.online.deep_snapshot import publish_deep
from tests.support.fresh_python import fresh_python

SCRIPT = """
import gc, sys
from feature_store.registry import Registry
from online.collector import quiet_collector
from online.main import added_items_for, store_config
from online.service import Service
from online.settings import ServiceSettings
from online.weight_store import open_store
from velox.redis_url import sync_client

root, url, process = sys.argv[1:]
settings = ServiceSettings(model="m")
service = Service(settings, open_store(store_config(settings, url)), Registry(root))
service.items = added_items_for(settings, sync_client(url), service.install_lock)
if process == "service":
    quiet_collector()  # startup done, no model yet
snapshot = Registry(root).load("m")
assert "torch" not in sys.modules
print(gc.get_freeze_count())
service.install(snapshot)  # the first deep model: its tower imports torch
assert "torch" in sys.modules
print(len(gc.get_objects()), gc.get_freeze_count())
"""


def test_installing_a_first_deep_model_after_startup_freezes_torch(
    tmp_path: Path, redis_url: str
) -> None:
    items = pa.table({"item_id": ["a", "b"], "year": pa.array([1990, 2000], pa.int32())})
    publish_deep(str(tmp_path), "m", items)
    before, tracked, frozen = fresh_python(SCRIPT, str(tmp_path), redis_url, "service")
    # torch alone brings over 100,000 tracked objects; frozen at the install, the collector
    # walks only what the few lines after it made.
    assert frozen - before > 100_000
    assert tracked < 10_000
    # Elsewhere (velox train, tests, a notebook) the collector is left as Python sets it.
    before, tracked, frozen = fresh_python(SCRIPT, str(tmp_path), redis_url, "plain")
    assert before == frozen == 0
    assert tracked > 100_000
