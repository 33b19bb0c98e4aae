"""Default rewards: when an answer's reward window closes, its unrewarded items get the
model's default reward (as Azure Personalizer does), through the same update as /observe.

Every worker sweeps every `interval_s`: one round trip reads the closed answers of all
partitions (`WeightStore.due_rewards`), each owed item is applied with the event id
`default:<prediction id>:<slot>` (so two workers sweeping at once, or a sweep retried after a
crash, apply it once: the event id dedupes), the store skips an item that got a reward in
its window, and only then is the answer settled. A sweep that fails (Redis down) is retried
on the next tick; nothing is settled that was not applied. Any other error is a bug: it ends
the sweeps and is raised when the service stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from online import feedback
from online.errors import ServiceError
from online.schemas import ObserveRequest
from online.served_model import ServedModel
from online.service import Service
from online.weight_store import DueReward, ObserveStatus
from velox.errors import NotFoundError

log = logging.getLogger("velox.online.rewards")

BATCH = 100
"""Closed answers read per partition per sweep."""


class RewardSweeper:
    """Applies the default rewards of closed reward windows in the background."""

    def __init__(self, service: Service, interval_s: float) -> None:
        self.service = service
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    async def sweep_once(self) -> int:
        """Apply what is owed now; returns how many default rewards were applied."""
        applied = 0
        for served in list(self.service.models.models.values()):
            if served.rewards.default_reward is None:
                continue
            now_ms = time.time_ns() // 1_000_000
            for due in await self.service.store.due_rewards(served.name, now_ms, BATCH):
                applied += await self._apply(served, due)
                await self.service.store.settle_reward(served.name, due)
        return applied

    async def _apply(self, served: ServedModel, due: DueReward) -> int:
        applied = 0
        for slot, (item, propensity) in enumerate(zip(due.items, due.propensities, strict=True)):
            request = ObserveRequest(
                user=due.user,
                item=item,
                reward=due.default_reward,
                model=served.name,
                prediction_id=due.prediction_id,
                event_id=f"default:{due.prediction_id}:{slot}",
            )
            try:
                _, outcome = await feedback.apply(
                    self.service, served, request, default_propensity=propensity
                )
            except NotFoundError:
                continue  # the item left the catalog with a retrain: nothing to learn from
            if outcome.status is ObserveStatus.APPLIED:
                applied += 1
        self.service.metrics.default_rewards.labels(served.name).inc(applied)
        return applied

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep_once()
            except ServiceError as error:
                log.warning("default-reward sweep failed (retried next tick): %s", error)
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        """Start sweeping in the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop sweeping (an interrupted sweep is finished by a later one); re-raises the
        error that ended the sweeps, if one did."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
