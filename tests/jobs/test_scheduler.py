"""The scheduler: timetables, drift readings, the cycle lock across processes, outcomes."""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from batch.errors import GateRejectedError, TrainingError
from feature_store.registry import Registry
from jobs.cycle_lock import CycleLock, Lease
from jobs.cycle_log import CycleLog, Outcome
from jobs.cycle_runner import CycleResult
from jobs.drift import DriftMonitor, online_error_key
from jobs.errors import CycleBusyError, LockLostError, ScheduleError
from jobs.scheduler import ScheduleOptions, Scheduler, Timetable
from tests.online.synthetic import publish, synthetic_snapshot

T0 = datetime(2026, 1, 5, 10, 2, 30, tzinfo=UTC)


class Clock:
    """A settable clock for timetables and the drift window."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def seconds(self) -> float:
        return self.now.timestamp()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (ScheduleOptions(), "give --interval"),
        (ScheduleOptions(interval_s=60, cron="* * * * *"), "not both"),
        (ScheduleOptions(interval_s=0), "must be > 0"),
        (ScheduleOptions(cron="every day"), "not a cron expression"),
        (ScheduleOptions(drift_threshold=-0.1), "must be >= 0"),
    ],
)
def test_unworkable_options_are_refused(options: ScheduleOptions, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        options.validate()


def test_interval_timetable_runs_at_start_then_every_interval() -> None:
    table = Timetable(ScheduleOptions(interval_s=600), T0)
    assert table.due(T0)
    table.ran(T0)
    assert not table.due(T0 + timedelta(seconds=599))
    assert table.due(T0 + timedelta(seconds=600))


def test_cron_timetable_follows_the_expression() -> None:
    table = Timetable(ScheduleOptions(cron="*/15 * * * *"), T0)
    assert table.next_due == datetime(2026, 1, 5, 10, 15, tzinfo=UTC)
    assert not table.due(T0)
    table.ran(datetime(2026, 1, 5, 10, 15, 1, tzinfo=UTC))
    assert table.next_due == datetime(2026, 1, 5, 10, 30, tzinfo=UTC)


def test_drift_monitor_rolls_over_its_window(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    clock = Clock(T0)
    monitor = DriftMonitor(
        client, "m", threshold=0.5, window_s=100, min_events=10, clock=clock.seconds
    )

    def at(seconds: float, n: int, se: float) -> tuple[float, bool]:
        clock.now = T0 + timedelta(seconds=seconds)
        # as the service counts them: per log partition; the monitor sums them
        client.hset(online_error_key("m", 5, 3), mapping={"n": n - 60, "se": se - 60.0})
        client.hset(online_error_key("m", 63, 3), mapping={"n": 60, "se": 60.0})
        reading = monitor.read(3, validation_rmse=1.0)
        return (-1.0 if reading.online_rmse is None else reading.online_rmse), reading.drifted

    def rmse(se: float, n: int) -> float:
        return math.sqrt(se / n)

    assert at(0, 100, 100.0) == (-1.0, False)  # one sample: no window yet
    assert at(50, 105, 110.0) == (-1.0, False)  # 5 events < min_events
    assert at(60, 120, 120.0) == (rmse(20, 20), False)
    assert at(170, 220, 520.0) == (rmse(400, 100), True)  # the window starts at t=60 now
    assert at(180, 230, 530.0) == (rmse(410, 110), True)
    other = monitor.read(4, validation_rmse=1.0)  # a new version starts a new window
    assert (other.online_rmse, other.events) == (None, 0)


def test_lock_is_exclusive_and_only_its_owner_frees_it(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    first, second = CycleLock(client, "m", ttl_s=30), CycleLock(client, "m", ttl_s=30)
    assert first.acquire()
    assert not second.acquire()
    second.release()  # not the owner: nothing happens
    assert first.holder() == first.token
    client.pexpire(first.key, 1000)
    assert first.renew()
    assert int(client.pttl(first.key)) > 1000
    assert not second.renew()
    first.release()
    assert second.acquire()
    with pytest.raises(CycleBusyError), first.held():
        pass


def test_a_lease_learns_that_its_lock_is_gone(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    lock = CycleLock(client, "m", ttl_s=0.3)
    with lock.held() as lease:
        client.delete(lock.key)  # as if the TTL ran out while this process stalled
        deadline = time.monotonic() + 10
        while not lease.lost and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(LockLostError):
            lease.check()


def test_the_lock_of_a_dead_holder_expires(redis_url: str) -> None:
    command = [sys.executable, "-m", "tests.jobs.hold_lock", redis_url, "m", "1.5"]
    child = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert child.returncode == -9, child.stderr
    lock = CycleLock(redis.Redis.from_url(redis_url), "m", ttl_s=30)
    assert lock.holder() == child.stdout.strip()
    assert not lock.acquire()
    deadline = time.monotonic() + 20
    while not lock.acquire():
        assert time.monotonic() < deadline, "the dead holder's lock never expired"
        time.sleep(0.1)


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    """A registry whose model `m` has v1 current, validation metric `rmse` = 1.0."""
    publish(str(tmp_path), "m", synthetic_snapshot())
    return Registry(str(tmp_path))


def test_one_cycle_at_a_time_across_schedulers(redis_url: str, registry: Registry) -> None:
    inside, finish = threading.Event(), threading.Event()

    def slow_cycle(lease: Lease) -> CycleResult:
        inside.set()
        finish.wait(30)
        lease.check()
        return CycleResult(version=2, promoted=True, drained=7)

    options = ScheduleOptions(interval_s=60)
    client = redis.Redis.from_url(redis_url)
    first = Scheduler(client, registry, "m", options, slow_cycle)
    second = Scheduler(
        client, registry, "m", options, lambda _: CycleResult(version=3, promoted=True)
    )
    records = []
    runner = threading.Thread(target=lambda: records.append(first.run_cycle("interval")))
    runner.start()
    assert inside.wait(30)
    busy = second.run_cycle("interval")
    finish.set()
    runner.join(30)

    assert busy.outcome is Outcome.BUSY
    assert (records[0].outcome, records[0].version, records[0].drained) == (Outcome.PROMOTED, 2, 7)
    log = CycleLog(client, "m")
    assert log.counts() == {"busy": 1, "promoted": 1}
    assert [r["outcome"] for r in log.recent()] == ["promoted", "busy"]


def test_failures_and_rejections_are_recorded(redis_url: str, registry: Registry) -> None:
    client = redis.Redis.from_url(redis_url)

    def failing(_: Lease) -> CycleResult:
        raise TrainingError("factors are NaN")

    def rejected(_: Lease) -> CycleResult:
        raise GateRejectedError("worse than v1")

    options = ScheduleOptions(interval_s=60)
    failed = Scheduler(client, registry, "m", options, failing).run_cycle("interval")
    kept = Scheduler(client, registry, "m", options, rejected).run_cycle("interval")
    assert (failed.outcome, failed.detail) == (Outcome.FAILED, "TrainingError: factors are NaN")
    assert (kept.outcome, kept.detail) == (Outcome.REJECTED, "worse than v1")
    assert CycleLog(client, "m").counts() == {"failed": 1, "rejected": 1}
    assert CycleLock(client, "m").acquire()  # every cycle released the lock


def test_ticks_follow_the_timetable_and_the_drift(redis_url: str, registry: Registry) -> None:
    client = redis.Redis.from_url(redis_url)
    ran: list[str] = []

    def cycle(_: Lease) -> CycleResult:
        ran.append("cycle")
        raise GateRejectedError("gate kept v1")

    clock = Clock(T0)
    options = ScheduleOptions(
        interval_s=3600,
        drift_threshold=0.2,
        drift_window_s=600,
        drift_min_events=5,
        drift_metric="rmse",
    )
    scheduler = Scheduler(client, registry, "m", options, cycle, clock=clock)
    key = online_error_key("m", 0, 1)
    client.hset(key, mapping={"n": 0, "se": 0.0})

    first = scheduler.tick()  # due at start
    assert first is not None and first.trigger == "interval" and first.outcome is Outcome.REJECTED
    clock.now += timedelta(seconds=60)
    assert scheduler.tick() is None  # not due; the drift monitor takes its first sample
    client.hset(key, mapping={"n": 10, "se": 10 * 1.1**2})  # RMSE 1.1 <= 1.2: fine
    clock.now += timedelta(seconds=60)
    assert scheduler.tick() is None
    client.hset(key, mapping={"n": 20, "se": 10 * 1.1**2 + 10 * 2.0**2})  # RMSE drifts up
    clock.now += timedelta(seconds=60)
    drift = scheduler.tick()
    assert drift is not None and drift.trigger == "drift"
    clock.now += timedelta(seconds=60)
    assert scheduler.tick() is None  # cooling down after a drift cycle
    clock.now = T0 + timedelta(seconds=180 + 3600)
    timed = scheduler.tick()
    assert timed is not None and timed.trigger == "interval"
    assert ran == ["cycle"] * 3


def test_drift_counters_are_the_ones_the_service_writes() -> None:
    from online.redis_keys import online_error_key as service_key

    for partition in (0, 17, 63):
        assert online_error_key("movies", partition, 4) == service_key("movies", partition, 4)


def test_run_ticks_until_enough_cycles(redis_url: str, registry: Registry) -> None:
    client = redis.Redis.from_url(redis_url)
    options = ScheduleOptions(interval_s=0.01, check_every_s=0.01)
    versions = iter(range(2, 10))

    def cycle(_: Lease) -> CycleResult:
        return CycleResult(version=next(versions), promoted=True)

    records = Scheduler(client, registry, "m", options, cycle).run(threading.Event(), max_cycles=3)
    assert [(r.outcome, r.version) for r in records] == [(Outcome.PROMOTED, v) for v in (2, 3, 4)]
    assert CycleLog(client, "m").counts() == {"promoted": 3}
