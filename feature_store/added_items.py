"""Items added online (`PUT /items/{item}`): their Redis layout, shared by service and jobs.

    velox:{<model>}:items       hash: item id → JSON object of the item's attributes
    velox:{<model>}:items:seq   integer, incremented by every PUT (workers poll it)

Both keys share the hash tag `{<model>}`, so one MULTI writes them together. Entries are kept
after a retrain (the service skips items its snapshot already knows); the retrain reads them
all (`added_items_table`) so that added items are in the next training run's catalog.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

import pyarrow as pa


class SyncRedis(Protocol):
    """The few redis-py calls used here (a `redis.Redis` fits)."""

    def hgetall(self, name: str) -> Any:
        """HGETALL."""

    def get(self, name: str) -> Any:
        """GET."""

    def pipeline(self, transaction: bool = True) -> Any:
        """A MULTI/EXEC pipeline."""


def items_key(model: str) -> str:
    """The hash of the items added to `model`."""
    return f"velox:{{{model}}}:items"


def items_seq_key(model: str) -> str:
    """The change counter of `items_key(model)`."""
    return f"velox:{{{model}}}:items:seq"


def put_added_item(client: SyncRedis, model: str, item: str, attributes: dict[str, Any]) -> int:
    """Store one item's attributes and bump the counter atomically; the new counter value."""
    pipe = client.pipeline(transaction=True)
    pipe.hset(items_key(model), item, json.dumps(attributes, allow_nan=False, sort_keys=True))
    pipe.incr(items_seq_key(model))
    return int(pipe.execute()[1])


def added_items_seq(client: SyncRedis, model: str) -> int:
    """The change counter (0 before the first PUT)."""
    value = client.get(items_seq_key(model))
    return int(value) if value is not None else 0


def read_added_items(client: SyncRedis, model: str) -> dict[str, dict[str, Any]]:
    """Every added item of `model` and its attributes."""
    raw = client.hgetall(items_key(model))
    return {(k.decode() if isinstance(k, bytes) else k): json.loads(v) for k, v in raw.items()}


def added_items_table(client: SyncRedis, model: str) -> pa.Table | None:
    """The added items as an attribute table (`item_id` plus the attributes), None if none."""
    found = read_added_items(client, model)
    if not found:
        return None
    return pa.Table.from_pylist([{"item_id": item, **found[item]} for item in sorted(found)])
