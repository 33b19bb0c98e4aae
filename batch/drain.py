"""Drain a model's partitioned log from Redis Streams into date-partitioned Parquet, exactly once.

Layout under the drain's root (default `<VELOX_HOME>/<family>/<model>/`)::

    date=YYYY-MM-DD/<family>-<batch>.parquet   the drained entries (Hive partitioning by the
                                               UTC day of `timestamp`; read by Spark/pyarrow)
    _ledger/<batch>.json                       per batch: its files and, per stream partition,
                                               the range of stream ids it holds
    _staging/<batch>/                          a batch being written (hidden from readers)
    _drain.lock                                flock: one drain of this root at a time

One batch: read entries after each partition's drained position (up to the stream's end as
it was when the run started), write one file per date into `_staging/<batch>/` (fsync), then
write its ledger there (temp file, fsync, rename): from that instant the batch is *recorded*.
Then move the files into place, move the ledger into `_ledger/`, and only then XTRIM each
partition up to what the ledgers hold. Restarting after a crash at any point:

* a staged batch with no ledger was never recorded: it is deleted, and its entries (still in
  the stream, never trimmed) are read again;
* a staged batch with a ledger is recorded: its moves are finished (a moved file is skipped);
* the drained position of a partition is the highest id any ledger holds for it, so the next
  read starts right after it, and trimming up to it is repeated (XTRIM MINID is idempotent).

So every entry ends up in exactly one file, and none leaves Redis before its file is durable.
Trimming can be held back (`keep_after`): entries after a served snapshot's training cutoff stay
in Redis, because the service replays them when it rebases a user onto that snapshot.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from batch.decision_log import decisions_table_from_stream_entries
from batch.drain_ledger import (
    BatchLedger,
    DrainBusyError,
    DrainError,
    Ranges,
    fsync_dir,
    write_json,
)
from batch.events_schema import (
    PARTITION_COLUMN,
    StreamEntry,
    events_table_from_stream_entries,
    with_date_partition,
)
from batch.redis_client import SyncRedis
from feature_store.log_cutoff import LOG_START, LogCutoff, LogId

__all__ = [
    "DECISIONS",
    "EVENTS",
    "Drain",
    "DrainBusyError",
    "DrainError",
    "DrainReport",
    "StreamFamily",
]

LEDGER_DIR = "_ledger"
STAGING_DIR = "_staging"
LOCK_FILE = "_drain.lock"
LEDGER_NAME = "ledger.json"


@dataclass(frozen=True)
class StreamFamily:
    """A partitioned log in Redis Streams (key per model and partition) and how to parse it.

    `to_table` turns stream entries into an Arrow table with a UTC `timestamp` column, by
    which the drained files are partitioned into dates.
    """

    name: str
    partitions: int
    key_template: str
    to_table: Callable[[Sequence[StreamEntry]], pa.Table]

    def key(self, model: str, partition: int) -> str:
        """The stream of one partition of `model`'s log."""
        return self.key_template.format(model=model, partition=partition, name=self.name)


EVENTS = StreamFamily(
    name="events",
    partitions=64,
    key_template="velox:{{{model}|p{partition}}}:{name}",
    to_table=events_table_from_stream_entries,
)
"""The feedback log of docs/redis_layout.md (`online.redis_keys.events_key`, 64 partitions)."""

DECISIONS = StreamFamily(
    name="decisions",
    partitions=64,
    key_template="velox:{{{model}|p{partition}}}:{name}",
    to_table=decisions_table_from_stream_entries,
)
"""The decision log of docs/redis_layout.md (`online.redis_keys.decisions_key`)."""


@dataclass(frozen=True)
class DrainReport:
    """What one run did: the drained positions afterwards, what it moved and trimmed."""

    cutoff: LogCutoff
    entries: int
    batches: list[int] = field(default_factory=list)
    trimmed_to: LogCutoff | None = None


