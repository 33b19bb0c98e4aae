"""A bounded sample of a model's latest log entries, read across its 64 log partitions.

One pipeline of `XREVRANGE <partition> + - COUNT n` per partition (never a scan): at most
64·n entries. A partition that returned a full n may hold older entries that were not read,
so the sample is cut at the newest "oldest entry" of the full partitions: from that moment
on every partition's entries are all in the sample, and rates over time are not skewed
toward the quiet partitions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from online.dashboard.state import DashboardState
from online.redis_keys import LOG_PARTITIONS
from online.redis_scripts import text


@dataclass(frozen=True)
class LogEntry:
    """One stream entry: its arrival time (the stream id's milliseconds) and its fields."""

    log_id: str
    ms: int
    fields: dict[str, str]


def parse_entry(raw: list[Any]) -> LogEntry:
    """A hiredis XRANGE entry `[id, [field, value, ...]]` as a `LogEntry`."""
    log_id, flat = text(raw[0]), raw[1]
    fields = {text(flat[i]): text(flat[i + 1]) for i in range(0, len(flat), 2)}
    return LogEntry(log_id, int(log_id.partition("-")[0]), fields)


def complete_window(partitions: list[list[LogEntry]], per_partition: int) -> list[LogEntry]:
    """Entries of every partition (each newest first) from the cut on, oldest first."""
    full = [entries[-1].ms for entries in partitions if len(entries) >= per_partition]
    cut = max(full, default=0)
    merged = [entry for entries in partitions for entry in entries if entry.ms >= cut]
    merged.sort(key=lambda entry: (entry.ms, entry.log_id))
    return merged


async def read_latest(
    state: DashboardState, key_of: Callable[[str, int], str], model: str, per_partition: int
) -> list[list[Any]]:
    """The raw replies of one `XREVRANGE ... COUNT per_partition` per partition (one trip)."""
    return await state.redis(
        [
            ("XREVRANGE", key_of(model, partition), "+", "-", "COUNT", per_partition)
            for partition in range(LOG_PARTITIONS)
        ]
    )


def latest_window(replies: list[list[Any]], per_partition: int) -> list[LogEntry]:
    """The complete window of `read_latest`'s replies, parsed (pure: run it in a thread)."""
    partitions = [[parse_entry(raw) for raw in reply] for reply in replies]
    return complete_window(partitions, per_partition)
