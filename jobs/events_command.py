"""`velox events check | drop-invalid`: find and remove drained events training would skip.

Training leaves out an event whose reward is NaN, infinite or outside
[VELOX_REWARD_MIN, VELOX_REWARD_MAX] and says how many it skipped. These commands show where
such events are in the drained log (`<VELOX_HOME>/events/<model>/`, batch/drain.py) and, on
request, rewrite each affected file without them. The removed rows are kept, not deleted, in
`_dropped/` under the log's root (Spark and pyarrow skip `_` folders, so training never reads
them). The rewrite holds the drain's lock, so it never races a drain of the same log.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from batch.drain import LOCK_FILE
from jobs.errors import JobError

DROPPED = "_dropped"


@dataclass(frozen=True)
class FileCheck:
    """One drained file: how many events it holds and how many have an invalid reward."""

    path: Path
    events: int
    invalid: int


def log_files(root: Path) -> list[Path]:
    """The drained Parquet files under `root` (not the `_ledger`, `_staging`, `_dropped` ones)."""
    if not root.is_dir():
        raise JobError(f"no drained feedback log at {root}")
    found = (path for path in root.rglob("*.parquet") if path.is_file())
    relative = (path for path in found if not path.relative_to(root).parts[0].startswith("_"))
    return sorted(relative)


def invalid_mask(rewards: pa.ChunkedArray, reward_range: tuple[float, float]) -> pa.Array:
    """True where a reward is null, NaN, infinite or outside `reward_range` (inclusive)."""
    low, high = reward_range
    values = rewards.to_numpy(zero_copy_only=False).astype(np.float64)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(values) & (values >= low) & (values <= high)
    return pa.array(~valid)


def check_log(root: Path, reward_range: tuple[float, float]) -> list[FileCheck]:
    """Every drained file under `root` with its count of events and of invalid rewards."""
    checks = []
    for path in log_files(root):
        rewards = pq.read_table(path, columns=["reward"]).column("reward")
        invalid = int(pc.sum(invalid_mask(rewards, reward_range)).as_py() or 0)
        checks.append(FileCheck(path=path, events=len(rewards), invalid=invalid))
    return checks


@contextmanager
def _drain_lock(root: Path) -> Iterator[None]:
    with open(root / LOCK_FILE, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise JobError(f"a drain of {root} is running; try again when it is done") from error
        yield


def _write_atomically(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, temporary)
    with open(temporary, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def drop_invalid(root: Path, reward_range: tuple[float, float]) -> list[FileCheck]:
    """Rewrite each drained file that holds invalid rewards without them; the removed rows go
    to `<root>/_dropped/<same relative path>`. Returns the files that changed."""
    changed = []
    with _drain_lock(root):
        for check in check_log(root, reward_range):
            if not check.invalid:
                continue
            table = pq.read_table(check.path, partitioning=None)
            mask = invalid_mask(table.column("reward"), reward_range)
            relative = check.path.relative_to(root)
            dropped_path = root / DROPPED / relative
            previous = pq.read_table(dropped_path) if dropped_path.exists() else None
            dropped = table.filter(mask)
            if previous is not None:
                dropped = pa.concat_tables([previous, dropped])
            _write_atomically(dropped, dropped_path)
            _write_atomically(table.filter(pc.invert(mask)), check.path)
            changed.append(check)
    return changed


def run_events_check(root: Path, reward_range: tuple[float, float], *, drop: bool) -> None:
    """`velox events check` (and `drop-invalid` when `drop`): print what was found or done."""
    low, high = reward_range
    checks = drop_invalid(root, reward_range) if drop else check_log(root, reward_range)
    bad = [check for check in checks if check.invalid]
    for check in bad:
        verb = "dropped" if drop else "invalid"
        print(f"{check.path.relative_to(root)}: {check.invalid} of {check.events} events {verb}")
    total = sum(check.invalid for check in bad)
    valid_range = f"finite and within [{low:g}, {high:g}]"
    if drop:
        print(f"dropped {total} events whose reward is not {valid_range}; kept in {root / DROPPED}")
    else:
        events = sum(check.events for check in checks)
        print(f"{total} of {events} events in {root} have a reward that is not {valid_range}")
        if total:
            print("training skips them; `velox events drop-invalid` removes them from the log")
