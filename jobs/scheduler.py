"""`velox scheduler`: run the retrain cycle on a timetable and when the served model drifts.

Every `check_every_s` the scheduler asks two questions: is a timed cycle due (an interval
since the last one, or the next time of a cron expression, via croniter), and has the served
version drifted (`jobs.drift.DriftMonitor`: rolling online RMSE beyond the snapshot's
validation RMSE)? If so it runs one cycle under the model's cycle lock (`jobs.cycle_lock`),
so that schedulers on several machines never retrain the same model at once, and records the
outcome (`jobs.cycle_log`). A drift-triggered cycle is followed by a cool-down of one drift
window, so that a gate that keeps rejecting the new model does not retrain back to back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from batch.redis_client import SyncRedis
from feature_store.registry import Registry
from jobs.cycle_log import CycleRecord
from jobs.cycle_runner import Cycle, CycleRunner
from jobs.drift import DriftMonitor, DriftReading
from jobs.errors import ScheduleError

log = logging.getLogger("velox.jobs.scheduler")

DEFAULT_DRIFT_METRIC = "holdout_rmse"


@dataclass(frozen=True)
class ScheduleOptions:
    """When to retrain: an interval or a cron expression, and/or a drift threshold."""

    interval_s: float | None = None
    cron: str | None = None
    drift_threshold: float | None = None
    drift_window_s: float = 900.0
    drift_min_events: int = 200
    drift_metric: str = DEFAULT_DRIFT_METRIC
    check_every_s: float = 30.0
    lock_ttl_s: float = 60.0

    def validate(self) -> None:
        """Refuse options under which the scheduler could never or always run."""
        if self.interval_s is None and self.cron is None and self.drift_threshold is None:
            raise ScheduleError("give --interval, --cron or --drift-threshold (or several)")
        if self.interval_s is not None and self.cron is not None:
            raise ScheduleError("give either --interval or --cron, not both")
        if self.interval_s is not None and self.interval_s <= 0:
            raise ScheduleError(f"the interval must be > 0 s, got {self.interval_s}")
        if self.drift_threshold is not None and self.drift_threshold < 0:
            raise ScheduleError(f"the drift threshold must be >= 0, got {self.drift_threshold}")
        if self.check_every_s <= 0 or self.lock_ttl_s <= 0 or self.drift_window_s <= 0:
            raise ScheduleError("check period, lock TTL and drift window must be > 0 s")
        if self.cron is not None:
            from croniter import croniter

            if not croniter.is_valid(self.cron):
                raise ScheduleError(f"not a cron expression: {self.cron!r}")


class Timetable:
    """When the next timed cycle is due: `interval_s` after the last one, or cron's next time."""

    def __init__(self, options: ScheduleOptions, start: datetime) -> None:
        self.options = options
        self.next_due: datetime | None = self._next(start, first=True)

    def _next(self, after: datetime, *, first: bool = False) -> datetime | None:
        if self.options.cron is not None:
            from croniter import croniter

            due: datetime = croniter(self.options.cron, after).get_next(datetime)
            return due
        if self.options.interval_s is not None:
            return after if first else after + timedelta(seconds=self.options.interval_s)
        return None

    def due(self, now: datetime) -> bool:
        """True if a timed cycle should start at `now`."""
        return self.next_due is not None and now >= self.next_due

    def ran(self, started: datetime) -> None:
        """A cycle started at `started`: the next one is due one period later."""
        self.next_due = self._next(started)


class Scheduler:
    """Runs `cycle` for `model` when the timetable or the drift monitor says so."""

    def __init__(
        self,
        client: SyncRedis,
        registry: Registry,
        model: str,
        options: ScheduleOptions,
        cycle: Cycle,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        options.validate()
        self.registry = registry
        self.model = model
        self.options = options
        self.clock = clock
        self.runner = CycleRunner(client, model, cycle, lock_ttl_s=options.lock_ttl_s, clock=clock)
        self.timetable = Timetable(options, clock())
        self.monitor = (
            DriftMonitor(
                client,
                model,
                threshold=options.drift_threshold,
                window_s=options.drift_window_s,
                min_events=options.drift_min_events,
            )
            if options.drift_threshold is not None
            else None
        )
        self._drift_quiet_until: datetime | None = None

    def drift(self) -> DriftReading | None:
        """The drift monitor's reading of the current version (None: no monitor or version)."""
        if self.monitor is None:
            return None
        version = self.registry.current(self.model)
        if version is None:
            return None
        metrics = self.registry.manifest(self.model, version).metrics
        return self.monitor.read(version, metrics.get(self.options.drift_metric))

    def tick(self) -> CycleRecord | None:
        """Check the timetable and the drift; run one cycle if either calls for it."""
        now = self.clock()
        trigger = None
        if self.timetable.due(now):
            trigger = "cron" if self.options.cron is not None else "interval"
        else:
            reading = self.drift()
            quiet = self._drift_quiet_until is not None and now < self._drift_quiet_until
            if reading is not None and reading.drifted and not quiet:
                trigger = "drift"
                log.warning(
                    "%s v%d drifted: online RMSE %.4f over %d events, validation %.4f",
                    self.model, reading.version, reading.online_rmse, reading.events,
                    reading.validation_rmse,
                )  # fmt: skip
        if trigger is None:
            return None
        record = self.run_cycle(trigger)
        self.timetable.ran(now)
        if trigger == "drift":
            self._drift_quiet_until = now + timedelta(seconds=self.options.drift_window_s)
        return record

    def run_cycle(self, trigger: str) -> CycleRecord:
        """Run one cycle under the lock now, and record its outcome."""
        return self.runner.run(trigger)

    def run(self, stop: threading.Event, *, max_cycles: int | None = None) -> list[CycleRecord]:
        """Tick every `check_every_s` until `stop` is set (or `max_cycles` cycles ran)."""
        records: list[CycleRecord] = []
        while not stop.is_set():
            record = self.tick()
            if record is not None:
                records.append(record)
                if max_cycles is not None and len(records) >= max_cycles:
                    break
            stop.wait(self.options.check_every_s)
        return records