class Drain:
    """Drains one model's `family` log from `client` into Parquet under `root`."""

    def __init__(
        self,
        client: SyncRedis,
        model: str,
        root: Path,
        family: StreamFamily = EVENTS,
        *,
        batch_entries: int = 200_000,
        read_count: int = 10_000,
    ) -> None:
        self.client = client
        self.model = model
        self.root = root
        self.family = family
        self.batch_entries = batch_entries
        self.read_count = read_count

    def run(self, keep_after: LogCutoff | None = None) -> DrainReport:
        """Drain everything logged before this call; trim up to `keep_after` at most."""
        self.root.mkdir(parents=True, exist_ok=True)
        with self._exclusive():
            self._recover()
            positions = list(self.positions().positions)
            trimmed = self._trim(positions, keep_after)
            ends = self._ends()
            batches: list[int] = []
            total = 0
            while True:
                entries, ranges = self._read_batch(positions, ends)
                if not entries:
                    break
                batches.append(self._write_batch(entries, ranges))
                total += len(entries)
                for partition, (_, last, _) in ranges.items():
                    positions[partition] = last
                trimmed = self._trim(positions, keep_after)
        return DrainReport(LogCutoff.of(positions), total, batches, trimmed)

    def positions(self) -> LogCutoff:
        """Per partition, the highest stream id recorded in a ledger (`0-0`: none)."""
        positions = [LOG_START] * self.family.partitions
        for ledger in self._ledgers():
            for partition, (_, last, _) in ledger.ranges.items():
                positions[partition] = max(positions[partition], last)
        return LogCutoff.of(positions)

    def files(self) -> list[Path]:
        """Every drained Parquet file, as recorded in the ledgers."""
        return [self.root / name for ledger in self._ledgers() for name in ledger.files]

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        with open(self.root / LOCK_FILE, "a+b") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as error:
                raise DrainBusyError(f"another drain of {self.root} is running") from error
            yield  # the lock goes with the file descriptor, also when the process dies

    def _ledgers(self) -> list[BatchLedger]:
        ledgers = [BatchLedger.read(p) for p in sorted((self.root / LEDGER_DIR).glob("*.json"))]
        for ledger in ledgers:
            if (ledger.family, ledger.model) != (self.family.name, self.model):
                raise DrainError(
                    f"{self.root} holds a ledger of {ledger.family} of model {ledger.model}"
                )
        return ledgers

    def _batch_numbers(self) -> list[int]:
        names = [p.stem for p in (self.root / LEDGER_DIR).glob("*.json")]
        names += [p.name for p in (self.root / STAGING_DIR).glob("*")]
        return [int(name) for name in names if name.isdigit()]

    def _recover(self) -> None:
        """Finish recorded batches that were still moving; delete unrecorded ones."""
        staging = self.root / STAGING_DIR
        for batch in sorted(staging.glob("*")) if staging.is_dir() else []:
            if (batch / LEDGER_NAME).exists():
                self._commit(batch)
            else:
                shutil.rmtree(batch)

    def _ends(self) -> list[LogId]:
        pipe = self.client.pipeline(transaction=False)
        for partition in range(self.family.partitions):
            pipe.xrevrange(self.family.key(self.model, partition), count=1)
        return [LogId.parse(last[0][0]) if last else LOG_START for last in pipe.execute()]

    def _read_batch(
        self, positions: Sequence[LogId], ends: Sequence[LogId]
    ) -> tuple[list[StreamEntry], Ranges]:
        """Up to `batch_entries` entries after `positions`, up to `ends`, partition by partition."""
        entries: list[StreamEntry] = []
        ranges: Ranges = {}
        for partition in range(self.family.partitions):
            start, end = positions[partition], ends[partition]
            key = self.family.key(self.model, partition)
            while start < end and len(entries) < self.batch_entries:
                count = min(self.read_count, self.batch_entries - len(entries))
                chunk = cast(
                    list[StreamEntry], self.client.xrange(key, f"({start}", str(end), count=count)
                )
                if not chunk:
                    break
                entries += chunk
                first, _, before = ranges.get(partition, (LogId.parse(chunk[0][0]), start, 0))
                start = LogId.parse(chunk[-1][0])
                ranges[partition] = (first, start, before + len(chunk))
        return entries, ranges

    def _write_batch(self, entries: Sequence[StreamEntry], ranges: Ranges) -> int:
        number = max(self._batch_numbers(), default=0) + 1
        staging = self.root / STAGING_DIR / f"{number:08d}"
        staging.mkdir(parents=True)
        dated = with_date_partition(self.family.to_table(entries))
        files = []
        for day in sorted(pc.unique(dated.column(PARTITION_COLUMN)).to_pylist()):
            rows = dated.filter(pc.equal(dated.column(PARTITION_COLUMN), day))
            name = f"{PARTITION_COLUMN}={day}/{self.family.name}-{number:08d}.parquet"
            (staging / name).parent.mkdir()
            with open(staging / name, "wb") as handle:
                pq.write_table(rows.drop_columns([PARTITION_COLUMN]), handle)
                handle.flush()
                os.fsync(handle.fileno())
            fsync_dir((staging / name).parent)
            files.append(name)
        fsync_dir(staging)
        ledger = BatchLedger(self.family.name, self.model, number, len(entries), files, ranges)
        write_json(staging / LEDGER_NAME, ledger.to_json())  # the batch is recorded from here on
        self._commit(staging)
        return number

    def _commit(self, staging: Path) -> None:
        """Move a recorded batch's files into place, then its ledger (each step idempotent)."""
        for name in BatchLedger.read(staging / LEDGER_NAME).files:
            source, target = staging / name, self.root / name
            if not source.exists():
                if not target.exists():
                    raise DrainError(f"drained file {name} of batch {staging.name} is missing")
                continue
            if not target.parent.exists():
                target.parent.mkdir()
                fsync_dir(self.root)
            os.replace(source, target)
            fsync_dir(target.parent)
        ledgers = self.root / LEDGER_DIR
        ledgers.mkdir(exist_ok=True)
        os.replace(staging / LEDGER_NAME, ledgers / f"{staging.name}.json")
        fsync_dir(ledgers)
        shutil.rmtree(staging)

    def _trim(self, positions: Sequence[LogId], keep_after: LogCutoff | None) -> LogCutoff:
        """XTRIM each partition up to its drained position (held back to `keep_after`)."""
        bounds = LogCutoff.of(positions)
        if keep_after is not None:
            bounds = bounds.lowest(keep_after)
        for partition, bound in enumerate(bounds.positions):
            if bound > LOG_START:
                key = self.family.key(self.model, partition)
                self.client.xtrim(key, minid=str(bound.successor()), approximate=False)
        return bounds
